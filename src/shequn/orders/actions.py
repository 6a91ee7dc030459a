"""Order actions: place, cancel, and the sweep that closes unpaid orders at their deadline.

`place_order` is built for a hot SKU: prices are computed on the server, the order and its lines
are written first, and the stock UPDATEs come last (in SKU id order, so two orders never wait
on each other in opposite order), each a guarded ``allocated + n <= quantity``. The row lock on
a hot stock row is therefore held only from that UPDATE to the commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum

from shequn.catalog.models import MovementReason, Sku, StockMovement
from shequn.catalog.pricing import tiered_unit_price
from shequn.catalog.stock import (
    SellableSku,
    hand_over_stock,
    release_stock,
    reserve_stock,
    sellable_skus,
)
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unavailable,
)
from shequn.core.faults import crash_point
from shequn.demand.preorders import (
    commit_preorder,
    holds_stock,
    member_refund_blocker,
    on_preorder_refund_opened,
    release_preorder,
)
from shequn.demand.preorders import pickup_blocker as preorder_pickup_blocker
from shequn.groups.models import CustomerGroup
from shequn.integrations.wechatpay.client import (
    GatewayError,
    PrepayRequest,
    WechatPayClient,
    h5_pay_url,
)
from shequn.integrations.wechatpay.config import notify_url, wechatpay_client, wechatpay_config
from shequn.members.models import Member
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm
from shequn.promotions.coupons import (
    Discounts,
    PricedLine,
    instant_discounts_running,
    order_discounts,
    release_discounts,
    take_discounts,
)
from shequn.promotions.flash import (
    SOLD_OUT_MESSAGE,
    FlashOffer,
    claim_flash,
    flash_offer,
    known_sold_out,
    note_sold_out,
    release_flash,
)
from shequn.promotions.groupbuy import (
    GroupBuyOffer,
    group_buy_offer,
    hold_seat,
    on_refund_opened,
    pickup_blocker,
    release_group_buy,
    seat_payer,
)
from shequn.referrals.actions import (
    accrue_order_commissions,
    bind_customer,
    bound_sharer,
    reverse_order_commissions,
    start_freeze,
)
from shequn.referrals.staff_rewards import accrue_group_owner_reward, reverse_group_owner_reward

from . import flash_path
from .models import (
    Fulfilment,
    Order,
    OrderChannel,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentNotification,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from .states import transition

logger = logging.getLogger("shequn.orders")

PAYMENT_WINDOW = timedelta(minutes=15)
MAX_LINES = 50
MAX_QUANTITY = 999
MAX_ORDER_TOTAL_FEN = 100_000_000  # ¥1,000,000 in one order: a typo or an attack, not a basket
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,64}$")


@dataclass(frozen=True)
class LineRequest:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    created: bool  # False when the idempotency key returned an existing order


class OutOfStock(RuleViolation):
    default_code = "out_of_stock"


# Django rebuilds ``Choices.values`` on every access.
_CHANNELS = frozenset(OrderChannel.values)
_FULFILMENTS = frozenset(Fulfilment.values)


def _clean_lines(lines: Sequence[LineRequest]) -> dict[int, int]:
    """{sku_id: quantity}, duplicates merged; refuses anything but whole positive quantities."""
    if not lines:
        raise InvalidInput("订单至少包含一件商品", code="empty_order")
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"一个订单最多 {MAX_LINES} 种商品", code="too_many_lines")
    merged: dict[int, int] = {}
    for line in lines:
        quantity = line.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidInput("数量须为整数", code="invalid_quantity")
        if isinstance(line.sku_id, bool) or not isinstance(line.sku_id, int):
            raise InvalidInput("商品编号无效", code="invalid_sku")
        if quantity < 1:
            raise InvalidInput("数量须大于 0", code="invalid_quantity")
        merged[line.sku_id] = merged.get(line.sku_id, 0) + quantity
        if merged[line.sku_id] > MAX_QUANTITY:
            raise InvalidInput(f"单种商品最多购买 {MAX_QUANTITY} 件", code="invalid_quantity")
    return merged


def _check_idempotency_key(key: str) -> None:
    if not IDEMPOTENCY_KEY.match(key or ""):
        raise InvalidInput("请求编号须为 1-64 个可见 ASCII 字符", code="invalid_idempotency_key")


def _attributable(sharer: Member | None, member: Member) -> Member | None:
    """The sharer an order may credit: no self-attribution; a foreign sharer is ignored, not
    trusted."""
    if sharer is not None and (sharer.chain_id != member.chain_id or sharer.pk == member.pk):
        return None
    return sharer


def _check_total(subtotal_fen: int) -> None:
    if subtotal_fen > MAX_ORDER_TOTAL_FEN:
        raise InvalidInput("订单金额超出上限", code="order_total_too_large")


def _fingerprint(**parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _new_number(now: datetime) -> str:
    """yymmdd + 16 random digits: 22 characters (WeChat's out_trade_no allows 32); at 100k orders
    a day the chance of any collision is below 1e-6, and a collision fails safe (unique)."""
    return timeutil.to_local(now).strftime("%y%m%d") + f"{secrets.randbelow(10**16):016d}"


def key_reused() -> Conflict:
    """The refusal for an idempotency key already used by a different request."""
    return Conflict("该请求编号已用于另一笔订单, 请勿重复使用", code="idempotency_key_reused")


def _existing(member: Member, key: str, fingerprint: str) -> PlacedOrder | None:
    order = Order.objects.filter(member=member, idempotency_key=key).order_by().first()
    if order is None:
        return None
    if order.request_fingerprint != fingerprint:
        raise key_reused()
    return PlacedOrder(order=order, created=False)


def _replay_or_raise(
    conflict: IntegrityError, member: Member, key: str, fingerprint: str
) -> PlacedOrder:
    """After an insert refused as a duplicate: a concurrent request with the same key won it,
    and its order is the answer; anything else is the error it was."""
    replay = _existing(member, key, fingerprint)
    if replay is None:
        raise conflict
    return replay


def _sellable(member: Member, store: OrgNode, quantities: dict[int, int]) -> dict[int, SellableSku]:
    """What the store can sell of the request, or the precise reason it cannot."""
    skus = sellable_skus(store_id=store.pk, chain_id=member.chain_id, quantities=quantities)
    absent = set(quantities) - set(skus)
    if absent:  # the slow path only: tell an unknown SKU from one this store does not sell
        known = dict(
            Sku.objects.filter(pk__in=absent, chain_id=member.chain_id)
            .order_by()
            .values_list("pk", "code")
        )
        unknown = sorted(absent - set(known))
        if unknown:
            raise NotFound(f"商品不存在: {unknown}", code="unknown_sku")
        raise RuleViolation(f"{store.name}不售: {'、'.join(known.values())}", code="not_sold_here")
    for sku in skus.values():
        if not sku.on_sale:
            raise RuleViolation(f"「{sku}」已下架", code="not_on_sale")
    return skus


def place_order(
    *,
    member: Member,
    store: OrgNode,
    lines: Sequence[LineRequest],
    idempotency_key: str,
    channel: str = OrderChannel.ORGANIC,
    source_group: CustomerGroup | None = None,
    sharer: Member | None = None,
    content_ref: str = "",
    fulfilment: str = Fulfilment.PICKUP,
    delivery_address: str = "",
    flash_sale_id: int | None = None,
    group_buy_id: int | None = None,
    team_id: int | None = None,
    coupon_id: int | None = None,
) -> PlacedOrder:
    """Place an order for ``member`` at ``store``; the same key returns the same order.
    With ``flash_sale_id`` the sale's SKU is sold at the sale price, within its quota and the
    member's and the order's limits. With ``group_buy_id`` the campaign's SKU is sold at the
    team price; the payment later seats the member in ``team_id`` (or a new team). With
    ``coupon_id`` the member's coupon is used; a running instant discount applies by itself
    (the rules: ``promotions/coupons.py``)."""
    _check_idempotency_key(idempotency_key)
    if store.kind != NodeKind.STORE or store.chain_id != member.chain_id:
        raise NotFound("门店不存在")
    if channel not in _CHANNELS:
        raise InvalidInput(f"未知的来源渠道: {channel}", code="invalid_channel")
    if fulfilment not in _FULFILMENTS:
        raise InvalidInput(f"未知的履约方式: {fulfilment}", code="invalid_fulfilment")
    delivery_address = (delivery_address or "").strip()
    if fulfilment == Fulfilment.DELIVERY and not delivery_address:
        raise InvalidInput("到家配送须填写地址", code="missing_address")
    if len(delivery_address) > 200 or len(content_ref) > 64:
        raise InvalidInput("地址或素材编号过长")
    if source_group is not None and source_group.store.chain_id != member.chain_id:
        raise NotFound("社群不存在")
    if flash_sale_id is not None and group_buy_id is not None:
        raise InvalidInput("一个订单不能同时参加秒杀和拼团", code="promotion_conflict")
    if team_id is not None and group_buy_id is None:
        raise InvalidInput("参团须指明拼团活动", code="invalid_team")
    sharer = _attributable(sharer, member)
    if sharer is None:  # no fresh link: the sharer the customer is bound to, if any
        sharer = bound_sharer(member, timeutil.now())
    quantities = _clean_lines(lines)
    now = timeutil.now()
    fingerprint = _fingerprint(
        store=store.pk,
        lines=sorted(quantities.items()),
        channel=channel,
        group=source_group.pk if source_group else None,
        sharer=sharer.pk if sharer else None,
        content=content_ref,
        fulfilment=fulfilment,
        address=delivery_address,
        **({"flash": flash_sale_id} if flash_sale_id is not None else {}),
        **({"group_buy": group_buy_id, "team": team_id} if group_buy_id is not None else {}),
        **({"coupon": coupon_id} if coupon_id is not None else {}),
    )
    if (
        flash_sale_id is not None
        and group_buy_id is None
        and coupon_id is None
        and len(quantities) == 1
        and connection.vendor == "postgresql"
        and type(flash_sale_id) is int
    ):
        fast = _place_flash_fast(
            sale_id=flash_sale_id,
            member=member,
            store=store,
            quantities=quantities,
            now=now,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            fields={
                "fulfilment": fulfilment,
                "delivery_address": delivery_address,
                "channel": channel,
                "source_group_id": source_group.pk if source_group else None,
                "sharer_id": sharer.pk if sharer else None,
                "content_ref": content_ref,
            },
        )
        if fast is not None:
            return fast
    try:
        flash = _flash_offer(flash_sale_id, member, store, quantities, now)
        team_buy: GroupBuyOffer | None = None
        if group_buy_id is not None:
            team_buy = group_buy_offer(
                campaign_id=group_buy_id,
                team_id=team_id,
                member=member,
                store=store,
                quantities=quantities,
                now=now,
            )
        skus = _sellable(member, store, quantities)
    except DomainError:
        # A retry of an order that was placed (the catalog may have changed since) gets its
        # order back; anything else gets the error.
        replay = _existing(member, idempotency_key, fingerprint)
        if replay is not None:
            return replay
        raise
    priced = [
        (
            skus[sku_id],
            quantity,
            flash.price_fen
            if flash is not None and sku_id == flash.sku_id
            else team_buy.price_fen
            if team_buy is not None
            else tiered_unit_price(skus[sku_id].price_fen, quantity, skus[sku_id].tiers),
        )
        for sku_id, quantity in sorted(quantities.items())
    ]
    subtotal = sum(price * quantity for _, quantity, price in priced)
    _check_total(subtotal)
    promotional = {flash.sku_id} if flash else {team_buy.sku_id} if team_buy else set()
    try:
        discounts = order_discounts(
            member=member,
            lines=[
                PricedLine(
                    sku.product_id, sku.category_id, price * quantity, sku.sku_id in promotional
                )
                for sku, quantity, price in priced
            ],
            coupon_id=coupon_id,
            now=now,
        )
    except DomainError:
        replay = _existing(member, idempotency_key, fingerprint)  # the coupon is used: by it?
        if replay is not None:
            return replay
        raise
    try:
        with transaction.atomic():
            order = Order.objects.create(
                number=_new_number(now),
                chain_id=member.chain_id,
                store=store,
                member=member,
                fulfilment=fulfilment,
                delivery_address=delivery_address,
                subtotal_fen=subtotal,
                total_fen=subtotal - discounts.total_fen,
                channel=channel,
                source_group=source_group,
                sharer=sharer,
                content_ref=content_ref,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                payment_deadline=now + PAYMENT_WINDOW,
            )
            OrderLine.objects.bulk_create(
                OrderLine(
                    order=order,
                    sku_id=sku.sku_id,
                    product_name=sku.product_name,
                    sku_spec=sku.spec,
                    quantity=quantity,
                    unit_price_fen=price,
                    line_total_fen=price * quantity,
                    flash_quota_id=flash.quota_id
                    if flash is not None and sku.sku_id == flash.sku_id
                    else None,
                )
                for sku, quantity, price in priced
            )
            record_audit(
                None,
                "orders.placed",
                target=order,
                scope_path=store.path,
                details={
                    "member": member.pk,
                    "total_fen": subtotal - discounts.total_fen,
                    "channel": channel,
                    **({"discount_fen": discounts.total_fen} if discounts.total_fen else {}),
                },
            )
            if team_buy is not None and not hold_seat(
                team_buy, order=order, quantity=quantities[team_buy.sku_id]
            ):
                raise RuleViolation(
                    f"该拼团每人限购 {team_buy.per_member_limit} 件, 你已达到上限",
                    code="group_buy_member_limit",
                )
            _take_discounts(discounts, order, now)
            # Hot rows last: the sale's quota, then stock in SKU id order; all or nothing.
            # A flash order of one line takes quota and shelf together; with more lines the
            # quota goes first and the shelves follow in SKU order (one lock order for all).
            alone = flash is not None and len(priced) == 1
            if flash is not None:
                refused = claim_flash(
                    flash,
                    member_id=member.pk,
                    quantity=quantities[flash.sku_id],
                    store_id=store.pk if alone else None,
                )
                if refused == "flash_sold_out":
                    raise OutOfStock(SOLD_OUT_MESSAGE, code="flash_sold_out")
                if refused == "out_of_stock":
                    raise OutOfStock("本店该商品已售完", details={"sku_id": flash.sku_id})
                if refused is not None:
                    raise RuleViolation(
                        f"每人限购 {flash.per_member_limit} 件, 你已达到上限", code=refused
                    )
            for sku, quantity, _ in [] if alone else priced:
                if not reserve_stock(store_id=store.pk, sku_id=sku.sku_id, quantity=quantity):
                    raise OutOfStock(f"「{sku}」库存不足", details={"sku_id": sku.sku_id})
    except IntegrityError as conflict:
        return _replay_or_raise(conflict, member, idempotency_key, fingerprint)
    return PlacedOrder(order=order, created=True)


def place_preorder_order(
    *,
    member: Member,
    store: OrgNode,
    sku: Sku,
    quantity: int,
    unit_price_fen: int,
    deposit_fen: int,
    idempotency_key: str,
    source_group: CustomerGroup,
    hold: Callable[[Order], None],
    sharer: Member | None = None,
) -> PlacedOrder:
    """The order that carries a C2B pre-order: one line of a product that does not exist on any
    shelf yet (so no stock is reserved), the deposit paid online, the rest of the price due at
    pickup. ``hold`` runs inside the transaction (the pre-order's own rows: its limit, its
    record) and rolls the order back by raising. The same key returns the same order."""
    _check_idempotency_key(idempotency_key)
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 1 <= quantity <= MAX_QUANTITY
    ):
        raise InvalidInput(f"数量须为 1 到 {MAX_QUANTITY} 的整数", code="invalid_quantity")
    sharer = _attributable(sharer, member)
    now = timeutil.now()
    fingerprint = _fingerprint(
        store=store.pk, preorder_sku=sku.pk, quantity=quantity, group=source_group.pk
    )
    replay = _existing(member, idempotency_key, fingerprint)
    if replay is not None:
        return replay
    subtotal = unit_price_fen * quantity
    _check_total(subtotal)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                number=_new_number(now),
                chain_id=member.chain_id,
                store=store,
                member=member,
                subtotal_fen=subtotal,
                total_fen=deposit_fen * quantity,
                balance_due_fen=subtotal - deposit_fen * quantity,
                channel=OrderChannel.GROUP_SHARE,
                source_group=source_group,
                sharer=sharer,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                payment_deadline=now + PAYMENT_WINDOW,
            )
            OrderLine.objects.create(
                order=order,
                sku=sku,
                product_name=sku.product.name,
                sku_spec=sku.spec,
                quantity=quantity,
                unit_price_fen=unit_price_fen,
                line_total_fen=subtotal,
            )
            hold(order)
            record_audit(
                None,
                "orders.placed",
                target=order,
                scope_path=store.path,
                details={
                    "member": member.pk,
                    "total_fen": order.total_fen,
                    "balance_due_fen": order.balance_due_fen,
                    "preorder": True,
                },
            )
    except IntegrityError as conflict:
        return _replay_or_raise(conflict, member, idempotency_key, fingerprint)
    return PlacedOrder(order=order, created=True)


def _place_flash_fast(
    *,
    sale_id: int,
    member: Member,
    store: OrgNode,
    quantities: dict[int, int],
    now: datetime,
    idempotency_key: str,
    fingerprint: str,
    fields: dict[str, Any],
) -> PlacedOrder | None:
    """A one-line flash order in one statement (``flash_path``); None hands the request to the
    general path, which says precisely what is wrong with anything unusual."""
    facts = flash_path.sale_facts(sale_id)
    if facts is None or facts.chain_id != member.chain_id or set(quantities) != {facts.sku_id}:
        return None
    quantity = quantities[facts.sku_id]
    quota_id = flash_path.quota_for(facts, store)
    total = facts.price_fen * quantity
    if (
        quota_id is None
        or quantity > min(facts.per_order_limit, facts.per_member_limit)
        or total > MAX_ORDER_TOTAL_FEN
        or instant_discounts_running(member.chain_id, now, for_promotions=True)
    ):
        return None
    if known_sold_out(quota_id):  # answered from memory, but a retry still gets its order
        if flash_path.placed_before(member.pk, idempotency_key):
            return _existing(member, idempotency_key, fingerprint)
        raise OutOfStock(SOLD_OUT_MESSAGE, code="flash_sold_out")
    order_values = {
        **fields,
        "number": _new_number(now),
        "chain_id": member.chain_id,
        "store_id": store.pk,
        "member_id": member.pk,
        "status": OrderStatus.PENDING_PAYMENT,
        "subtotal_fen": total,
        "total_fen": total,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
        "payment_deadline": now + PAYMENT_WINDOW,
        "created_at": now,
    }
    try:
        placed = flash_path.place_flash_order(
            facts=facts,
            sale_id=sale_id,
            quota_id=quota_id,
            member=member,
            store=store,
            quantity=quantity,
            order_values=order_values,
            now=now,
        )
    except IntegrityError as conflict:  # the key, or an order number drawn twice (rare)
        return _replay_or_raise(conflict, member, idempotency_key, fingerprint)
    if isinstance(placed, Order):
        return PlacedOrder(order=placed, created=True)
    if placed.step == "race":  # lost the last units, or the key, to a concurrent request:
        return None  # ask the long way
    if placed.step == "retry":  # this key placed an order: that one, or a 409
        replay = _existing(member, idempotency_key, fingerprint)
        if replay is not None:
            return replay
    if placed.step == "stock":  # off sale, or the shelf is empty: the reader says which
        _sellable(member, store, quantities)
        raise OutOfStock("本店该商品已售完", details={"sku_id": facts.sku_id})
    error = flash_path.explain_refusal(placed, facts, now)
    if error.code == "flash_sold_out":
        if placed.snapshot is not None and (placed.snapshot.units_left or 0) <= 0:
            note_sold_out(quota_id)
        raise OutOfStock(error.message, code=error.code)
    raise error


def _flash_offer(
    sale_id: int | None, member: Member, store: OrgNode, quantities: dict[int, int], now: datetime
) -> FlashOffer | None:
    """The sale this order buys into, checked against what the order asks for."""
    if sale_id is None:
        return None
    if isinstance(sale_id, bool) or not isinstance(sale_id, int):
        raise InvalidInput("秒杀活动编号无效", code="invalid_flash_sale")
    offer = flash_offer(sale_id=sale_id, store=store, chain_id=member.chain_id, now=now)
    quantity = quantities.get(offer.sku_id)
    if quantity is None:
        raise InvalidInput("订单里没有该秒杀商品", code="flash_sku_missing")
    limit = min(offer.per_order_limit, offer.per_member_limit)
    if quantity > limit:
        raise RuleViolation(f"该秒杀每单限购 {limit} 件", code="flash_order_limit")
    return offer


def _take_discounts(discounts: Discounts, order: Order, now: datetime) -> None:
    refused = take_discounts(discounts, order=order, now=now)
    if refused == "coupon_used":
        raise RuleViolation("该优惠券已使用", code="coupon_used")
    if refused is not None:  # the budget ran out since the price was shown: confirm again
        raise RuleViolation(
            "立减金刚刚发完, 订单金额有变化, 请重新确认后提交", code="instant_discount_gone"
        )


def _release_promotions(order: Order, lines: Sequence[OrderLine], *, unpaid: bool) -> None:
    """Give a closing order's promotion units back: flash lines to the quota and the member's
    limit, a group-buy's units to the member's limit (and an unpaid seat request is dropped);
    an unpaid order's coupon and instant discount (a refund keeps them spent)."""
    release_group_buy(order, unpaid=unpaid)
    release_preorder(order, unpaid=unpaid)
    if unpaid:
        release_discounts(order)
    for line in lines:
        if line.flash_quota_id is not None and not release_flash(
            quota_id=line.flash_quota_id, member_id=order.member_id, quantity=line.quantity
        ):
            raise RuntimeError(f"flash quota missing for order {order.number} line {line.pk}")


def _apply_to_lines(order: Order, stock_update: Callable[..., bool]) -> list[OrderLine]:
    """Run one guarded stock update (release, hand over) for every line, in SKU order.
    If one finds nothing to act on, the allocations no longer add up: refuse to guess.
    A pre-order whose goods have not reached the store holds nothing yet: nothing to do."""
    lines = list(order.lines.order_by("sku_id"))
    if not holds_stock(order):
        return lines
    for line in lines:
        if not stock_update(store_id=order.store_id, sku_id=line.sku_id, quantity=line.quantity):
            raise RuntimeError(f"allocation missing for order {order.number} sku {line.sku_id}")
    return lines


def _release(
    order: Order, *, reason: str, actor: Staff | None, now: datetime, gateway_checked: bool
) -> bool:
    """Close a pending order and give its allocated units back, exactly once. Unless the
    gateway was just asked (and the payment closed there), only an order whose payment was
    never opened may close: a payment opened meanwhile makes this a no-op."""
    with transaction.atomic():
        closed = transition(
            order.pk,
            OrderStatus.PENDING_PAYMENT,
            OrderStatus.CLOSED,
            only_if=None if gateway_checked else {"payment_started_at__isnull": True},
            closed_at=now,
            close_reason=reason,
        )
        if not closed:
            return False
        _release_promotions(order, _apply_to_lines(order, release_stock), unpaid=True)
        record_audit(
            actor.user if actor else None,
            "orders.closed",
            target=order,
            scope_path=order.store.path,
            details={"reason": reason},
        )
    return True


def cancel_unpaid_order(
    *, order: Order, member: Member | None = None, acting: Staff | None = None
) -> Order:
    """The member (or store staff) cancels an order that is not paid yet."""
    if member is not None and order.member_id != member.pk:
        raise NotFound("订单不存在")
    if acting is not None:
        require_perm(acting, Perm.MANAGE_ORDERS)
    if member is None and acting is None:
        raise InvalidInput("须指明取消人")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 不能取消", code="illegal_transition"
        )
    reason = "member_cancelled" if member is not None else "staff_cancelled"
    if not _close_unpaid(order, reason=reason, actor=acting, now=timeutil.now(), waiting=True):
        raise Conflict("订单状态已变化(可能已支付), 请刷新", code="order_changed")
    order.refresh_from_db()
    return order


