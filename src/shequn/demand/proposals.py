"""Reverse customization (反向定制, C2B): from a demand topic to a product made for the groups
that asked for it.

1. ``draft_proposal`` — a supplier (for a topic it may see) or HQ writes the offer: spec, target
   price, deposit, minimum units, deadline.
2. ``publish_proposal`` — HQ sends it to the groups the topic came from; the product and its SKU
   are created off sale, so the pre-orders' order lines have something real to point at.
3. ``place_preorder`` — a member of one of those groups pre-orders; the order carries the deposit
   (``orders.actions.place_preorder_order``) and counts once paid (``preorders.commit_preorder``).
4. ``sweep_proposals`` — past the deadline, each proposal is decided once: reached → the product
   goes on sale, the pre-orders become orders and the supplier gets one production order;
   missed (or cancelled) → every paid deposit is refunded, one refund per order, through the
   refund outbox. Crash-safe: the decision is one transaction guarded by the status, and each
   refund is opened in the transaction that moves its pre-order out of REFUND_DUE.
5. ``receive_production_delivery`` — a store takes its share in and sets it aside for the
   pre-orders, which can then be picked up (the balance is paid at the counter).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Sum

from shequn.catalog.models import MovementReason, Product, Sku, StockItem, StockMovement, Supplier
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from shequn.core.faults import crash_point
from shequn.core.sweeps import drain
from shequn.core.validation import MAX_PRICE_FEN, clean_count, clean_fen, clean_text
from shequn.groups.models import CustomerGroup, GroupStatus
from shequn.members.models import Member
from shequn.orders.actions import PlacedOrder, key_reused, place_preorder_order, refund_whole_order
from shequn.orders.models import Order, OrderStatus
from shequn.org.models import Staff
from shequn.org.roles import Perm, Role
from shequn.org.scoping import require_perm
from shequn.promotions.limits import claim_within_limit

from .models import (
    PreOrder,
    PreOrderBuyer,
    PreOrderStatus,
    ProductionLine,
    ProductionOrder,
    Proposal,
    ProposalStatus,
    Topic,
    TopicMention,
)
from .queries import access_topic
from .topics import with_consent

MIN_OPEN = timedelta(hours=1)  # a deadline closer than this leaves nobody time to pre-order
MAX_OPEN = timedelta(days=90)
MAX_MIN_UNITS = 1_000_000
MAX_PER_MEMBER = 999
AUTO_REFUND_REASON = "反向定制未达成起订量, 定金自动退回"
CANCEL_REFUND_REASON = "反向定制提案已取消, 定金自动退回"


# --- drafting and publishing ---------------------------------------------------------------------
def _supplier_for(acting: Staff, supplier: Supplier | None) -> Supplier:
    """A supplier drafts as itself (the one its account belongs to); HQ names the supplier."""
    if acting.role == Role.SUPPLIER:
        own = Supplier.objects.filter(chain_id=acting.node.chain_id, accounts=acting.user)
        if supplier is not None:
            own = own.filter(pk=supplier.pk)
        found = list(own[:2])
        if len(found) != 1:
            raise InvalidInput("请选择以哪个供应商的名义发起", code="supplier_required")
        return found[0]
    if supplier is None:
        raise InvalidInput("请选择供应商", code="supplier_required")
    if supplier.chain_id != acting.node.chain_id:
        raise NotFound("供应商不存在")
    return supplier


def _clean_deadline(deadline: object, now: datetime) -> datetime:
    if not isinstance(deadline, datetime) or deadline.tzinfo is None:
        raise InvalidInput("预订截止时间无效", code="invalid_deadline")
    if not now + MIN_OPEN <= deadline <= now + MAX_OPEN:
        raise InvalidInput("预订截止时间须在 1 小时到 90 天之后", code="invalid_deadline")
    return deadline


def draft_proposal(
    *,
    acting: Staff,
    topic: Topic,
    title: str,
    spec: str,
    target_price_fen: int,
    deposit_fen: int,
    min_units: int,
    deadline: datetime,
    description: str = "",
    per_member_limit: int = 10,
    supplier: Supplier | None = None,
) -> Proposal:
    """A proposal answering ``topic`` (one the caller may see: a supplier only its own)."""
    require_perm(acting, Perm.DRAFT_PROPOSALS)
    topic = access_topic(acting, topic.pk)
    if topic.merged_into_id is not None:
        raise RuleViolation("该主题已合并到另一个主题, 请从合并后的主题发起", code="topic_merged")
    supplier = _supplier_for(acting, supplier)
    title = clean_text(title, "产品名称", 60)
    spec = clean_text(spec, "规格", 100)
    description = clean_text(description, "说明", 1000, required=False)
    target_price_fen = clean_fen(target_price_fen, "目标售价", MAX_PRICE_FEN)
    deposit_fen = clean_fen(deposit_fen, "定金", MAX_PRICE_FEN)
    if deposit_fen > target_price_fen:
        raise InvalidInput("定金不能高于目标售价", code="deposit_above_price")
    min_units = clean_count(min_units, "起订量", MAX_MIN_UNITS)
    per_member_limit = clean_count(per_member_limit, "每人限订", MAX_PER_MEMBER)
    deadline = _clean_deadline(deadline, timeutil.now())
    category_id = topic.category_id or (topic.product.category_id if topic.product else None)
    with transaction.atomic():
        proposal = Proposal.objects.create(
            chain_id=topic.chain_id,
            topic=topic,
            supplier=supplier,
            category_id=category_id,
            title=title,
            spec=spec,
            description=description,
            target_price_fen=target_price_fen,
            deposit_fen=deposit_fen,
            min_units=min_units,
            per_member_limit=per_member_limit,
            deadline=deadline,
            drafted_by=acting.user,
        )
        record_audit(
            acting.user,
            "demand.proposal_drafted",
            target=proposal,
            scope_path=acting.node.path,
            details={"topic": topic.pk, "supplier": supplier.pk, "min_units": min_units},
        )
    return proposal


def source_groups(topic: Topic) -> list[int]:
    """The open groups the topic's voices came from (after merges, its mentions are its own):
    of members who consent to chat analysis, as the board counts them."""
    return list(
        CustomerGroup.objects.filter(
            pk__in=with_consent(TopicMention.objects.filter(topic=topic)).values("group_id"),
            status=GroupStatus.ACTIVE,
        )
        .order_by("id")
        .values_list("pk", flat=True)
    )


def publish_proposal(*, acting: Staff, proposal: Proposal) -> Proposal:
    """HQ sends a draft to the topic's groups; from now on their members can pre-order."""
    require_perm(acting, Perm.MANAGE_DEMAND)
    if proposal.chain_id != acting.node.chain_id:
        raise NotFound("提案不存在")
    now = timeutil.now()
    _clean_deadline(proposal.deadline, now)
    groups = source_groups(proposal.topic)
    if not groups:
        raise RuleViolation("该主题没有仍在运营的来源社群, 无法发布", code="no_source_groups")
    with transaction.atomic():
        locked = Proposal.objects.select_for_update().filter(pk=proposal.pk).first()
        if locked is None or locked.status != ProposalStatus.DRAFT:
            raise Conflict("只有草稿可以发布", code="illegal_transition")
        product = Product.objects.create(
            chain_id=proposal.chain_id,
            supplier_id=proposal.supplier_id,
            category_id=proposal.category_id,
            name=proposal.title,
            description=proposal.description,
            is_active=False,  # on sale only once the proposal succeeds
        )
        sku = Sku.objects.create(
            product=product,
            chain_id=proposal.chain_id,
            code=f"C2B-{proposal.pk}",
            spec=proposal.spec,
            price_fen=proposal.target_price_fen,
            is_active=False,
        )
        Proposal.objects.filter(pk=proposal.pk).update(
            status=ProposalStatus.OPEN,
            product=product,
            sku=sku,
            published_by=acting.user,
            published_at=now,
        )
        proposal.groups.set(groups)
        record_audit(
            acting.user,
            "demand.proposal_published",
            target=proposal,
            scope_path=acting.node.path,
            details={"groups": len(groups), "deadline": proposal.deadline.isoformat()},
        )
    proposal.refresh_from_db()
    return proposal


