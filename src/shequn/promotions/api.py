"""Promotions API for staff: flash sales (create, list, detail with sold/quota, cancel),
group-buys (create, list, detail, cancel; teams with their seats, within the caller's stores),
coupon and instant-discount templates (create, list, detail with how many went out, cancel),
the weekly calendar (recurring schedules; the week as a grid)."""

from datetime import date, datetime, time
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from shequn.catalog.models import Category
from shequn.catalog.queries import access_product, access_sku
from shequn.core import timeutil
from shequn.core.errors import NotFound
from shequn.core.pagination import Page
from shequn.members.queries import phone_for
from shequn.org.api import staff_of
from shequn.org.scoping import access_node, within_node

from . import actions, calendar
from .models import (
    CouponTemplate,
    FlashSale,
    FlashSaleQuota,
    GroupBuy,
    GroupBuySeat,
    GroupBuyTeam,
    PromotionSchedule,
    SeatStatus,
    TeamStatus,
)
from .queries import (
    access_coupon_template,
    access_flash_sale,
    access_group_buy,
    access_schedule,
    access_team,
    visible_coupon_templates,
    visible_flash_sales,
    visible_group_buys,
    visible_schedules,
    visible_teams,
)

router = Router(tags=["营销活动"])


class StoreQuotaIn(Schema):
    store_id: int
    quota: int = Field(..., ge=1, le=actions.MAX_QUOTA, strict=True)


class FlashSaleIn(Schema):
    sku_id: int
    name: str = Field(..., min_length=1, max_length=100)
    price_fen: int = Field(..., ge=1, strict=True, description="秒杀价(分)")
    starts_at: datetime
    ends_at: datetime
    per_member_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    per_order_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    chain_quota: int | None = Field(None, ge=1, le=actions.MAX_QUOTA, strict=True)
    store_quotas: list[StoreQuotaIn] = Field(default_factory=list, max_length=500)


class QuotaOut(Schema):
    store_id: int | None
    quota: int
    sold: int


class FlashSaleOut(Schema):
    id: int
    name: str
    sku_id: int
    product_name: str
    price_fen: int
    list_price_fen: int
    starts_at: datetime
    ends_at: datetime
    quota_scope: str
    per_member_limit: int
    per_order_limit: int
    cancelled_at: datetime | None
    quotas: list[QuotaOut]

    @staticmethod
    def resolve_product_name(obj: FlashSale) -> str:
        return obj.sku.product.name

    @staticmethod
    def resolve_list_price_fen(obj: FlashSale) -> int:
        return obj.sku.price_fen

    @staticmethod
    def resolve_quotas(obj: FlashSale) -> list[FlashSaleQuota]:
        return list(obj.quotas.all())


@router.get("/flash-sales", response=list[FlashSaleOut], summary="秒杀活动(本连锁)")
@paginate(Page)
def list_flash_sales(request: HttpRequest) -> object:
    return visible_flash_sales(staff_of(request))


@router.post("/flash-sales", response={201: FlashSaleOut}, summary="创建秒杀")
def create_flash_sale(request: HttpRequest, payload: FlashSaleIn) -> Status[FlashSale]:
    staff = staff_of(request)
    sale = actions.create_flash_sale(
        acting=staff,
        sku=access_sku(staff, payload.sku_id),
        name=payload.name,
        price_fen=payload.price_fen,
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        per_member_limit=payload.per_member_limit,
        per_order_limit=payload.per_order_limit,
        chain_quota=payload.chain_quota,
        store_quotas={access_node(staff, q.store_id): q.quota for q in payload.store_quotas},
    )
    return Status(201, access_flash_sale(staff, sale.pk))


@router.get("/flash-sales/{sale_id}", response=FlashSaleOut, summary="秒杀详情(含各门店已售)")
def get_flash_sale(request: HttpRequest, sale_id: int) -> FlashSale:
    return access_flash_sale(staff_of(request), sale_id)


@router.post("/flash-sales/{sale_id}/cancel", response=FlashSaleOut, summary="取消秒杀")
def cancel_flash_sale(request: HttpRequest, sale_id: int) -> FlashSale:
    staff = staff_of(request)
    actions.cancel_flash_sale(acting=staff, sale=access_flash_sale(staff, sale_id))
    return access_flash_sale(staff, sale_id)