def _close_unpaid(
    order: Order, *, reason: str, actor: Staff | None, now: datetime, waiting: bool = False
) -> bool:
    """Close a pending order, asking the gateway first whenever a payment may have been opened
    — also one opened by another tab while we were deciding. False when it was paid or moved
    meanwhile, or (sweeps) when the gateway must be asked again later; ``waiting`` (a person
    is waiting) raises Unavailable instead of waiting."""
    checked = False
    for _ in range(2):
        if order.payment_started_at is not None and not checked:
            if not _gateway_lets_close(order, now, wait_for_gateway=waiting):
                return False
            checked = True
        if _release(order, reason=reason, actor=actor, now=now, gateway_checked=checked):
            return True
        order.refresh_from_db()
        if order.status != OrderStatus.PENDING_PAYMENT:
            return False
    return False


def sweep_expired_orders(
    *, now: datetime | None = None, batch: int = 500, pause_s: float = 0.0
) -> int:
    """Close every pending order whose payment deadline has passed; returns how many it closed.

    Idempotent and safe to run concurrently or after a crash: each order is released in its own
    transaction by a conditional transition, so a second sweeper finds nothing left to do.
    """
    now = now or timeutil.now()
    closed = 0
    broken: set[int] = set()
    while True:
        due = list(
            Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, payment_deadline__lte=now)
            .exclude(pk__in=broken)
            .select_related("store")
            .order_by("payment_deadline", "id")[:batch]
        )
        progressed = False
        for order in due:
            if order.pk in broken:
                continue
            try:
                if _close_unpaid(order, reason="payment_timeout", actor=None, now=now):
                    closed += 1
                    progressed = True
                else:  # paid meanwhile, or the gateway must be asked again next time
                    broken.add(order.pk)
            except Exception:  # one broken order must not block every later one
                logger.exception("could not close order %s", order.number)
                broken.add(order.pk)
            if pause_s:
                time.sleep(pause_s)  # go easy on a busy database
        if len(due) < batch or not progressed:
            return closed


