"""Reads for the member pages: what a store offers, a group's feed, the member's own orders.
A member only ever sees their own orders; catalog and stock are what the store sells."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Prefetch, QuerySet

from shequn.catalog.models import PriceTier, Product, Sku, StockItem
from shequn.catalog.pricing import tiered_unit_price
from shequn.core.errors import DomainError, NotFound
from shequn.groups.models import CustomerGroup
from shequn.members.models import Member
from shequn.orders.models import Order
from shequn.org.models import OrgNode
from shequn.promotions.coupons import NONE as NO_DISCOUNTS
from shequn.promotions.coupons import Discounts, PricedLine, order_discounts
from shequn.promotions.models import (
    Coupon,
    CouponKind,
    CouponTemplate,
    GroupBuy,
    GroupBuySeat,
    GroupBuyTeam,
    SeatStatus,
    TeamStatus,
)

from .links import Source, product_link
from .models import GroupPost


@dataclass(frozen=True)
class SkuOffer:
    sku: Sku
    available: int  # on the shelf and not promised to an unpaid or unpicked order
    tiers: list[PriceTier]

    @property
    def price_fen(self) -> int:
        return self.sku.price_fen

    def unit_price_fen(self, quantity: int) -> int:
        return tiered_unit_price(
            self.sku.price_fen, quantity, [(t.min_quantity, t.unit_price_fen) for t in self.tiers]
        )


def _available(store: OrgNode, sku_ids: list[int]) -> dict[int, int]:
    return dict(
        StockItem.objects.filter(store=store, sku_id__in=sku_ids)
        .annotate(free=F("quantity") - F("quantity_allocated"))
        .values_list("sku_id", "free")
    )


def store_offer(store: OrgNode, product_id: int) -> tuple[Product, list[SkuOffer]]:
    """A product of the store's chain and what this store can sell of it."""
    product = (
        Product.objects.filter(pk=product_id, chain_id=store.chain_id, is_active=True)
        .prefetch_related(
            Prefetch(
                "skus",
                Sku.objects.filter(is_active=True).prefetch_related("tiers").order_by("price_fen"),
            )
        )
        .first()
    )
    if product is None:
        raise NotFound("商品不存在或已下架")
    skus = list(product.skus.all())
    free = _available(store, [sku.pk for sku in skus])
    return product, [
        SkuOffer(
            sku, max(free.get(sku.pk, 0), 0), sorted(sku.tiers.all(), key=lambda t: t.min_quantity)
        )
        for sku in skus
        if sku.pk in free
    ]


@dataclass(frozen=True)
class CartRow:
    sku: Sku
    quantity: int
    unit_fen: int
    problem: str  # why it would not sell as is ("" when it would); place_order decides

    @property
    def line_fen(self) -> int:
        return self.unit_fen * self.quantity


def price_cart(store: OrgNode, lines: dict[int, int]) -> list[CartRow]:
    """The cart as the member should see it: tier prices for the quantities, and a word on
    anything gone from the shelf. Display only: the order is priced again by place_order."""
    skus = (
        Sku.objects.filter(pk__in=list(lines), chain_id=store.chain_id)
        .select_related("product")
        .prefetch_related("tiers")
        .order_by("id")
    )
    free = _available(store, list(lines))
    rows = []
    for sku in skus:
        quantity = lines[sku.pk]
        tiers = [(tier.min_quantity, tier.unit_price_fen) for tier in sku.tiers.all()]
        on_sale = sku.is_active and sku.product.is_active and sku.pk in free
        left = max(free.get(sku.pk, 0), 0)
        problem = (
            "" if on_sale and left >= quantity else ("已下架" if not on_sale else f"仅剩 {left} 件")
        )
        rows.append(
            CartRow(sku, quantity, tiered_unit_price(sku.price_fen, quantity, tiers), problem)
        )
    return rows


@dataclass(frozen=True)
class FeedCard:
    post: GroupPost
    link: str
    from_price_fen: int | None  # the cheapest SKU the store sells, None when it sells none
    sold_out: bool


def group_feed(group: CustomerGroup, limit: int = 50) -> list[FeedCard]:
    posts = list(
        GroupPost.objects.filter(group=group, product__is_active=True)
        .select_related("product")
        .prefetch_related(Prefetch("product__skus", Sku.objects.filter(is_active=True)))[:limit]
    )
    sku_ids = [sku.pk for post in posts for sku in post.product.skus.all()]
    free = _available(group.store, sku_ids)
    cards = []
    for post in posts:
        sold = [sku for sku in post.product.skus.all() if sku.pk in free]
        source = Source(group.pk, post.sharer_id, post.content_ref, "group_share")
        cards.append(
            FeedCard(
                post=post,
                link=product_link(post.product_id, source),
                from_price_fen=min((sku.price_fen for sku in sold), default=None),
                sold_out=not any(free[sku.pk] > 0 for sku in sold),
            )
        )
    return cards


def member_orders(member: Member) -> QuerySet[Order]:
    return (
        Order.objects.filter(member=member)
        .select_related("store")
        .prefetch_related("lines")
        .order_by("-created_at", "-id")
    )


def member_order(member: Member, number: str) -> Order:
    order = member_orders(member).filter(number=number).first()
    if order is None:
        raise NotFound("订单不存在")
    return order