def cancel_proposal(*, acting: Staff, proposal: Proposal, reason: str) -> Proposal:
    """HQ withdraws a draft or an open proposal; every deposit paid so far is refunded by the
    sweep (and one paid later finds the proposal closed and is refunded too)."""
    require_perm(acting, Perm.MANAGE_DEMAND)
    if proposal.chain_id != acting.node.chain_id:
        raise NotFound("提案不存在")
    reason = clean_text(reason, "取消原因", 100)
    with transaction.atomic():
        locked = Proposal.objects.select_for_update().filter(pk=proposal.pk).first()
        if locked is None or locked.status not in (ProposalStatus.DRAFT, ProposalStatus.OPEN):
            raise Conflict("提案已结束, 不能取消", code="illegal_transition")
        Proposal.objects.filter(pk=proposal.pk).update(
            status=ProposalStatus.CANCELLED, decided_at=timeutil.now()
        )
        owed = PreOrder.objects.filter(proposal=proposal, status=PreOrderStatus.COMMITTED).update(
            status=PreOrderStatus.REFUND_DUE
        )
        record_audit(
            acting.user,
            "demand.proposal_cancelled",
            target=proposal,
            scope_path=acting.node.path,
            details={"reason": reason, "refunds_due": owed},
        )
    proposal.refresh_from_db()
    return proposal