# --- payments ------------------------------------------------------------------------------
class PaymentMismatch(RuleViolation):
    """A verified notification that does not match our order: refuse it, change nothing."""

    default_code = "payment_mismatch"


def _claim_notification(
    provider: str, notification_id: str, event_type: str, **fields: str
) -> bool:
    """Record a notification id inside the caller's transaction; False if it was seen before.
    Concurrent duplicates wait on the unique index and then see the first one's row."""
    try:
        with transaction.atomic():
            PaymentNotification.objects.create(
                provider=provider,
                notification_id=notification_id,
                event_type=event_type,
                outcome="processing",
                **fields,
            )
    except IntegrityError:
        return False
    return True


def _finish_notification(provider: str, notification_id: str, **fields: str) -> None:
    PaymentNotification.objects.filter(provider=provider, notification_id=notification_id).update(
        **fields
    )


@dataclass(frozen=True)
class PaymentReport:
    """What a payment platform says happened, already verified by its adapter."""

    notification_id: str
    out_trade_no: str
    transaction_id: str
    amount_fen: int
    mchid: str
    appid: str
    succeeded_at: datetime
    payer_openid: str = ""

    @classmethod
    def from_wechat(cls, resource: Mapping[str, Any], *, notification_id: str) -> PaymentReport:
        """Read a WeChat Pay transaction (a notification's resource or an order query).
        KeyError, TypeError or ValueError when it is not one."""
        payer = resource.get("payer") or {}
        return cls(
            notification_id=bounded_id(notification_id, 64),
            out_trade_no=bounded_id(resource["out_trade_no"], 32),
            transaction_id=bounded_id(resource["transaction_id"], 64),
            amount_fen=int(resource["amount"]["total"]),
            mchid=str(resource["mchid"]),
            appid=str(resource["appid"]),
            succeeded_at=_success_time(str(resource.get("success_time", ""))),
            payer_openid=str(payer.get("openid", "")) if isinstance(payer, dict) else "",
        )


