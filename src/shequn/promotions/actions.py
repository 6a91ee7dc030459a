"""Promotion actions: create and cancel flash sales and group-buys; the group-buy sweep."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from shequn.catalog.models import Category, Product, Sku
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound, RuleViolation
from shequn.core.faults import crash_point
from shequn.core.sweeps import drain
from shequn.core.validation import MAX_PRICE_FEN, clean_count, clean_fen, clean_text
from shequn.members.models import Member
from shequn.orders.actions import refund_whole_order
from shequn.orders.models import Order
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .coupons import claim_coupon, forget_running_instant_discounts
from .models import (
    Coupon,
    CouponKind,
    CouponTemplate,
    FlashSale,
    FlashSaleQuota,
    GroupBuy,
    GroupBuySeat,
    GroupBuyTeam,
    PromotionSchedule,
    QuotaScope,
    SeatStatus,
    TeamStatus,
    UnfilledPolicy,
)

logger = logging.getLogger(__name__)

MAX_SALE_DAYS = 31
MAX_QUOTA = 1_000_000
MAX_LIMIT = 999
MAX_TEAM_SIZE = 100
MIN_TEAM_MINUTES = 5
MAX_TEAM_MINUTES = 7 * 24 * 60


def _window(
    starts_at: datetime, ends_at: datetime, max_days: int = MAX_SALE_DAYS
) -> tuple[datetime, datetime]:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise InvalidInput("开始与结束时间须带时区", code="invalid_window")
    if ends_at <= starts_at:
        raise InvalidInput("结束时间须晚于开始时间", code="invalid_window")
    if ends_at - starts_at > timedelta(days=max_days):
        raise InvalidInput(f"一场活动最长 {max_days} 天", code="invalid_window")
    if ends_at <= timeutil.now():
        raise InvalidInput("结束时间已过", code="invalid_window")
    return starts_at, ends_at


def create_flash_sale(
    *,
    acting: Staff,
    sku: Sku,
    name: str,
    price_fen: int,
    starts_at: datetime,
    ends_at: datetime,
    per_member_limit: int,
    per_order_limit: int,
    chain_quota: int | None = None,
    store_quotas: dict[OrgNode, int] | None = None,
) -> FlashSale:
    """A flash sale of one SKU: either one quota the whole chain shares, or a quota per store
    (each store within the caller's scope). The sale price must be below the list price."""
    require_perm(acting, Perm.MANAGE_PROMOTIONS)
    chain_id = acting.node.chain_id
    if sku.chain_id != chain_id:
        raise NotFound("商品不存在")
    name = clean_text(name, "活动名称", 100)
    price_fen = clean_fen(price_fen, "秒杀价")
    if price_fen >= sku.price_fen:
        raise InvalidInput(f"秒杀价须低于原价 {sku.price_fen} 分", code="flash_price_not_lower")
    starts_at, ends_at = _window(starts_at, ends_at)
    per_member_limit = clean_count(per_member_limit, "每人限购", MAX_LIMIT)
    per_order_limit = clean_count(per_order_limit, "每单限购", MAX_LIMIT)
    if (chain_quota is None) == (not store_quotas):
        raise InvalidInput("须给出全连锁名额或各门店名额(二选一)", code="invalid_quota")
    if chain_quota is not None:
        rows: list[tuple[OrgNode | None, int]] = [
            (None, clean_count(chain_quota, "名额", MAX_QUOTA))
        ]
    else:
        rows = []
        for store, quota in (store_quotas or {}).items():
            if store.kind != NodeKind.STORE or not store.is_within(acting.node):
                raise NotFound("门店不存在")
            rows.append((store, clean_count(quota, f"{store.name}的名额", MAX_QUOTA)))
    with transaction.atomic():
        sale = FlashSale.objects.create(
            chain_id=chain_id,
            name=name,
            sku=sku,
            price_fen=price_fen,
            starts_at=starts_at,
            ends_at=ends_at,
            quota_scope=QuotaScope.CHAIN if chain_quota is not None else QuotaScope.STORE,
            per_member_limit=per_member_limit,
            per_order_limit=per_order_limit,
            created_by=acting.user,
        )
        FlashSaleQuota.objects.bulk_create(
            FlashSaleQuota(sale=sale, store=store, quota=quota) for store, quota in rows
        )
        record_audit(
            acting.user,
            "promotions.flash_sale_created",
            target=sale,
            scope_path=acting.node.path,
            details={
                "sku": sku.pk,
                "price_fen": price_fen,
                "quota": sum(quota for _, quota in rows),
            },
        )
    return sale


def stop_promotion(
    acting: Staff,
    row: FlashSale | GroupBuy | CouponTemplate | PromotionSchedule,
    *,
    missing: str,
    already: RuleViolation | None,
    audit_action: str,
    field: str = "cancelled_at",
    then: Callable[[datetime], object] | None = None,
) -> None:
    """Stop a promotion of the caller's chain now: a guarded UPDATE (of two clicks, one stops
    it; the other gets ``already``, or nothing if None), ``then`` in the same transaction, and
    the audit row."""
    require_perm(acting, Perm.MANAGE_PROMOTIONS)
    if row.chain_id != acting.node.chain_id:
        raise NotFound(missing)
    now = timeutil.now()
    with transaction.atomic():
        stopped = (
            type(row).objects.filter(pk=row.pk, **{f"{field}__isnull": True}).update(**{field: now})
        )
        if not stopped:
            if already is not None:
                raise already
            return  # already stopped, and stopping twice is fine here: nothing to record
        if then is not None:
            then(now)
        record_audit(acting.user, audit_action, target=row, scope_path=acting.node.path)
    row.refresh_from_db()


def cancel_flash_sale(*, acting: Staff, sale: FlashSale) -> FlashSale:
    """Stop a sale now: no new purchases; orders already placed stand."""
    stop_promotion(
        acting,
        sale,
        missing="秒杀活动不存在",
        already=RuleViolation("该秒杀已取消", code="flash_cancelled"),
        audit_action="promotions.flash_sale_cancelled",
    )
    return sale


# --- group-buys (拼团) ------------------------------------------------------------------------
def create_group_buy(
    *,
    acting: Staff,
    sku: Sku,
    name: str,
    price_fen: int,
    team_size: int,
    team_minutes: int,
    starts_at: datetime,
    ends_at: datetime,
    per_member_limit: int,
    per_order_limit: int,
    unfilled_policy: str = UnfilledPolicy.REFUND,
    min_team_size: int | None = None,
) -> GroupBuy:
    """A group-buy of one SKU for the caller's chain. A team that does not fill in
    ``team_minutes`` is refunded — unless HQ explicitly set ``min_team_size`` under the
    auto-succeed policy, in which case a team with at least that many real payers succeeds."""
    require_perm(acting, Perm.MANAGE_PROMOTIONS)
    if sku.chain_id != acting.node.chain_id:
        raise NotFound("商品不存在")
    name = clean_text(name, "活动名称", 100)
    price_fen = clean_fen(price_fen, "拼团价")
    if price_fen >= sku.price_fen:
        raise InvalidInput(f"拼团价须低于原价 {sku.price_fen} 分", code="group_price_not_lower")
    team_size = clean_count(team_size, "成团人数", MAX_TEAM_SIZE)
    if team_size < 2:
        raise InvalidInput("成团人数至少 2 人", code="invalid_count")
    team_minutes = clean_count(team_minutes, "成团时限(分钟)", MAX_TEAM_MINUTES)
    if team_minutes < MIN_TEAM_MINUTES:
        raise InvalidInput(f"成团时限至少 {MIN_TEAM_MINUTES} 分钟", code="invalid_count")
    starts_at, ends_at = _window(starts_at, ends_at)
    per_member_limit = clean_count(per_member_limit, "每人限购", MAX_LIMIT)
    per_order_limit = clean_count(per_order_limit, "每单限购", MAX_LIMIT)
    if unfilled_policy not in UnfilledPolicy.values:
        raise InvalidInput(f"未知的未成团处理方式: {unfilled_policy}", code="invalid_policy")
    if unfilled_policy == UnfilledPolicy.REFUND:
        if min_team_size is not None:
            raise InvalidInput(
                "只有「达到最低人数自动成团」才设最低成团人数", code="invalid_policy"
            )
    else:
        min_team_size = clean_count(min_team_size, "最低成团人数", MAX_TEAM_SIZE)
        if not 2 <= min_team_size < team_size:
            raise InvalidInput(
                f"最低成团人数须在 2 到 {team_size - 1} 之间(真实付款人数, 不虚拟成团)",
                code="invalid_policy",
            )
    with transaction.atomic():
        campaign = GroupBuy.objects.create(
            chain_id=acting.node.chain_id,
            name=name,
            sku=sku,
            price_fen=price_fen,
            team_size=team_size,
            team_minutes=team_minutes,
            starts_at=starts_at,
            ends_at=ends_at,
            per_member_limit=per_member_limit,
            per_order_limit=per_order_limit,
            unfilled_policy=unfilled_policy,
            min_team_size=min_team_size,
            created_by=acting.user,
        )
        record_audit(
            acting.user,
            "promotions.group_buy_created",
            target=campaign,
            scope_path=acting.node.path,
            details={"sku": sku.pk, "price_fen": price_fen, "team_size": team_size},
        )
    return campaign


def cancel_group_buy(*, acting: Staff, campaign: GroupBuy) -> GroupBuy:
    """Stop a group-buy now: no new orders or teams; every team still forming fails at the next
    sweep and its payers are refunded (a cancelled campaign never auto-succeeds a team)."""

    def close_forming_teams(now: datetime) -> object:
        return GroupBuyTeam.objects.filter(
            campaign=campaign, status=TeamStatus.FORMING, deadline__gt=now
        ).update(deadline=now)

    stop_promotion(
        acting,
        campaign,
        missing="拼团活动不存在",
        already=RuleViolation("该拼团已取消", code="group_buy_cancelled"),
        audit_action="promotions.group_buy_cancelled",
        then=close_forming_teams,
    )
    return campaign


AUTO_REFUND_REASON = "拼团未成团, 自动全额退款"


def sweep_group_buy_teams(
    *, now: datetime | None = None, batch: int = 500, pause_s: float = 0.0
) -> int:
    """Decide every team past its deadline, then open one refund for every seat that is owed
    one. Returns how many teams and seats it acted on.

    Idempotent and crash-safe: a team is decided by a conditional transition; a seat's refund is
    opened in the same transaction that moves the seat out of REFUND_DUE, so a sweeper killed at
    any point and started again (or two at once) opens each refund exactly once. The gateway is
    called after commit by the refund outbox, never here.
    """
    now = now or timeutil.now()
    acted = 0
    while True:
        due = list(
            GroupBuyTeam.objects.filter(status=TeamStatus.FORMING, deadline__lte=now)
            .order_by("deadline", "id")
            .values_list("pk", flat=True)[:batch]
        )
        decided = 0
        for team_id in due:
            decided += _decide_team(team_id, now)
            if pause_s:
                time.sleep(pause_s)
        acted += decided
        if len(due) < batch or not decided:
            break
    return acted + drain(
        lambda skip, size: list(
            GroupBuySeat.objects.filter(status=SeatStatus.REFUND_DUE)
            .exclude(pk__in=skip)
            .order_by("id")
            .values_list("pk", "order_id")[:size]
        ),
        _refund_seat,
        what="refund group-buy seat",
        batch=batch,
        pause_s=pause_s,
    )


def _decide_team(team_id: int, now: datetime) -> int:
    """A team past its deadline succeeds (explicit threshold reached) or fails; 1 if decided."""
    with transaction.atomic():
        team = (
            GroupBuyTeam.objects.select_for_update(of=("self",))
            .select_related("campaign", "store")
            .filter(pk=team_id, status=TeamStatus.FORMING, deadline__lte=now)
            .first()
        )
        if team is None:
            return 0  # decided by another sweeper, or filled just in time
        campaign = team.campaign
        succeeds = (
            campaign.unfilled_policy == UnfilledPolicy.AUTO_SUCCEED
            and campaign.cancelled_at is None
            and campaign.min_team_size is not None
            and team.joined >= campaign.min_team_size
        )
        status = TeamStatus.SUCCEEDED if succeeds else TeamStatus.FAILED
        GroupBuyTeam.objects.filter(pk=team.pk).update(status=status, closed_at=now)
        if not succeeds:
            GroupBuySeat.objects.filter(team=team, status=SeatStatus.SEATED).update(
                status=SeatStatus.REFUND_DUE
            )
        record_audit(
            None,
            f"promotions.team_{status.value}",
            target=team,
            scope_path=team.store.path,
            details={"joined": team.joined, "size": team.size, "deadline": True},
        )
    return 1


def _refund_seat(seat_id: int, order_id: int) -> bool:
    """Open the refund one seat is owed, exactly once (see ``sweep_group_buy_teams``)."""
    with transaction.atomic():
        # Lock order: the order row first, as payments, pickups and refunds do.
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("store")
            .filter(pk=order_id)
            .first()
        )
        if (
            order is None
            or not GroupBuySeat.objects.filter(pk=seat_id, status=SeatStatus.REFUND_DUE).exists()
        ):
            return False
        if refund_whole_order(order=order, reason=AUTO_REFUND_REASON) is None:
            # Nothing left to give back (a clerk refunded it already): the debt is settled.
            GroupBuySeat.objects.filter(pk=seat_id, status=SeatStatus.REFUND_DUE).update(
                status=SeatStatus.REFUND_OPENED
            )
        crash_point("group_buy.refund_before_commit")
    return True


