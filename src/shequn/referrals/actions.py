"""Referral actions: sharers apply and are approved, HQ sets commission rules, and the order's
life moves its commission through the ledger (``commission.py``):

    paid                     → accrue level 1 (the order's sharer) and level 2 (their parent)
    handed over (pickup)     → release date = now + the freeze period
    release date passed      → the sweep moves it to available
    refunded (any amount)    → claw back down to the rate on what is left paid

The hooks are called inside the orders' own exactly-once transitions, so each runs once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from shequn.catalog.models import Category, Product
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound, PermissionDenied, RuleViolation
from shequn.core.faults import crash_point
from shequn.members.models import Member
from shequn.orders.models import Order
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from . import commission
from .ledger import sharer_account
from .models import (
    AccountKind,
    BindingMode,
    CommissionRule,
    CommissionStatus,
    CustomerBinding,
    LedgerTransaction,
    OrderCommission,
    Payout,
    PayoutStatus,
    RuleKind,
    SettlementBatch,
    Sharer,
    SharerStatus,
)
from .payouts import PayoutGateway, payout_gateway
from .policy import chain_policy, freeze_period

logger = logging.getLogger(__name__)
MAX_LEVELS = 2  # deeper chains are illegal pyramid selling (禁止传销条例)
MAX_FIXED_FEN = 100_000  # ¥1,000 a unit over both levels: above it a typo, not a policy


# --- sharers ----------------------------------------------------------------------------------
def apply_as_sharer(*, member: Member, invited_by: Member | None = None) -> Sharer:
    """A member asks to become a sharer (free). ``invited_by``, an approved sharer of the same
    chain, becomes their level-2 parent; inviting earns nothing by itself."""
    parent = None
    if invited_by is not None:
        if invited_by.pk == member.pk:
            raise InvalidInput("不能邀请自己", code="self_referral")
        parent = Sharer.objects.filter(
            member=invited_by, chain_id=member.chain_id, status=SharerStatus.APPROVED
        ).first()
        if parent is None:
            raise NotFound("邀请人不是本连锁的推客", code="unknown_sharer")
    sharer, created = Sharer.objects.get_or_create(
        member=member, defaults={"chain_id": member.chain_id, "parent": parent}
    )
    if not created and sharer.status == SharerStatus.REJECTED:
        Sharer.objects.filter(pk=sharer.pk, status=SharerStatus.REJECTED).update(
            status=SharerStatus.PENDING, decided_at=None, decided_by=None
        )
        sharer.refresh_from_db()
    return sharer


def decide_sharer(*, acting: Staff, sharer: Sharer, approve: bool) -> Sharer:
    """HQ or the sharer's home store approves or rejects an application."""
    require_perm(acting, Perm.APPROVE_SHARERS)
    if sharer.chain_id != acting.node.chain_id or not sharer.member.home_store.is_within(
        acting.node
    ):
        raise NotFound("推客不存在")
    target = SharerStatus.APPROVED if approve else SharerStatus.REJECTED
    with transaction.atomic():
        if not Sharer.objects.filter(pk=sharer.pk, status=SharerStatus.PENDING).update(
            status=target, decided_at=timeutil.now(), decided_by=acting.user
        ):
            raise RuleViolation("该申请已处理", code="already_decided")
        record_audit(
            acting.user,
            f"referrals.sharer_{target.value}",
            target=sharer,
            scope_path=sharer.member.home_store.path,
        )
    sharer.refresh_from_db()
    return sharer