def bounded_id(value: object, limit: int) -> str:
    """An id from the platform as text, refused (ValueError) if it cannot be ours."""
    text = str(value)
    if not text or len(text) > limit:
        raise ValueError("id length")
    return text


def _success_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return timeutil.now()
    return moment if moment.tzinfo else timeutil.now()


def record_payment(
    report: PaymentReport, *, expected_mchid: str, expected_appid: str, provider: str = "wechatpay"
) -> str:
    """Apply a payment success exactly once. Returns the outcome: ``paid``, ``duplicate``,
    ``refund_required`` (paid after close, or paid twice).

    The notification id and the transaction id are both unique keys, and the order row is locked
    before its state is read, so duplicates — sequential or concurrent — make one transition.
    """
    if report.mchid != expected_mchid or report.appid != expected_appid:
        raise PaymentMismatch("商户号或应用 ID 与本商户不符")
    with transaction.atomic():
        if not _claim_notification(
            provider,
            report.notification_id,
            "TRANSACTION.SUCCESS",
            out_trade_no=report.out_trade_no,
            transaction_id=report.transaction_id,
        ):
            return "duplicate"
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("store")
            .filter(number=report.out_trade_no)
            .first()
        )
        if order is None:
            raise PaymentMismatch(f"订单不存在: {report.out_trade_no}")
        if report.amount_fen != order.total_fen:
            raise PaymentMismatch(
                f"支付金额 {report.amount_fen} 分与订单应付 {order.total_fen} 分不符"
            )
        if Payment.objects.filter(provider=provider, transaction_id=report.transaction_id).exists():
            outcome = "duplicate"  # a new notification id for a payment we already booked
        else:
            if order.status == OrderStatus.PENDING_PAYMENT:
                _mark_paid(order, report.succeeded_at)
                outcome = "paid"
            else:  # closed (paid too late) or paid twice: keep the money's trace, give it back
                outcome = "refund_required"
            Payment.objects.create(
                order=order,
                provider=provider,
                out_trade_no=report.out_trade_no,
                transaction_id=report.transaction_id,
                amount_fen=report.amount_fen,
                status=PaymentStatus.SUCCEEDED,
                payer_openid=report.payer_openid[:128],
                succeeded_at=report.succeeded_at,
                refund_required=outcome == "refund_required",
            )
            if outcome == "paid":  # what a payment sets going, the payment row written
                seat_payer(order, timeutil.now())  # a group-buy order takes its team seat
                commit_preorder(order, report.succeeded_at)  # a C2B deposit counts
                accrue_order_commissions(order)  # its sharer's commission, pending
                accrue_group_owner_reward(order)  # the reward of the group it came from
                bind_customer(order, timeutil.now())  # per the chain's binding mode
            record_audit(
                None,
                "orders.paid" if outcome == "paid" else "orders.paid_needs_refund",
                target=order,
                scope_path=order.store.path,
                details={"transaction_id": report.transaction_id, "amount_fen": report.amount_fen},
            )
        _finish_notification(provider, report.notification_id, outcome=outcome)
        crash_point("payments.before_commit")  # crash tests: verified, written, not committed
    return outcome