# --- coupons (优惠券) and instant discounts (立减金) ------------------------------------------
MAX_COUPON_QUANTITY = 10_000_000
MAX_COUPON_DAYS = 366
MAX_VALID_DAYS = 365


def create_coupon_template(
    *,
    acting: Staff,
    name: str,
    kind: str,
    discount_fen: int,
    total_quantity: int,
    per_member_limit: int,
    starts_at: datetime,
    ends_at: datetime,
    min_spend_fen: int = 0,
    valid_days: int | None = None,
    products: list[Product] | None = None,
    categories: list[Category] | None = None,
    stacks_with_coupon: bool = False,
    applies_to_promotions: bool = False,
) -> CouponTemplate:
    """A coupon members claim into their wallet (``valid_days`` after claiming), or an instant
    discount (立减金) checkout applies by itself while ``total_quantity`` lasts. Scope: the given
    products and categories (none = everything the chain sells)."""
    require_perm(acting, Perm.MANAGE_PROMOTIONS)
    chain_id = acting.node.chain_id
    name = clean_text(name, "名称", 100)
    if kind not in CouponKind.values:
        raise InvalidInput(f"未知的券类型: {kind}", code="invalid_kind")
    discount_fen = clean_fen(discount_fen, "减免金额")
    if isinstance(min_spend_fen, bool) or not isinstance(min_spend_fen, int):
        raise InvalidInput("使用门槛须为整数分", code="invalid_amount")
    if not 0 <= min_spend_fen <= MAX_PRICE_FEN:
        raise InvalidInput(f"使用门槛须在 0 到 {MAX_PRICE_FEN} 分之间", code="invalid_amount")
    if min_spend_fen and min_spend_fen <= discount_fen:
        raise InvalidInput("使用门槛须高于减免金额(或设为 0 表示无门槛)", code="invalid_amount")
    total_quantity = clean_count(total_quantity, "发放总量", MAX_COUPON_QUANTITY)
    per_member_limit = clean_count(per_member_limit, "每人限领", MAX_LIMIT)
    starts_at, ends_at = _window(starts_at, ends_at, MAX_COUPON_DAYS)
    if kind == CouponKind.COUPON:
        valid_days = clean_count(valid_days, "领取后有效天数", MAX_VALID_DAYS)
        if stacks_with_coupon:
            raise InvalidInput("一单只能用一张优惠券; 叠加只对立减金设置", code="invalid_stacking")
    elif valid_days is not None:
        raise InvalidInput("立减金在活动时间内有效, 不设领取后有效天数", code="invalid_count")
    products = list(products or [])
    categories = list(categories or [])
    if any(p.chain_id != chain_id for p in products) or any(
        c.chain_id != chain_id for c in categories
    ):
        raise NotFound("商品或类目不存在")
    with transaction.atomic():
        template = CouponTemplate.objects.create(
            chain_id=chain_id,
            name=name,
            kind=kind,
            discount_fen=discount_fen,
            min_spend_fen=min_spend_fen,
            total_quantity=total_quantity,
            per_member_limit=per_member_limit,
            starts_at=starts_at,
            ends_at=ends_at,
            valid_days=valid_days,
            stacks_with_coupon=stacks_with_coupon,
            applies_to_promotions=applies_to_promotions,
            created_by=acting.user,
        )
        template.products.set(products)
        template.categories.set(categories)
        # This process prices with it at once (other processes within 2 s).
        forget_running_instant_discounts()
        transaction.on_commit(forget_running_instant_discounts)
        record_audit(
            acting.user,
            "promotions.coupon_template_created",
            target=template,
            scope_path=acting.node.path,
            details={
                "kind": kind,
                "discount_fen": discount_fen,
                "min_spend_fen": min_spend_fen,
                "total_quantity": total_quantity,
            },
        )
    return template