# --- members pre-order ---------------------------------------------------------------------------
def member_groups_for(member: Member, proposal: Proposal) -> list[CustomerGroup]:
    """The proposal's groups the member is in now (their store is where they pick up)."""
    return list(
        CustomerGroup.objects.filter(
            proposals=proposal,
            memberships__member=member,
            memberships__left_at__isnull=True,
        )
        .select_related("store")
        .order_by("id")
    )


def place_preorder(
    *,
    member: Member,
    proposal: Proposal,
    quantity: int,
    idempotency_key: str,
    group: CustomerGroup | None = None,
    sharer: Member | None = None,
) -> PlacedOrder:
    """Pre-order ``quantity`` units for pickup at the store of one of the proposal's groups the
    member is in. The member's limit is a guarded upsert; the order waits for the deposit."""
    if proposal.chain_id != member.chain_id:
        raise NotFound("提案不存在")
    retried = _retried_preorder(member, proposal, quantity, idempotency_key)
    if retried is not None:  # answered with its order, also once the proposal has closed
        return retried
    now = timeutil.now()
    if proposal.status != ProposalStatus.OPEN or proposal.sku_id is None:
        raise RuleViolation(
            f"该预订{proposal.get_status_display()}, 不能再预订", code="proposal_closed"
        )
    if now >= proposal.deadline:
        raise RuleViolation("预订已截止", code="proposal_closed")
    mine = member_groups_for(member, proposal)
    if group is not None:
        mine = [g for g in mine if g.pk == group.pk]
    if not mine:
        raise PermissionDenied("该预订只面向提出这个需求的社群成员", code="not_in_source_group")
    chosen = mine[0]
    sku = Sku.objects.select_related("product").get(pk=proposal.sku_id)

    def hold(order: Order) -> None:
        if not claim_within_limit(
            PreOrderBuyer,
            owner="proposal_id",
            counter="units",
            owner_id=proposal.pk,
            member_id=member.pk,
            quantity=quantity,
            limit=proposal.per_member_limit,
        ):
            raise RuleViolation(
                f"每人最多预订 {proposal.per_member_limit} 件, 你已达到上限",
                code="preorder_member_limit",
            )
        PreOrder.objects.create(
            proposal=proposal,
            order=order,
            member=member,
            store=chosen.store,
            group=chosen,
            quantity=quantity,
        )

    return place_preorder_order(
        member=member,
        store=chosen.store,
        sku=sku,
        quantity=quantity,
        unit_price_fen=proposal.target_price_fen,
        deposit_fen=proposal.deposit_fen,
        idempotency_key=idempotency_key,
        source_group=chosen,
        hold=hold,
        sharer=sharer,
    )