# --- group-buys (拼团) ------------------------------------------------------------------------
def running_group_buys(store: OrgNode, now: datetime) -> QuerySet[GroupBuy]:
    """The chain's group-buys a member at ``store`` can start a team in right now."""
    return (
        GroupBuy.objects.filter(
            chain_id=store.chain_id,
            cancelled_at__isnull=True,
            starts_at__lte=now,
            ends_at__gt=now,
        )
        .select_related("sku__product")
        .order_by("ends_at", "id")
    )


def member_group_buy(store: OrgNode, campaign_id: int) -> GroupBuy:
    campaign = (
        GroupBuy.objects.filter(pk=campaign_id, chain_id=store.chain_id)
        .select_related("sku__product")
        .first()
    )
    if campaign is None:
        raise NotFound("拼团活动不存在")
    return campaign


def open_teams(campaign: GroupBuy, store: OrgNode, now: datetime) -> QuerySet[GroupBuyTeam]:
    """Teams at the store a member may still join: the fullest and the soonest first."""
    return (
        GroupBuyTeam.objects.filter(
            campaign=campaign,
            store=store,
            status=TeamStatus.FORMING,
            joined__lt=F("size"),
            deadline__gt=now,
        )
        .select_related("leader")
        .order_by("-joined", "deadline", "id")
    )


def team_for_members(team_id: int) -> GroupBuyTeam:
    team = (
        GroupBuyTeam.objects.filter(pk=team_id)
        .select_related("campaign__sku__product", "store", "leader")
        .first()
    )
    if team is None:
        raise NotFound("团不存在")
    return team


def team_seats(team: GroupBuyTeam) -> list[GroupBuySeat]:
    return list(
        GroupBuySeat.objects.filter(team=team, status=SeatStatus.SEATED)
        .select_related("member")
        .order_by("seated_at", "id")
    )


def order_seat(order: Order) -> GroupBuySeat | None:
    return GroupBuySeat.objects.filter(order=order).select_related("team", "campaign").first()


# --- coupons --------------------------------------------------------------------------------
def claimable_coupons(member_chain_id: int, now: datetime) -> QuerySet[CouponTemplate]:
    """The coupons members of the chain may take into their wallet right now (领券中心)."""
    return CouponTemplate.objects.filter(
        chain_id=member_chain_id,
        kind=CouponKind.COUPON,
        cancelled_at__isnull=True,
        starts_at__lte=now,
        ends_at__gt=now,
    ).order_by("ends_at", "id")


def wallet(member: Member, now: datetime) -> dict[str, list[Coupon]]:
    """The member's coupons: usable (soonest to expire first), used, expired."""
    coupons = list(
        Coupon.objects.filter(member=member)
        .select_related("template", "order")
        .order_by("expires_at", "id")[:200]
    )
    usable = [
        c
        for c in coupons
        if c.order_id is None and c.expires_at > now and c.template.cancelled_at is None
    ]
    used = [c for c in coupons if c.order_id is not None]
    return {
        "usable": usable,
        "used": used,
        "expired": [c for c in coupons if c not in usable and c not in used],
    }


@dataclass(frozen=True)
class CartCoupon:
    coupon: Coupon
    worth_fen: int  # what it takes off this cart; 0 = not usable here
    why_not: str


def cart_discounts(
    member: Member | None, rows: list[CartRow], chosen: str | None, now: datetime
) -> tuple[list[CartCoupon], Discounts, int | None]:
    """Which of the member's coupons fit the cart and what each takes off, the discounts for the
    chosen one (``None`` = the best; ``"none"`` = no coupon), and that coupon's id. The same
    rules ``place_order`` applies (``promotions.coupons.order_discounts``); display only."""
    if member is None or not rows:
        return [], NO_DISCOUNTS, None
    categories = dict(
        Product.objects.filter(pk__in={row.sku.product_id for row in rows}).values_list(
            "pk", "category_id"
        )
    )
    lines = [
        PricedLine(row.sku.product_id, categories.get(row.sku.product_id), row.line_fen, False)
        for row in rows
        if not row.problem
    ]
    if not lines:
        return [], NO_DISCOUNTS, None
    options = []
    for coupon in wallet(member, now)["usable"][:30]:
        try:
            worth = order_discounts(
                member=member, lines=lines, coupon_id=coupon.pk, now=now
            ).coupon_fen
            options.append(CartCoupon(coupon, worth, ""))
        except DomainError as exc:
            options.append(CartCoupon(coupon, 0, exc.message))
    options.sort(key=lambda option: -option.worth_fen)
    usable_ids = {o.coupon.pk for o in options if o.worth_fen}
    if chosen == "none":
        coupon_id = None
    elif chosen and chosen.isdigit() and int(chosen) in usable_ids:
        coupon_id = int(chosen)
    else:
        coupon_id = options[0].coupon.pk if options and options[0].worth_fen else None
    return (
        options,
        order_discounts(member=member, lines=lines, coupon_id=coupon_id, now=now),
        (coupon_id),
    )


def store_products(store: OrgNode) -> QuerySet[Product]:
    """The active products this store stocks (what a sharer of the store shares)."""
    return (
        Product.objects.filter(
            chain_id=store.chain_id, is_active=True, skus__stock_items__store=store
        )
        .distinct()
        .order_by("name", "id")
    )