# --- group-buys ------------------------------------------------------------------------------
class GroupBuyIn(Schema):
    sku_id: int
    name: str = Field(..., min_length=1, max_length=100)
    price_fen: int = Field(..., ge=1, strict=True, description="拼团价(分)")
    team_size: int = Field(..., ge=2, le=actions.MAX_TEAM_SIZE, strict=True)
    team_minutes: int = Field(
        ..., ge=actions.MIN_TEAM_MINUTES, le=actions.MAX_TEAM_MINUTES, strict=True
    )
    starts_at: datetime
    ends_at: datetime
    per_member_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    per_order_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    unfilled_policy: Literal["refund", "auto_succeed"] = "refund"
    min_team_size: int | None = Field(
        None, ge=2, le=actions.MAX_TEAM_SIZE, strict=True, description="仅自动成团时填写"
    )


class GroupBuyOut(Schema):
    id: int
    name: str
    sku_id: int
    product_name: str
    price_fen: int
    list_price_fen: int
    team_size: int
    team_minutes: int
    starts_at: datetime
    ends_at: datetime
    per_member_limit: int
    per_order_limit: int
    unfilled_policy: str
    min_team_size: int | None
    cancelled_at: datetime | None
    teams_forming: int
    teams_succeeded: int
    teams_failed: int

    @staticmethod
    def resolve_product_name(obj: GroupBuy) -> str:
        return obj.sku.product.name

    @staticmethod
    def resolve_list_price_fen(obj: GroupBuy) -> int:
        return obj.sku.price_fen


class SeatOut(Schema):
    order_id: int
    order_number: str
    member_phone: str
    quantity: int
    status: str
    seated_at: datetime | None

    @staticmethod
    def resolve_order_number(obj: GroupBuySeat) -> str:
        return obj.order.number

    @staticmethod
    def resolve_member_phone(obj: GroupBuySeat, context: dict[str, Any]) -> str:
        return phone_for(staff_of(context["request"]), obj.member)


class TeamOut(Schema):
    id: int
    campaign_id: int
    store_id: int
    store_name: str
    size: int
    joined: int
    status: str
    deadline: datetime
    opened_at: datetime
    closed_at: datetime | None
    leader_phone: str

    @staticmethod
    def resolve_store_name(obj: GroupBuyTeam) -> str:
        return obj.store.name

    @staticmethod
    def resolve_leader_phone(obj: GroupBuyTeam, context: dict[str, Any]) -> str:
        return phone_for(staff_of(context["request"]), obj.leader)


class TeamDetailOut(TeamOut):
    seats: list[SeatOut]

    @staticmethod
    def resolve_seats(obj: GroupBuyTeam) -> list[GroupBuySeat]:
        """Seats that were paid for (a checkout that never paid is nobody's seat)."""
        return list(obj.seats.select_related("order", "member").exclude(status=SeatStatus.PENDING))


@router.get("/group-buys", response=list[GroupBuyOut], summary="拼团活动(本连锁)")
@paginate(Page)
def list_group_buys(request: HttpRequest) -> object:
    return visible_group_buys(staff_of(request))


@router.post("/group-buys", response={201: GroupBuyOut}, summary="创建拼团")
def create_group_buy(request: HttpRequest, payload: GroupBuyIn) -> Status[GroupBuy]:
    staff = staff_of(request)
    campaign = actions.create_group_buy(
        acting=staff,
        sku=access_sku(staff, payload.sku_id),
        **payload.dict(exclude={"sku_id"}),
    )
    return Status(201, access_group_buy(staff, campaign.pk))


@router.get("/group-buys/{group_buy_id}", response=GroupBuyOut, summary="拼团详情")
def get_group_buy(request: HttpRequest, group_buy_id: int) -> GroupBuy:
    return access_group_buy(staff_of(request), group_buy_id)