def _retried_preorder(
    member: Member, proposal: Proposal, quantity: int, idempotency_key: str
) -> PlacedOrder | None:
    """The order this member's key already placed for the same pre-order, if any: a retry
    that arrives after the deadline (a phone back online) still learns its order was taken,
    instead of "预订已截止". A key used for anything else is refused as reused."""
    prior = Order.objects.filter(member=member, idempotency_key=idempotency_key).order_by().first()
    if prior is None:
        return None
    if not PreOrder.objects.filter(order=prior, proposal=proposal, quantity=quantity).exists():
        raise key_reused()
    return PlacedOrder(order=prior, created=False)


# --- the deadline sweep --------------------------------------------------------------------------
def sweep_proposals(*, now: datetime | None = None, batch: int = 500, pause_s: float = 0.0) -> int:
    """Decide every open proposal past its deadline, then open the refund every pre-order is
    owed. Returns how many proposals and refunds it acted on. Idempotent: run it twice, or kill
    it and run it again, and each proposal is decided once and each deposit refunded once."""
    now = now or timeutil.now()
    acted = 0
    for proposal_id in list(
        Proposal.objects.filter(status=ProposalStatus.OPEN, deadline__lte=now)
        .order_by("deadline", "id")
        .values_list("pk", flat=True)[:batch]
    ):
        acted += _decide(proposal_id, now)
    return acted + drain(
        lambda skip, size: list(
            PreOrder.objects.filter(status=PreOrderStatus.REFUND_DUE)
            .exclude(pk__in=skip)
            .order_by("id")
            .values_list("pk", "order_id")[:size]
        ),
        _refund_deposit,
        what="refund pre-order",
        batch=batch,
        pause_s=pause_s,
    )


def _production_number(now: datetime) -> str:
    return "P" + timeutil.to_local(now).strftime("%y%m%d") + f"{secrets.randbelow(10**10):010d}"


def _decide(proposal_id: int, now: datetime) -> int:
    """One proposal past its deadline: succeeded or failed, in one transaction; 1 if decided."""
    with transaction.atomic():
        proposal = (
            Proposal.objects.select_for_update(of=("self",))
            .filter(pk=proposal_id, status=ProposalStatus.OPEN, deadline__lte=now)
            .first()
        )
        if proposal is None:
            return 0  # decided by another sweeper meanwhile
        reached = proposal.committed_units >= proposal.min_units
        committed = PreOrder.objects.filter(proposal=proposal, status=PreOrderStatus.COMMITTED)
        details: dict[str, object] = {
            "committed_units": proposal.committed_units,
            "min_units": proposal.min_units,
        }
        if reached:
            per_store = list(
                committed.values("store_id").annotate(units=Sum("quantity")).order_by("store_id")
            )
            production = ProductionOrder.objects.create(
                proposal=proposal,
                supplier_id=proposal.supplier_id,
                number=_production_number(now),
                total_units=sum(row["units"] for row in per_store),
            )
            ProductionLine.objects.bulk_create(
                ProductionLine(
                    production_order=production, store_id=row["store_id"], quantity=row["units"]
                )
                for row in per_store
            )
            details["converted"] = committed.update(status=PreOrderStatus.CONVERTED)
            details["production_order"] = production.number
            Product.objects.filter(pk=proposal.product_id or 0).update(is_active=True)
            Sku.objects.filter(pk=proposal.sku_id or 0).update(is_active=True)
            status = ProposalStatus.SUCCEEDED
        else:
            details["refunds_due"] = committed.update(status=PreOrderStatus.REFUND_DUE)
            status = ProposalStatus.FAILED
        Proposal.objects.filter(pk=proposal.pk).update(status=status, decided_at=now)
        record_audit(
            None,
            f"demand.proposal_{status.value}",
            target=proposal,
            scope_path=f"/{proposal.chain_id}/",
            details=details,
        )
        crash_point("proposals.decide_before_commit")
    return 1