# --- rules ------------------------------------------------------------------------------------
def set_commission_rule(
    *,
    acting: Staff,
    rates_bp: Sequence[int],
    product: Product | None = None,
    category: Category | None = None,
    pyramid_role: str = "",
    kind: str = RuleKind.PERCENT,
) -> CommissionRule:
    """A rate for a product, a category, a product role or (none of them) the chain's default:
    ``rates_bp`` is level 1, or level 1 and level 2, in basis points (1,000 = 10 %) — or, with
    ``kind="fixed"``, in fen per unit sold (200 = ¥2.00 a unit)."""
    require_perm(acting, Perm.MANAGE_COMMISSIONS)
    rates = list(rates_bp)
    if len(rates) > MAX_LEVELS:
        raise InvalidInput(
            "最多两级分佣: 三级及以上的多层级分佣属于违法传销, 不能设置", code="too_many_levels"
        )
    if kind not in RuleKind.values:
        raise InvalidInput(f"未知的佣金方式: {kind}", code="invalid_rule_kind")
    unit = "万分比" if kind == RuleKind.PERCENT else "分"
    if not rates or any(type(r) is not int or r < 0 for r in rates):
        raise InvalidInput(f"佣金须为非负整数({unit})", code="invalid_rate")
    if kind == RuleKind.PERCENT and sum(rates) > commission.MAX_RATE_BP:
        raise InvalidInput("各级佣金合计不能超过 100%", code="invalid_rate")
    if kind == RuleKind.FIXED and sum(rates) > MAX_FIXED_FEN:
        raise InvalidInput(
            f"每件固定佣金合计不能超过 {MAX_FIXED_FEN // 100} 元", code="invalid_rate"
        )
    targets = [t for t in (product, category, pyramid_role or None) if t is not None]
    if len(targets) > 1:
        raise InvalidInput("一条规则只能针对商品、类目或商品角色之一", code="invalid_target")
    chain_id = acting.node.chain_id
    if (product is not None and product.chain_id != chain_id) or (
        category is not None and category.chain_id != chain_id
    ):
        raise NotFound("商品或类目不存在")
    from shequn.catalog.models import PyramidRole

    if pyramid_role and pyramid_role not in PyramidRole.values:
        raise InvalidInput(f"未知的商品角色: {pyramid_role}", code="invalid_target")
    with transaction.atomic():
        rule = CommissionRule.objects.create(
            chain_id=chain_id,
            kind=kind,
            product=product,
            category=category,
            pyramid_role=pyramid_role,
            level1_bp=rates[0],
            level2_bp=rates[1] if len(rates) > 1 else 0,
        )
        record_audit(
            acting.user,
            "referrals.commission_rule_set",
            target=rule,
            scope_path=acting.node.path,
            details={"rates": rates, "kind": kind},
        )
    return rule


def rule_for(product: Product, rules: Sequence[CommissionRule]) -> CommissionRule | None:
    """The rule for ``product`` among the chain's ``rules`` (newest first): its own, else its
    category's, else its role's, else the chain's default."""
    return (
        next((r for r in rules if r.product_id == product.pk), None)
        or next((r for r in rules if r.category_id and r.category_id == product.category_id), None)
        or next(
            (r for r in rules if r.pyramid_role and r.pyramid_role == product.pyramid_role), None
        )
        or next((r for r in rules if not (r.product_id or r.category_id or r.pyramid_role)), None)
    )


def line_weights(rule: CommissionRule, quantity: int, line_total_fen: int) -> tuple[int, int]:
    """What one line adds to the order's (level 1, level 2) rate weights, in basis points × fen:
    a percentage times the line total, or a fixed amount per unit (× 10,000), the two levels
    together never more than the line itself."""
    if rule.kind == RuleKind.FIXED:
        first = min(rule.level1_bp * quantity, line_total_fen)
        second = min(rule.level2_bp * quantity, line_total_fen - first)
        return first * commission.MAX_RATE_BP, second * commission.MAX_RATE_BP
    return rule.level1_bp * line_total_fen, rule.level2_bp * line_total_fen


def _rates_for_order(order: Order) -> tuple[commission.Rate, commission.Rate]:
    """(level 1, level 2) exact rates for the order: each line's rule (``rule_for``) weighted by
    the line (``line_weights``), over the subtotal. Lines without a rule earn 0."""
    rules = list(CommissionRule.objects.filter(chain_id=order.chain_id).order_by("-id"))
    weight_1 = weight_2 = 0
    if rules:
        for line in order.lines.select_related("sku__product"):
            rule = rule_for(line.sku.product, rules)
            if rule is not None:
                first, second = line_weights(rule, line.quantity, line.line_total_fen)
                weight_1 += first
                weight_2 += second
    per = max(1, order.subtotal_fen)
    return commission.Rate(weight_1, per), commission.Rate(weight_2, per)