# --- paying through the gateway (prepay, query, close) ------------------------------------
# These call the gateway, so they run outside any transaction ("atomic phases"): the recovery
# point (``payment_started_at``) is committed before the call, and a retry reuses the same
# out_trade_no, which the gateway treats as the same payment.
GATEWAY_GRACE = timedelta(hours=1)  # how long past its deadline an order waits for the gateway


@dataclass(frozen=True)
class PaymentStart:
    kind: str  # "h5": send the browser to ``url``; "jsapi": hand ``params`` to WeixinJSBridge
    url: str = ""
    params: dict[str, str] | None = None


def _gateway() -> WechatPayClient:
    client = wechatpay_client()
    if client is None:
        raise Unavailable("本店尚未开通在线支付", code="payment_not_configured")
    return client


def _outside_transaction(what: str) -> None:
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{what} calls the payment gateway; call it outside a transaction")


def _description(order: Order) -> str:
    lines = list(order.lines.order_by("id").values_list("product_name", "quantity"))
    first = f"{lines[0][0]}×{lines[0][1]}" if lines else "订单"
    return f"{order.store.name} {first}" + (f" 等{len(lines)}种" if len(lines) > 1 else "")


def start_payment(
    *, order: Order, member: Member, return_url: str, client_ip: str, openid: str = ""
) -> PaymentStart:
    """Open the member's payment for an unpaid order: JSAPI inside WeChat (``openid`` known),
    H5 cashier in any other phone browser. The gateway refuses payment after our deadline
    (``time_expire``), so a payment cannot outlive the stock reservation it pays for."""
    _outside_transaction("start_payment")
    if order.member_id != member.pk:
        raise NotFound("订单不存在")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 无需支付", code="illegal_transition"
        )
    now = timeutil.now()
    if order.payment_deadline <= now + timedelta(seconds=30):
        raise RuleViolation("订单已超过支付时限, 请重新下单", code="payment_expired")
    client, config = _gateway(), wechatpay_config()
    kind = "jsapi" if openid else "h5"
    # The recovery point, committed before the call, and only while the order is still open:
    # a cancel that got in first wins, and one that comes later sees it and asks the gateway.
    Order.objects.filter(
        pk=order.pk, status=OrderStatus.PENDING_PAYMENT, payment_started_at__isnull=True
    ).update(payment_started_at=now, payment_channel=kind)
    order.refresh_from_db(fields=["status", "payment_started_at", "payment_channel"])
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 无需支付", code="illegal_transition"
        )
    if order.payment_channel != kind:  # WeChat refuses one out_trade_no under two trade types
        where = "微信内" if order.payment_channel == "jsapi" else "手机浏览器"
        raise RuleViolation(
            f"此订单已在{where}发起支付, 请在原处完成支付, 或取消后重新下单",
            code="payment_channel_changed",
        )
    prepay = PrepayRequest(
        appid=config.appid,
        out_trade_no=order.number,
        description=_description(order),
        total_fen=order.total_fen,
        notify_url=notify_url(),
        time_expire=timeutil.to_local(order.payment_deadline).isoformat(timespec="seconds"),
    )
    try:
        if openid:
            prepay_id = client.create_jsapi_prepay(prepay, payer_openid=openid)
            return PaymentStart(
                "jsapi", params=client.jsapi_pay_params(appid=config.appid, prepay_id=prepay_id)
            )
        h5_url = client.create_h5_prepay(prepay, payer_client_ip=client_ip)
    except GatewayError as exc:
        if exc.code == "ORDERPAID":
            reconcile_payment(order)
            raise RuleViolation("订单已支付", code="already_paid") from None
        if 400 <= exc.status < 500:
            raise RuleViolation(
                f"支付平台拒绝了该订单: {exc.message}", code="payment_refused"
            ) from None
        raise Unavailable(
            "支付服务暂时不可用, 请稍后再试", code="payment_gateway_unavailable"
        ) from None
    return PaymentStart("h5", url=h5_pay_url(h5_url, return_url))


