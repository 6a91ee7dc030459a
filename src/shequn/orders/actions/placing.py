"""Placing orders: ``place_order`` (the shelf's goods, flash sales, group-buys, coupons) and
``place_preorder_order`` (a C2B pre-order's deposit), with their checks and the idempotency key.

`place_order` is built for a hot SKU: prices are computed on the server, the order and its lines
are written first, and the stock UPDATEs come last (in SKU id order, so two orders never wait
on each other in opposite order), each a guarded ``allocated + n <= quantity``. The row lock on
a hot stock row is therefore held only from that UPDATE to the commit.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction

from shequn.catalog.models import Sku
from shequn.catalog.pricing import tiered_unit_price
from shequn.catalog.stock import SellableSku, reserve_stock, sellable_skus
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, DomainError, InvalidInput, NotFound, RuleViolation
from shequn.groups.models import CustomerGroup
from shequn.members.models import Member
from shequn.org.models import NodeKind, OrgNode
from shequn.promotions.coupons import (
    Discounts,
    PricedLine,
    instant_discounts_running,
    order_discounts,
    take_discounts,
)
from shequn.promotions.flash import (
    SOLD_OUT_MESSAGE,
    FlashOffer,
    claim_flash,
    flash_offer,
    known_sold_out,
    note_sold_out,
)
from shequn.promotions.groupbuy import GroupBuyOffer, group_buy_offer, hold_seat
from shequn.referrals.actions import bound_sharer

from .. import flash_path
from ..models import Fulfilment, Order, OrderChannel, OrderLine, OrderStatus

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
    error = flash_path.explain_refusal(placed, facts, now, quantity)
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