# --- the order's life (called by orders.actions inside its own transitions) -------------------
def accrue_order_commissions(order: Order) -> list[OrderCommission]:
    """The order was paid: its approved sharer earns level 1, their approved parent level 2."""
    if order.sharer_id is None:
        return []
    sharer = (
        Sharer.objects.filter(member_id=order.sharer_id, status=SharerStatus.APPROVED)
        .select_related("parent__member")
        .first()
    )
    if sharer is None or order.sharer_id == order.member_id:
        return []
    level1, level2 = _rates_for_order(order)
    chain = [(1, sharer.member, level1)]
    parent = sharer.parent
    if (
        parent is not None
        and parent.status == SharerStatus.APPROVED
        and level2.weight
        and parent.member_id not in (order.member_id, sharer.member_id)  # no self, no cycle
    ):
        chain.append((2, parent.member, level2))
    made = []
    suspicion = fraud_signal(order, sharer.member)
    for level, member, rate in chain:
        amount = commission.accrue(
            order=order, sharer=member, net_paid_fen=order.total_fen, rate_bp=rate
        )
        if amount:
            made.append(
                OrderCommission.objects.create(
                    order=order,
                    member=member,
                    level=level,
                    rate_bp=rate.bp,
                    rate_weight=rate.weight,
                    rate_per=rate.per,
                    base_fen=order.total_fen,
                    accrued_fen=amount,
                    status=CommissionStatus.HELD if suspicion else CommissionStatus.PENDING,
                    hold_reason=suspicion,
                )
            )
    return made


SAME_ADDRESS_ORDERS = 3  # other customers' orders to one address for one sharer, in a week
REFUND_RATIO_MIN_ORDERS = 5
REFUND_RATIO_HOLD = 0.5  # half of a sharer's orders in 30 days refunded


def fraud_signal(order: Order, sharer: Member) -> str:
    """Why this order's commission should wait for a person, or "" (the signals of the issue:
    the sharer paid it themselves, many customers at one address, many refunds)."""
    from shequn.members.models import ChannelIdentity, IdentityChannel
    from shequn.orders.models import OrderStatus

    openids = set(
        ChannelIdentity.objects.filter(
            member=sharer, channel=IdentityChannel.WECHAT_OPENID
        ).values_list("value", flat=True)
    )
    if openids and order.payments.filter(payer_openid__in=openids).exists():
        return "付款人是推客本人(同一微信)"
    now = timeutil.now()
    if order.delivery_address:
        same_address = (
            Order.objects.filter(
                sharer=sharer,
                delivery_address=order.delivery_address,
                created_at__gte=now - timedelta(days=7),
            )
            .exclude(member_id=order.member_id)
            .values("member_id")
            .distinct()
            .count()
        )
        if same_address >= SAME_ADDRESS_ORDERS:
            return f"一周内 {same_address + 1} 位顾客使用同一收货地址"
    recent = Order.objects.filter(
        sharer=sharer, paid_at__isnull=False, created_at__gte=now - timedelta(days=30)
    ).exclude(pk=order.pk)
    total = recent.count()
    if total >= REFUND_RATIO_MIN_ORDERS:
        refunded = recent.filter(status=OrderStatus.REFUNDED).count()
        if refunded / total >= REFUND_RATIO_HOLD:
            return f"近 30 天退款率 {refunded * 100 // total}%"
    return ""


def review_commission(*, acting: Staff, row: OrderCommission, release: bool) -> OrderCommission:
    """A person decides a held commission: release it (the sweep pays it out after the freeze)
    or reject it (clawed back in full, once)."""
    require_perm(acting, Perm.MANAGE_COMMISSIONS)
    if row.order.chain_id != acting.node.chain_id:
        raise NotFound("佣金记录不存在")
    target = CommissionStatus.PENDING if release else CommissionStatus.REJECTED
    with transaction.atomic():
        if not OrderCommission.objects.filter(pk=row.pk, status=CommissionStatus.HELD).update(
            status=target
        ):
            raise RuleViolation("该佣金不在待审核状态", code="not_held")
        if not release:
            commission.reverse(
                order=row.order,
                sharer=row.member,
                net_paid_fen=0,
                rate_bp=row.rate_bp,
                event_key=f"review:{row.pk}",
            )
        record_audit(
            acting.user,
            "referrals.commission_released" if release else "referrals.commission_rejected",
            target=row,
            scope_path=row.order.store.path,
            details={"hold_reason": row.hold_reason, "accrued_fen": row.accrued_fen},
        )
    row.refresh_from_db()
    return row


