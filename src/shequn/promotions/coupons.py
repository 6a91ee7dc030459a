"""Coupons (优惠券) and instant discounts (立减金): what an order may take off, and taking it.

The rules, in one place (``order_discounts``), which ``place_order`` and the checkout page call:
- at most one coupon per order, chosen by the member from their wallet; unused, not expired,
  its template not cancelled;
- at most one instant discount, applied by itself: the running one that takes off the most;
  together with a coupon only if its template says it stacks;
- a template counts only the lines in its scope (products, categories; none = everything);
  flash-sale and group-buy lines only if it applies to promotions; its minimum spend is measured
  on those lines, and it never takes off more than they cost;
- the order always leaves at least 1 fen to pay (WeChat Pay cannot take 0).

Taking (inside ``place_order``'s transaction) and giving back (when the order closes unpaid) are
guarded UPDATEs and upserts, never a check in Python before a write. Refunds do not give coupons
back: what was paid comes back, the coupon was spent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F

from shequn.core.errors import NotFound, RuleViolation
from shequn.members.models import Member
from shequn.orders.models import Order

from .limits import claim_within_limit
from .models import Coupon, CouponHolder, CouponKind, CouponTemplate, InstantDiscountUse


def _take_one(template: CouponTemplate, member_id: int) -> bool:
    """One more of ``template`` for the member, within its per-member limit."""
    return claim_within_limit(
        CouponHolder,
        owner="template_id",
        counter="taken",
        owner_id=template.pk,
        member_id=member_id,
        quantity=1,
        limit=template.per_member_limit,
    )


@dataclass(frozen=True)
class PricedLine:
    """One order line as the discount rules see it."""

    product_id: int
    category_id: int | None
    total_fen: int
    promotional: bool  # sold at a flash-sale or group-buy price


@dataclass(frozen=True)
class Discounts:
    coupon: Coupon | None = None
    coupon_fen: int = 0
    instant: CouponTemplate | None = None
    instant_fen: int = 0

    @property
    def total_fen(self) -> int:
        return self.coupon_fen + self.instant_fen


NONE = Discounts()


def _eligible_fen(template: CouponTemplate, lines: Sequence[PricedLine]) -> int:
    products = {p.pk for p in template.products.all()}
    categories = {c.pk for c in template.categories.all()}
    return sum(
        line.total_fen
        for line in lines
        if (template.applies_to_promotions or not line.promotional)
        and (
            not (products or categories)
            or line.product_id in products
            or line.category_id in categories
        )
    )


def _worth(template: CouponTemplate, lines: Sequence[PricedLine]) -> int:
    """What the template takes off these lines: 0 below its minimum spend."""
    eligible = _eligible_fen(template, lines)
    if eligible == 0 or eligible < template.min_spend_fen:
        return 0
    return min(template.discount_fen, eligible)


def order_discounts(
    *, member: Member, lines: Sequence[PricedLine], coupon_id: object, now: datetime
) -> Discounts:
    """The discounts for an order, or why the chosen coupon cannot be used."""
    subtotal = sum(line.total_fen for line in lines)
    coupon = None
    coupon_fen = 0
    if coupon_id is not None:
        coupon = usable_coupon(member, coupon_id, now)
        coupon_fen = _worth(coupon.template, lines)
        if coupon_fen == 0:
            template = coupon.template
            if _eligible_fen(template, lines) == 0:
                raise RuleViolation("该优惠券不适用于订单中的商品", code="coupon_not_applicable")
            raise RuleViolation(
                f"未达到使用门槛: 适用商品满 {template.min_spend_fen / 100:.2f} 元可用",
                code="coupon_min_spend",
            )
    instant, instant_fen = best_instant_discount(member, lines, now, with_coupon=coupon is not None)
    coupon_fen = min(coupon_fen, subtotal - 1)  # at least 1 fen is left to pay
    instant_fen = min(instant_fen, subtotal - 1 - coupon_fen)
    if instant_fen <= 0:
        instant, instant_fen = None, 0
    return Discounts(coupon, coupon_fen, instant, instant_fen)


def usable_coupon(member: Member, coupon_id: object, now: datetime) -> Coupon:
    if isinstance(coupon_id, bool) or not isinstance(coupon_id, int):
        raise NotFound("优惠券不存在", code="unknown_coupon")
    coupon = (
        Coupon.objects.select_related("template")
        .prefetch_related("template__products", "template__categories")
        .filter(pk=coupon_id, member=member)
        .first()
    )
    if coupon is None:
        raise NotFound("优惠券不存在", code="unknown_coupon")
    if coupon.order_id is not None:
        raise RuleViolation("该优惠券已使用", code="coupon_used")
    if coupon.expires_at <= now:
        raise RuleViolation("该优惠券已过期", code="coupon_expired")
    if coupon.template.cancelled_at is not None:
        raise RuleViolation("该优惠券已停用", code="coupon_cancelled")
    return coupon


INSTANT_TTL_S = 2.0
_running: dict[tuple[int, bool], tuple[float, bool]] = {}


def instant_discounts_running(
    chain_id: int, now: datetime, *, for_promotions: bool = False
) -> bool:
    """Whether the chain has any instant discount running (``for_promotions``: one that applies
    to flash-sale and group-buy lines): one indexed EXISTS, remembered for 2 s per process so
    that the common case — none — costs an order no query at all. A new template starts
    applying up to 2 s after its start, as if it had started 2 s later."""
    key = (chain_id, for_promotions)
    hit = _running.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    templates = CouponTemplate.objects.filter(
        chain_id=chain_id,
        kind=CouponKind.INSTANT,
        cancelled_at__isnull=True,
        starts_at__lte=now,
        ends_at__gt=now,
    )
    if for_promotions:
        templates = templates.filter(applies_to_promotions=True)
    running = templates.exists()
    _running[key] = (time.monotonic() + INSTANT_TTL_S, running)
    return running


def forget_running_instant_discounts() -> None:
    """Tests that create templates and price at once call this; actions never need to."""
    _running.clear()


def best_instant_discount(
    member: Member, lines: Sequence[PricedLine], now: datetime, *, with_coupon: bool
) -> tuple[CouponTemplate | None, int]:
    """The running instant discount worth the most on these lines (budget left, member under
    the limit); ties go to the one ending first."""
    if not instant_discounts_running(member.chain_id, now):
        return None, 0
    candidates = (
        CouponTemplate.objects.filter(
            cancelled_at__isnull=True,
            chain_id=member.chain_id,
            kind=CouponKind.INSTANT,
            starts_at__lte=now,
            ends_at__gt=now,
            issued__lt=F("total_quantity"),
        )
        .prefetch_related("products", "categories")
        .order_by("ends_at", "id")
    )
    if with_coupon:
        candidates = candidates.filter(stacks_with_coupon=True)
    templates = list(candidates[:20])
    if not templates:
        return None, 0
    taken = dict(
        CouponHolder.objects.filter(member=member, template__in=templates).values_list(
            "template_id", "taken"
        )
    )
    best: tuple[CouponTemplate | None, int] = (None, 0)
    for template in templates:
        if taken.get(template.pk, 0) >= template.per_member_limit:
            continue
        worth = _worth(template, lines)
        if worth > best[1]:
            best = (template, worth)
    return best


def take_discounts(discounts: Discounts, *, order: Order, now: datetime) -> str | None:
    """Inside ``place_order``'s transaction: use the coupon and the instant discount. None when
    taken, else why not (the caller rolls back)."""
    if discounts.coupon is not None:
        used = Coupon.objects.filter(
            pk=discounts.coupon.pk,
            member_id=order.member_id,
            order__isnull=True,
            expires_at__gt=now,
        ).update(order=order, discount_fen=discounts.coupon_fen, used_at=now)
        if used != 1:
            return "coupon_used"
    if discounts.instant is not None:
        template = discounts.instant
        if not _take_one(template, order.member_id):
            return "instant_discount_gone"
        if not CouponTemplate.objects.filter(pk=template.pk, issued__lt=F("total_quantity")).update(
            issued=F("issued") + 1
        ):
            return "instant_discount_gone"
        InstantDiscountUse.objects.create(
            template=template,
            member_id=order.member_id,
            order=order,
            discount_fen=discounts.instant_fen,
        )
    return None


def release_discounts(order: Order) -> None:
    """An unpaid order closed: its coupon goes back to the wallet (until it expires anyway) and
    its instant discount back to the budget. Call only under the order's exactly-once close."""
    Coupon.objects.filter(order=order).update(order=None, discount_fen=0, used_at=None)
    for use in InstantDiscountUse.objects.filter(order=order):
        CouponTemplate.objects.filter(pk=use.template_id, issued__gte=1).update(
            issued=F("issued") - 1
        )
        CouponHolder.objects.filter(
            template_id=use.template_id, member_id=use.member_id, taken__gte=1
        ).update(taken=F("taken") - 1)
        use.delete()


def claim_coupon(*, member: Member, template: CouponTemplate, now: datetime) -> Coupon | str:
    """Inside a transaction: put one coupon of ``template`` in the member's wallet, or say why
    not (``coupon_member_limit``, ``coupon_sold_out``; the caller rolls back)."""
    if not _take_one(template, member.pk):
        return "coupon_member_limit"
    if not CouponTemplate.objects.filter(pk=template.pk, issued__lt=F("total_quantity")).update(
        issued=F("issued") + 1
    ):
        return "coupon_sold_out"
    return Coupon.objects.create(
        template=template,
        member=member,
        claimed_at=now,
        expires_at=now + timedelta(days=template.valid_days or 0),
    )