@router.post("/group-buys/{group_buy_id}/cancel", response=GroupBuyOut, summary="取消拼团")
def cancel_group_buy(request: HttpRequest, group_buy_id: int) -> GroupBuy:
    """未成团的团会在下一次巡检时失败, 已付款的成员自动全额退款。"""
    staff = staff_of(request)
    actions.cancel_group_buy(acting=staff, campaign=access_group_buy(staff, group_buy_id))
    return access_group_buy(staff, group_buy_id)


@router.get(
    "/group-buys/{group_buy_id}/teams", response=list[TeamOut], summary="拼团的团(本辖区门店)"
)
@paginate(Page)
def list_teams(
    request: HttpRequest,
    group_buy_id: int,
    status: Literal["forming", "succeeded", "failed"] | None = None,
    store_id: int | None = None,
) -> object:
    staff = staff_of(request)
    teams = visible_teams(staff).filter(campaign=access_group_buy(staff, group_buy_id))
    if status is not None:
        teams = teams.filter(status=TeamStatus(status))
    if store_id is not None:
        teams = within_node(teams, staff, store_id)
    return teams.order_by("-opened_at", "-id")


@router.get("/teams/{team_id}", response=TeamDetailOut, summary="团详情(含成员)")
def get_team(request: HttpRequest, team_id: int) -> GroupBuyTeam:
    return access_team(staff_of(request), team_id)


# --- coupon and instant-discount templates --------------------------------------------------
class CouponTemplateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    kind: Literal["coupon", "instant"]
    discount_fen: int = Field(..., ge=1, strict=True, description="减免金额(分)")
    min_spend_fen: int = Field(0, ge=0, strict=True, description="使用门槛(分), 0 为无门槛")
    total_quantity: int = Field(..., ge=1, le=actions.MAX_COUPON_QUANTITY, strict=True)
    per_member_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    starts_at: datetime
    ends_at: datetime
    valid_days: int | None = Field(
        None, ge=1, le=actions.MAX_VALID_DAYS, strict=True, description="优惠券领取后有效天数"
    )
    product_ids: list[int] = Field(default_factory=list, max_length=500)
    category_ids: list[int] = Field(default_factory=list, max_length=100)
    stacks_with_coupon: bool = False
    applies_to_promotions: bool = False


class CouponTemplateOut(Schema):
    id: int
    name: str
    kind: str
    discount_fen: int
    min_spend_fen: int
    total_quantity: int
    issued: int
    per_member_limit: int
    starts_at: datetime
    ends_at: datetime
    valid_days: int | None
    product_ids: list[int]
    category_ids: list[int]
    stacks_with_coupon: bool
    applies_to_promotions: bool
    cancelled_at: datetime | None

    @staticmethod
    def resolve_product_ids(obj: CouponTemplate) -> list[int]:
        return [p.pk for p in obj.products.all()]

    @staticmethod
    def resolve_category_ids(obj: CouponTemplate) -> list[int]:
        return [c.pk for c in obj.categories.all()]


@router.get("/coupon-templates", response=list[CouponTemplateOut], summary="优惠券与立减金(本连锁)")
@paginate(Page)
def list_coupon_templates(
    request: HttpRequest, kind: Literal["coupon", "instant"] | None = None
) -> object:
    templates = visible_coupon_templates(staff_of(request))
    return templates.filter(kind=kind) if kind else templates


@router.post("/coupon-templates", response={201: CouponTemplateOut}, summary="创建优惠券或立减金")
def create_coupon_template(
    request: HttpRequest, payload: CouponTemplateIn
) -> Status[CouponTemplate]:
    staff = staff_of(request)
    categories = list(
        Category.objects.filter(pk__in=payload.category_ids, chain_id=staff.node.chain_id)
    )
    if len(categories) != len(set(payload.category_ids)):
        raise NotFound("类目不存在")
    template = actions.create_coupon_template(
        acting=staff,
        products=[access_product(staff, pid) for pid in dict.fromkeys(payload.product_ids)],
        categories=categories,
        **payload.dict(exclude={"product_ids", "category_ids"}),
    )
    return Status(201, access_coupon_template(staff, template.pk))