def start_freeze(order: Order, handed_over_at: datetime) -> None:
    """The order was handed over: its commissions become withdrawable after the chain's freeze
    period (the return window)."""
    OrderCommission.objects.filter(order=order, unfreeze_at__isnull=True).update(
        unfreeze_at=handed_over_at + freeze_period(order.chain_id)
    )


def reverse_order_commissions(order: Order, *, net_paid_fen: int, event_key: str) -> int:
    """A refund succeeded: every commission on the order comes down to its rate on what is left
    paid. Returns the fen clawed back."""
    back = 0
    for row in OrderCommission.objects.filter(order=order).select_related("member"):
        back += commission.reverse(
            order=order,
            sharer=row.member,
            net_paid_fen=net_paid_fen,
            rate_bp=commission.Rate(*row.rate),
            event_key=event_key,
        )
    return back


def release_due_commissions(
    *, now: datetime | None = None, batch: int = 500, pause_s: float = 0.0
) -> int:
    """The sweep: commissions past their freeze become withdrawable, each once (a conditional
    status change in the same transaction as the ledger's unfreeze)."""
    now = now or timeutil.now()
    released = 0
    due = list(
        OrderCommission.objects.filter(status=CommissionStatus.PENDING, unfreeze_at__lte=now)
        .select_related("order", "member")
        .order_by("unfreeze_at", "id")[:batch]
    )
    for row in due:
        with transaction.atomic():
            if OrderCommission.objects.filter(pk=row.pk, status=CommissionStatus.PENDING).update(
                status=CommissionStatus.AVAILABLE
            ):
                commission.unfreeze(order=row.order, sharer=row.member)
                released += 1
        if pause_s:
            time.sleep(pause_s)
    return released


# --- withdrawals ------------------------------------------------------------------------------
def request_withdrawal(*, member: Member, amount_fen: int, request_key: str) -> LedgerTransaction:
    """A sharer asks for part of what they may withdraw (the sharer page and the member API):
    approved sharers only, at least the minimum, never more than available; the same request
    key asked twice withdraws once."""
    if not Sharer.objects.filter(member=member, status=SharerStatus.APPROVED).exists():
        raise PermissionDenied("只有审核通过的推客可以提现", code="not_a_sharer")
    minimum = chain_policy(member.chain_id).min_withdrawal_fen
    if type(amount_fen) is int and amount_fen < minimum:
        raise InvalidInput(f"最低提现 {minimum / 100:.2f} 元", code="below_min_withdrawal")
    return commission.withdraw(sharer=member, amount_fen=amount_fen, request_key=request_key)


# --- settlement ---------------------------------------------------------------------------------
def open_settlement(*, acting: Staff, label: str) -> SettlementBatch:
    """Start (or find) the batch named ``label`` for the caller's chain, e.g. "2026-11"."""
    require_perm(acting, Perm.MANAGE_COMMISSIONS)
    label = (label or "").strip()
    if not label or len(label) > 32:
        raise InvalidInput("批次名称为 1-32 个字符, 如 2026-11", code="invalid_label")
    batch, _ = SettlementBatch.objects.get_or_create(
        chain_id=acting.node.chain_id, label=label, defaults={"created_by": acting.user}
    )
    return batch