def reconcile_payment(order: Order) -> str:
    """Ask the gateway what became of the order's payment, for when a notification is late or
    lost. A success is recorded exactly as its notification would be (``paid``, ``duplicate``
    or ``refund_required``); otherwise the gateway's trade_state in lower case (``notpay``,
    ``closed``, ...) or ``not_started``. It takes no lock before the call, so it may run inside
    a caller's transaction that holds none (the API's Idempotency-Key wrapper)."""
    if order.payment_started_at is None:
        return "not_started"
    try:
        data = _gateway().query_order(order.number)
    except GatewayError as exc:
        if exc.code == "ORDER_NOT_EXIST":
            return "not_started"
        raise Unavailable("支付服务暂时不可用", code="payment_gateway_unavailable") from None
    state = str(data.get("trade_state") or "unknown")
    if state != "SUCCESS":
        return state.lower()
    config = wechatpay_config()
    transaction_id = hashlib.sha256(str(data.get("transaction_id")).encode()).hexdigest()[:40]
    report = PaymentReport.from_wechat(data, notification_id=f"query:{transaction_id}")
    return record_payment(report, expected_mchid=config.mchid, expected_appid=config.appid)


def _gateway_lets_close(order: Order, now: datetime, *, wait_for_gateway: bool = False) -> bool:
    """Before closing an order whose payer may have paid at the gateway: ask (a lost
    notification is recovered here), then close it there so no payment can land afterwards.
    False when it turned out paid, or when the gateway cannot be reached — then the order
    waits, up to GATEWAY_GRACE past its deadline (a payment after that is refunded by the
    late-success path). ``wait_for_gateway`` raises instead, for a person waiting on it."""
    try:
        outcome = reconcile_payment(order)
        if outcome in ("paid", "duplicate", "refund_required"):
            return False
        if outcome not in ("not_started", "closed"):
            _gateway().close_order(order.number)
        return True
    except GatewayError as exc:
        if exc.code == "ORDERPAID":
            reconcile_payment(order)
            return False
        failure: DomainError = Unavailable("支付服务暂时不可用", code="payment_gateway_unavailable")
    except Unavailable as exc:
        failure = exc
    if wait_for_gateway:
        raise failure
    logger.warning("gateway unreachable for order %s: %s", order.number, failure.message)
    return now >= order.payment_deadline + GATEWAY_GRACE


# --- store pickup (自提核销) ----------------------------------------------------------------
PICKUP_CODE = re.compile(r"^\d{8}$")


def _new_pickup_code() -> str:
    return f"{secrets.randbelow(10**8):08d}"


PICKUP_CODE_TRIES = 5


def _mark_paid(order: Order, paid_at: datetime) -> None:
    """PENDING → PAID with a fresh pickup code; a code already used at this store (unique per
    store) is drawn again rather than failing the payment."""
    if order.fulfilment != Fulfilment.PICKUP:
        transition(order.pk, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, paid_at=paid_at)
        return
    for attempt in range(PICKUP_CODE_TRIES):
        try:
            with transaction.atomic():
                transition(
                    order.pk,
                    OrderStatus.PENDING_PAYMENT,
                    OrderStatus.PAID,
                    paid_at=paid_at,
                    pickup_code=_new_pickup_code(),
                )
            return
        except IntegrityError:
            if attempt == PICKUP_CODE_TRIES - 1:
                raise


def _refund_in_flight(order: Order) -> bool:
    return Refund.objects.filter(
        order=order, status__in=(RefundStatus.PENDING, RefundStatus.ABNORMAL)
    ).exists()


def verify_pickup(*, acting: Staff, store: OrgNode, code: str) -> Order:
    """Hand over a paid pickup order: the code works once. A second scan — even at the same
    instant at another till — is refused with who used it and when."""
    require_perm(acting, Perm.FULFIL_ORDERS)
    if store.kind != NodeKind.STORE or not store.is_within(acting.node):
        raise NotFound("门店不存在")
    code = (code or "").strip()
    if not PICKUP_CODE.match(code):
        raise InvalidInput("提货码为 8 位数字", code="invalid_pickup_code")
    order = (
        Order.objects.filter(store=store, pickup_code=code)
        .select_related("fulfilled_by__staff")
        .first()
    )
    if order is None:
        raise NotFound("提货码不存在", code="unknown_pickup_code")
    now = timeutil.now()
    with transaction.atomic():
        # Lock order: the order row first (as refunds do), so a refund request waits for us.
        Order.objects.select_for_update(of=("self",)).filter(pk=order.pk).first()
        if _refund_in_flight(order):
            raise RuleViolation(
                "该订单有退款正在处理, 暂不能提货; 请先处理退款", code="refund_in_progress"
            )
        blocker = pickup_blocker(order)
        if blocker is not None and order.status == OrderStatus.PAID:
            raise RuleViolation(blocker, code="team_not_succeeded")
        blocker = preorder_pickup_blocker(order)
        if blocker is not None and order.status == OrderStatus.PAID:
            raise RuleViolation(blocker, code="preorder_not_ready")
        if transition(
            order.pk,
            OrderStatus.PAID,
            OrderStatus.FULFILLED,
            fulfilled_at=now,
            fulfilled_by=acting.user,
        ):
            lines = _apply_to_lines(order, hand_over_stock)
            StockMovement.objects.bulk_create(
                StockMovement(
                    store=store,
                    sku_id=line.sku_id,
                    delta=-line.quantity,
                    reason=MovementReason.SALE,
                    reference=order.number,
                    actor=acting.user,
                )
                for line in lines
            )
            record_audit(acting.user, "orders.picked_up", target=order, scope_path=store.path)
            start_freeze(order, now)  # the sharer's commission is released after the freeze
            order.refresh_from_db()
            return order
    order.refresh_from_db()
    if order.status == OrderStatus.FULFILLED and order.fulfilled_at is not None:
        who = order.fulfilled_by.staff.display_name if order.fulfilled_by else "未知"
        raise RuleViolation(
            f"该提货码已于 {timeutil.format_local(order.fulfilled_at)} 由 {who} 核销",
            code="pickup_code_used",
            details={"fulfilled_at": order.fulfilled_at.isoformat(), "fulfilled_by": who},
        )
    raise RuleViolation(f"订单{order.get_status_display()}, 不能提货", code="illegal_transition")