@router.get(
    "/coupon-templates/{template_id}", response=CouponTemplateOut, summary="优惠券详情(已发放)"
)
def get_coupon_template(request: HttpRequest, template_id: int) -> CouponTemplate:
    return access_coupon_template(staff_of(request), template_id)


@router.post("/coupon-templates/{template_id}/cancel", response=CouponTemplateOut, summary="停用")
def cancel_coupon_template(request: HttpRequest, template_id: int) -> CouponTemplate:
    """停用后不能再领取或使用; 已用券的订单价格不变。"""
    staff = staff_of(request)
    actions.cancel_coupon_template(
        acting=staff, template=access_coupon_template(staff, template_id)
    )
    return access_coupon_template(staff, template_id)


# --- the weekly calendar ----------------------------------------------------------------------
class ScheduleIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    kind: Literal["flash_sale", "group_buy"]
    sku_id: int
    price_fen: int = Field(..., ge=1, strict=True)
    weekdays: list[int] = Field(..., min_length=1, max_length=7, description="1 为周一, 7 为周日")
    start_time: time = Field(..., description="北京时间, 如 10:00")
    duration_minutes: int = Field(..., ge=1, le=calendar.MAX_DURATION_MINUTES, strict=True)
    per_member_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    per_order_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    chain_quota: int | None = Field(None, ge=1, le=actions.MAX_QUOTA, strict=True)
    team_size: int | None = Field(None, ge=2, le=actions.MAX_TEAM_SIZE, strict=True)
    team_minutes: int | None = Field(None, ge=1, le=actions.MAX_TEAM_MINUTES, strict=True)
    group_ids: list[int] = Field(default_factory=list, max_length=200)
    headline: str = Field("", max_length=100)


class ScheduleOut(Schema):
    id: int
    name: str
    kind: str
    sku_id: int
    product_name: str
    price_fen: int
    weekdays: list[int]
    start_time: time
    duration_minutes: int
    chain_quota: int | None
    team_size: int | None
    team_minutes: int | None
    group_ids: list[int]
    stopped_at: datetime | None

    @staticmethod
    def resolve_product_name(obj: PromotionSchedule) -> str:
        return obj.sku.product.name

    @staticmethod
    def resolve_weekdays(obj: PromotionSchedule) -> list[int]:
        return [int(d) for d in obj.weekdays]

    @staticmethod
    def resolve_group_ids(obj: PromotionSchedule) -> list[int]:
        return [g.pk for g in obj.groups.all()]


class CalendarEntryOut(Schema):
    kind: str
    name: str
    starts_at: datetime
    ends_at: datetime
    price_fen: int
    state: str
    promotion_id: int | None
    schedule_id: int | None


class CalendarDayOut(Schema):
    day: date
    label: str
    entries: list[CalendarEntryOut]


@router.get("/schedules", response=list[ScheduleOut], summary="周期活动")
@paginate(Page)
def list_schedules(request: HttpRequest) -> object:
    return visible_schedules(staff_of(request))


@router.post("/schedules", response={201: ScheduleOut}, summary="创建周期活动(如每周一三五)")
def create_schedule(request: HttpRequest, payload: ScheduleIn) -> Status[PromotionSchedule]:
    staff = staff_of(request)
    schedule = calendar.create_schedule(
        acting=staff,
        sku=access_sku(staff, payload.sku_id),
        **payload.dict(exclude={"sku_id"}),
    )
    return Status(201, access_schedule(staff, schedule.pk))


@router.post("/schedules/{schedule_id}/stop", response=ScheduleOut, summary="停止周期活动")
def stop_schedule(request: HttpRequest, schedule_id: int) -> PromotionSchedule:
    staff = staff_of(request)
    calendar.stop_schedule(acting=staff, schedule=access_schedule(staff, schedule_id))
    return access_schedule(staff, schedule_id)


@router.get("/calendar", response=list[CalendarDayOut], summary="活动日历(一周)")
def week(request: HttpRequest, week_of: date | None = None) -> list[calendar.CalendarDay]:
    """该周(周一至周日)已创建的秒杀与拼团, 以及周期活动尚未生成的计划场次。"""
    return calendar.week_calendar(
        staff_of(request), week_of or timeutil.to_local(timeutil.now()).date()
    )