def _refund_deposit(preorder_id: int, order_id: int) -> bool:
    """Open the refund one pre-order is owed, exactly once (see ``sweep_proposals``)."""
    with transaction.atomic():
        # Lock order: the order row first, as payments, pickups and refunds do.
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("store")
            .filter(pk=order_id)
            .first()
        )
        preorder = PreOrder.objects.filter(pk=preorder_id, status=PreOrderStatus.REFUND_DUE).first()
        if order is None or preorder is None:
            return False
        cancelled = Proposal.objects.filter(
            pk=preorder.proposal_id, status=ProposalStatus.CANCELLED
        ).exists()
        refund = refund_whole_order(
            order=order, reason=CANCEL_REFUND_REASON if cancelled else AUTO_REFUND_REASON
        )
        if refund is None:  # nothing left to give back (a clerk refunded it): settled
            PreOrder.objects.filter(pk=preorder_id, status=PreOrderStatus.REFUND_DUE).update(
                status=PreOrderStatus.REFUNDED
            )
        crash_point("proposals.refund_before_commit")
    return True


# --- the goods arrive ----------------------------------------------------------------------------
def receive_production_delivery(*, acting: Staff, line: ProductionLine) -> ProductionLine:
    """The store takes its share of a production order in: the units go on its shelf, set aside
    for the paid pre-orders there (which may now be picked up); units of pre-orders refunded
    meanwhile are ordinary stock. Once per line."""
    require_perm(acting, Perm.MANAGE_STOCK)
    if not line.store.is_within(acting.node):
        raise NotFound("生产单不存在")
    now = timeutil.now()
    proposal = line.production_order.proposal
    sku_id = proposal.sku_id
    if sku_id is None:  # a production order exists only for a published proposal
        raise RuntimeError(f"proposal {proposal.pk} has no SKU")
    with transaction.atomic():
        if not ProductionLine.objects.filter(pk=line.pk, received_at__isnull=True).update(
            received_at=now, received_by=acting.user
        ):
            raise Conflict("该批货已入库", code="already_received")
        waiting = list(
            PreOrder.objects.filter(
                proposal=proposal,
                store_id=line.store_id,
                status=PreOrderStatus.CONVERTED,
                allocated=False,
            )
            .order_by("order_id")
            .values_list("pk", "order_id", "quantity")
        )
        # Lock the orders (order rows first, as refunds do) and keep those still paid.
        paid = set(
            Order.objects.select_for_update()
            .filter(pk__in=[o for _, o, _ in waiting], status=OrderStatus.PAID)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        kept = [(p, q) for p, o, q in waiting if o in paid]
        set_aside = sum(q for _, q in kept)
        if set_aside > line.quantity:
            raise RuntimeError(f"production line {line.pk} is short of its pre-orders")
        item, _ = StockItem.objects.select_for_update().get_or_create(
            store_id=line.store_id, sku_id=sku_id
        )
        StockItem.objects.filter(pk=item.pk).update(
            quantity=F("quantity") + line.quantity,
            quantity_allocated=F("quantity_allocated") + set_aside,
        )
        PreOrder.objects.filter(pk__in=[p for p, _ in kept]).update(allocated=True)
        StockMovement.objects.create(
            store_id=line.store_id,
            sku_id=sku_id,
            delta=line.quantity,
            reason=MovementReason.RECEIPT,
            reference=line.production_order.number,
            actor=acting.user,
        )
        record_audit(
            acting.user,
            "demand.production_received",
            target=proposal,
            scope_path=line.store.path,
            details={"units": line.quantity, "set_aside": set_aside, "preorders": len(kept)},
        )
    line.refresh_from_db()
    return line