# --- refunds -------------------------------------------------------------------------------
def request_refund(
    *, acting: Staff, order: Order, amount_fen: int, reason: str, payment: Payment | None = None
) -> Refund:
    """Open a refund of ``amount_fen`` against one payment of the order.

    Σ refunds ≤ paid is kept by the database: the payment's ``refunded_fen`` only grows through a
    guarded UPDATE (``refunded_fen + amount <= amount_fen``) under a CHECK constraint, so two
    clerks refunding at once can never exceed what was paid. An order paid twice must name the
    payment (the duplicate is marked ``refund_required``). The call to the gateway happens after
    commit (outbox), never inside this transaction.
    """
    require_perm(acting, Perm.MANAGE_ORDERS)
    return _open_refund(
        order=order, amount_fen=amount_fen, reason=reason, payment=payment, staff=acting
    )


def request_member_refund(*, member: Member, order: Order, reason: str) -> Refund:
    """A member takes an order back before pickup: the whole amount, at once — the units have
    not left the shelf, so there is nothing for the store to check. After pickup the store
    decides (``request_refund``)."""
    if order.member_id != member.pk:
        raise NotFound("订单不存在")
    if order.status != OrderStatus.PAID:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 不能在线退款; 已提货的订单请联系门店",
            code="illegal_transition",
        )
    if _refund_in_flight(order):
        raise RuleViolation("该订单的退款正在处理中", code="refund_in_progress")
    blocker = member_refund_blocker(order)
    if blocker is not None:
        raise RuleViolation(blocker, code="preorder_converted")
    payment = order.payments.filter(refund_required=False).order_by("id").first()
    if payment is None:
        raise RuleViolation("订单未支付, 无需退款", code="not_paid")
    return _open_refund(
        order=order,
        amount_fen=payment.amount_fen - payment.refunded_fen,
        reason=reason,
        payment=payment,
        member=member,
    )


def refund_whole_order(*, order: Order, reason: str) -> Refund | None:
    """A refund the platform owes without anyone asking (a group-buy team that did not form):
    what is left of the order's payment. None when nothing is left (already refunded)."""
    payment = order.payments.filter(refund_required=False).order_by("id").first()
    if payment is None or payment.amount_fen <= payment.refunded_fen:
        return None
    return _open_refund(
        order=order,
        amount_fen=payment.amount_fen - payment.refunded_fen,
        reason=reason,
        payment=payment,
    )


def _open_refund(
    *,
    order: Order,
    amount_fen: int,
    reason: str,
    payment: Payment | None,
    staff: Staff | None = None,
    member: Member | None = None,
) -> Refund:
    """The one way a refund record comes to be, for whoever asked (a clerk or the member)."""
    actor = staff.user if staff else None
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 1:
        raise InvalidInput("退款金额须为正整数分", code="invalid_amount")
    reason = (reason or "").strip()
    if not reason or len(reason) > 100:
        raise InvalidInput("请填写退款原因(不超过100字)", code="invalid_reason")
    payments = list(order.payments.order_by("id"))
    if payment is None:
        if not payments:
            raise RuleViolation("订单未支付, 无需退款", code="not_paid")
        if len(payments) > 1:
            raise InvalidInput(
                "该订单有多笔支付, 请指定要退款的支付(重复支付标记为需退款)",
                code="payment_required",
            )
        payment = payments[0]
    elif payment.order_id != order.pk:
        raise NotFound("支付记录不存在")
    with transaction.atomic():
        # Lock order: order row first (as pickups and refund results do), then the payment.
        locked = Order.objects.select_for_update(of=("self",)).filter(pk=order.pk).first()
        if member is not None and (
            locked is None or locked.status != OrderStatus.PAID or _refund_in_flight(order)
        ):  # the pickup (or another refund) got in between the member's read and this lock
            raise RuleViolation("订单状态已变化, 请刷新后再试", code="order_changed")
        reserved = Payment.objects.filter(
            pk=payment.pk, refunded_fen__lte=F("amount_fen") - amount_fen
        ).update(refunded_fen=F("refunded_fen") + amount_fen)
        if not reserved:
            payment.refresh_from_db()
            raise RuleViolation(
                f"可退金额不足: 已支付 {payment.amount_fen} 分, 已退或退款中 {payment.refunded_fen} 分",
                code="refund_exceeds_payment",
            )
        sequence = Refund.objects.filter(payment=payment).count() + 1  # payment row is locked
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            out_refund_no=f"R{order.number}P{payment.pk}N{sequence}",
            amount_fen=amount_fen,
            reason=reason,
            requested_by=actor,
        )
        paid, refunded = Payment.objects.filter(pk=payment.pk).values_list(
            "amount_fen", "refunded_fen"
        )[0]
        if refunded >= paid:  # all of it: a group-buy payer leaves a forming team
            on_refund_opened(order, refund, timeutil.now())
            on_preorder_refund_opened(order, refund)  # a pre-order is withdrawn or settled
        record_audit(
            actor,
            "orders.refund_requested",
            target=refund,
            scope_path=order.store.path,
            details={
                "order": order.number,
                "amount_fen": amount_fen,
                "reason": reason,
                **({"member": member.pk} if member else {}),
            },
        )
        # Outbox: the gateway is called only after this commits; a failure there is retried by
        # the refund sweep, never lost, and never rolls this record back.
        transaction.on_commit(lambda: _enqueue_refund(refund.pk), robust=True)
    return refund


def _enqueue_refund(refund_id: int) -> None:
    from .tasks import submit_refund_task

    submit_refund_task.delay(refund_id)


REFUND_RESUBMIT_AFTER = timedelta(minutes=1)
MAX_REFUND_ATTEMPTS = 20