def cancel_coupon_template(*, acting: Staff, template: CouponTemplate) -> CouponTemplate:
    """Stop a template now: no more claims or instant discounts; claimed coupons stop working
    (an order that already used one keeps its price)."""
    stop_promotion(
        acting,
        template,
        missing="优惠券不存在",
        already=RuleViolation("该优惠券已停用", code="coupon_cancelled"),
        audit_action="promotions.coupon_template_cancelled",
    )
    return template


CLAIM_REFUSALS = {
    "coupon_member_limit": "已领取过该优惠券(每人限领 {limit} 张)",
    "coupon_sold_out": "优惠券已领完",
}


def claim_coupon_for_member(*, member: Member, template_id: object) -> Coupon:
    """A member takes a coupon into their wallet: within the claim window, the total and their
    own limit (guarded, so a crowd of taps never hands out one too many)."""
    if isinstance(template_id, bool) or not isinstance(template_id, int):
        raise NotFound("优惠券不存在", code="unknown_coupon")
    template = CouponTemplate.objects.filter(
        pk=template_id, chain_id=member.chain_id, kind=CouponKind.COUPON
    ).first()
    if template is None:
        raise NotFound("优惠券不存在", code="unknown_coupon")
    now = timeutil.now()
    if template.cancelled_at is not None:
        raise RuleViolation("该优惠券已停用", code="coupon_cancelled")
    if now < template.starts_at:
        raise RuleViolation(
            f"{timeutil.format_local(template.starts_at)} 开始领取", code="coupon_not_started"
        )
    if now >= template.ends_at:
        raise RuleViolation("领取已结束", code="coupon_claim_ended")
    with transaction.atomic():
        claimed = claim_coupon(member=member, template=template, now=now)
        if isinstance(claimed, str):
            raise RuleViolation(
                CLAIM_REFUSALS[claimed].format(limit=template.per_member_limit), code=claimed
            )
    return claimed