def run_settlement(
    batch: SettlementBatch,
    *,
    min_fen: int,
    pause_s: float = 0.0,
    gateway: PayoutGateway | None = None,
) -> dict[str, int]:
    """Withdraw every approved sharer's available balance (at least ``min_fen``) and pay it out.
    Idempotent per (batch, sharer) and restartable: a sharer's withdrawal and its ``Payout`` row
    are one transaction; a payout is asked of the gateway by its own number (the same number,
    the same answer) and settled once (``settle_payout`` has one key for both outcomes)."""
    gateway = gateway or payout_gateway()
    withdrawn = paid = failed = 0
    sharers = Sharer.objects.filter(
        chain_id=batch.chain_id, status=SharerStatus.APPROVED
    ).select_related("member")
    for sharer in sharers.order_by("id"):
        if Payout.objects.filter(batch=batch, member=sharer.member).exists():
            continue
        available = sharer_account(sharer.member, AccountKind.AVAILABLE).balance_fen
        if available < min_fen:
            continue
        try:
            with transaction.atomic():
                withdrawal = commission.withdraw(
                    sharer=sharer.member, amount_fen=available, request_key=f"batch:{batch.pk}"
                )
                Payout.objects.create(
                    batch=batch,
                    member=sharer.member,
                    amount_fen=available,
                    withdrawal=withdrawal,
                    out_detail_no=f"P{batch.pk}M{sharer.member_id}"[:32],
                )
                crash_point("settlement.after_withdrawal")
            withdrawn += 1
        except IntegrityError:  # another runner took this sharer first
            continue
        if pause_s:
            time.sleep(pause_s)
    for payout in Payout.objects.filter(batch=batch, status=PayoutStatus.SUBMITTED).select_related(
        "withdrawal__member", "member"
    ):
        result = gateway.transfer(
            out_detail_no=payout.out_detail_no,
            amount_fen=payout.amount_fen,
            payee=str(payout.member_id),
        )
        with transaction.atomic():
            if not Payout.objects.filter(pk=payout.pk, status=PayoutStatus.SUBMITTED).update(
                status=PayoutStatus.SUCCEEDED if result.succeeded else PayoutStatus.FAILED,
                failure_reason=result.reason[:200],
                finished_at=timeutil.now(),
            ):
                continue
            commission.settle_payout(withdrawal=payout.withdrawal, succeeded=result.succeeded)
        paid += result.succeeded
        failed += not result.succeeded
        if pause_s:
            time.sleep(pause_s)
    SettlementBatch.objects.filter(pk=batch.pk, finished_at__isnull=True).update(
        finished_at=timeutil.now()
    )
    return {"withdrawn": withdrawn, "paid": paid, "failed": failed}


# --- bindings -------------------------------------------------------------------------------------
def bound_sharer(member: Member, now: datetime) -> Member | None:
    """The sharer a customer is bound to right now (their orders credit them), if any. With
    the mode set back to "none", bindings made earlier stop counting."""
    if chain_policy(member.chain_id).binding_mode == BindingMode.NONE:
        return None
    binding = CustomerBinding.objects.filter(member=member).select_related("sharer").first()
    if binding is None or (binding.expires_at is not None and binding.expires_at <= now):
        return None
    if not Sharer.objects.filter(member=binding.sharer, status=SharerStatus.APPROVED).exists():
        return None
    return binding.sharer


def bind_customer(order: Order, now: datetime) -> None:
    """After a paid order brought by a sharer: bind the customer per the chain's mode. The first
    sharer keeps an active binding; an expired one passes to the new sharer."""
    if order.sharer_id is None or order.sharer_id == order.member_id:
        return
    policy = chain_policy(order.chain_id)
    mode = policy.binding_mode
    if mode == BindingMode.NONE:
        return
    if mode == BindingMode.NEW_ONLY and (
        Order.objects.filter(member_id=order.member_id, paid_at__isnull=False)
        .exclude(pk=order.pk)
        .exists()
    ):
        return  # not a new customer
    expires = now + timedelta(days=policy.binding_days) if mode == BindingMode.DAYS else None
    current = CustomerBinding.objects.filter(member_id=order.member_id).first()
    if current is None:
        try:
            with transaction.atomic():
                CustomerBinding.objects.create(
                    member_id=order.member_id,
                    sharer_id=order.sharer_id,
                    bound_at=now,
                    expires_at=expires,
                )
        except IntegrityError:
            pass  # bound at the same moment by another order: that binding stands
    elif current.expires_at is not None and current.expires_at <= now:
        CustomerBinding.objects.filter(pk=current.pk, expires_at__lte=now).update(
            sharer_id=order.sharer_id, bound_at=now, expires_at=expires
        )