def submit_refund(refund_id: int) -> str:
    """Send one refund to the gateway. Safe to run twice or concurrently: the gateway treats the
    same out_refund_no as the same refund. Returns ``submitted``, ``skipped`` or ``failed``."""
    from shequn.integrations.wechatpay.client import GatewayError
    from shequn.integrations.wechatpay.config import notify_url, wechatpay_client

    refund = Refund.objects.select_related("order", "payment").filter(pk=refund_id).first()
    if refund is None or refund.status != RefundStatus.PENDING or refund.submitted_at is not None:
        return "skipped"
    client = wechatpay_client()
    if client is None:
        return "skipped"  # payments not configured: stays pending, visible, swept later
    Refund.objects.filter(pk=refund.pk).update(submit_attempts=F("submit_attempts") + 1)
    try:
        client.create_refund(
            out_trade_no=refund.order.number,
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.amount_fen,
            total_fen=refund.payment.amount_fen,
            reason=refund.reason,
            notify_url=notify_url(),
        )
    except GatewayError as exc:
        error = f"{exc.code}: {exc.message}"
    except Exception as exc:  # a broken response is a failed attempt too, never a crashed sweep
        logger.exception("refund %s submission failed", refund.out_refund_no)
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = ""
    if error:
        if refund.submit_attempts + 1 >= MAX_REFUND_ATTEMPTS:  # give up: a person must look
            Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
                status=RefundStatus.ABNORMAL, last_error=f"放弃自动重试: {error}"[:200]
            )
        else:
            Refund.objects.filter(pk=refund.pk).update(last_error=error[:200])
        return "failed"
    Refund.objects.filter(pk=refund.pk, submitted_at__isnull=True).update(
        submitted_at=timeutil.now(), last_error=""
    )
    return "submitted"


def sweep_unsubmitted_refunds(*, batch: int = 100, pause_s: float = 0.0) -> int:
    """Resubmit refunds whose gateway call never succeeded (the outbox's safety net)."""
    cutoff = timeutil.now() - REFUND_RESUBMIT_AFTER
    due = Refund.objects.filter(
        status=RefundStatus.PENDING, submitted_at__isnull=True, created_at__lte=cutoff
    ).values_list("pk", flat=True)[:batch]
    submitted = 0
    for refund_id in list(due):
        submitted += submit_refund(refund_id) == "submitted"
        if pause_s:
            time.sleep(pause_s)
    return submitted


@dataclass(frozen=True)
class RefundReport:
    """A refund result from the platform (REFUND.SUCCESS / ABNORMAL / CLOSED), already verified."""

    notification_id: str
    event_type: str
    out_refund_no: str
    refund_fen: int
    mchid: str


REFUND_EVENTS = {
    "REFUND.SUCCESS": RefundStatus.SUCCEEDED,
    "REFUND.ABNORMAL": RefundStatus.ABNORMAL,
    "REFUND.CLOSED": RefundStatus.CLOSED,
}


def record_refund_result(
    report: RefundReport, *, expected_mchid: str, provider: str = "wechatpay"
) -> str:
    """Apply a refund notification exactly once; returns the refund's new status or ``duplicate``.

    SUCCESS is final: when the order's refunds reach the paid amount it becomes refunded, and an
    order not yet picked up gives its units back to the shelf. CLOSED (the refund failed) gives
    the amount back to what may be refunded. ABNORMAL is not final: the refund waits for a person.
    """
    target = REFUND_EVENTS.get(report.event_type)
    if target is None:
        raise InvalidInput(f"未知的退款事件: {report.event_type}", code="unknown_event")
    if report.mchid != expected_mchid:
        raise PaymentMismatch("商户号与本商户不符")
    with transaction.atomic():
        if not _claim_notification(provider, report.notification_id, report.event_type):
            return "duplicate"
        refund = (
            Refund.objects.select_related("order__store", "payment")
            .filter(out_refund_no=report.out_refund_no)
            .first()
        )
        if refund is None:
            raise PaymentMismatch(f"退款单不存在: {report.out_refund_no}")
        # Lock order first, then refund (the order every writer of an order uses), and only
        # those rows: a pickup running at the same time waits, and reads no stale status.
        Order.objects.select_for_update(of=("self",)).filter(pk=refund.order_id).first()
        refund = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("order__store", "payment")
            .get(pk=refund.pk)
        )
        if report.refund_fen != refund.amount_fen:
            raise PaymentMismatch(
                f"退款金额 {report.refund_fen} 分与退款单 {refund.amount_fen} 分不符"
            )
        if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.CLOSED):
            if refund.status != target:
                raise PaymentMismatch(
                    f"退款单已{refund.get_status_display()}, 不能再变为{target.label}"
                )
            outcome = "duplicate"
        elif refund.status == target:  # ABNORMAL again
            outcome = "duplicate"
        else:
            outcome = target.value
            now = timeutil.now()
            Refund.objects.filter(pk=refund.pk).update(
                status=target, finished_at=now if target != RefundStatus.ABNORMAL else None
            )
            if target == RefundStatus.CLOSED:
                Payment.objects.filter(
                    pk=refund.payment_id, refunded_fen__gte=refund.amount_fen
                ).update(refunded_fen=F("refunded_fen") - refund.amount_fen)
            elif target == RefundStatus.SUCCEEDED:
                _close_if_fully_refunded(refund.order, refund.payment)
                net_paid = _net_paid(refund.order)
                reverse_order_commissions(
                    refund.order, net_paid_fen=net_paid, event_key=refund.out_refund_no
                )
                reverse_group_owner_reward(
                    refund.order, net_paid_fen=net_paid, event_key=refund.out_refund_no
                )
            record_audit(
                None,
                f"orders.refund_{target.value}",
                target=refund,
                scope_path=refund.order.store.path,
                details={"order": refund.order.number, "amount_fen": refund.amount_fen},
            )
        _finish_notification(
            provider, report.notification_id, outcome=outcome, out_trade_no=refund.order.number
        )
    return outcome


def _net_paid(order: Order) -> int:
    """What the order's payment brought in, less what was refunded of it (a duplicate payment,
    marked refund_required, was never the order's)."""
    payments = order.payments.filter(refund_required=False)
    paid = payments.aggregate(total=Sum("amount_fen"))["total"] or 0
    refunded = (
        Refund.objects.filter(payment__in=payments, status=RefundStatus.SUCCEEDED).aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0
    )
    return int(paid - refunded)


def _close_if_fully_refunded(order: Order, payment: Payment) -> None:
    refunded = (
        Refund.objects.filter(payment=payment, status=RefundStatus.SUCCEEDED).aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0
    )
    if refunded < payment.amount_fen or payment.refund_required:
        return  # partial, or money for an order that was never re-opened: status stays
    if order.status == OrderStatus.PAID and transition(
        order.pk, OrderStatus.PAID, OrderStatus.REFUNDED
    ):  # not picked up: the units go back on sale, and to the promotion if from one
        _release_promotions(order, _apply_to_lines(order, release_stock), unpaid=False)
    elif order.status == OrderStatus.FULFILLED:
        transition(order.pk, OrderStatus.FULFILLED, OrderStatus.REFUNDED)
