"""Promotions API for staff: flash sales (create, list, detail with sold/quota, cancel) and
group-buys (create, list, detail, cancel; teams with their seats, within the caller's stores)."""

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from shequn.catalog.queries import access_sku
from shequn.members.queries import phone_for
from shequn.org.api import staff_of
from shequn.org.scoping import access_node, within_node

from . import actions
from .models import (
    FlashSale,
    FlashSaleQuota,
    GroupBuy,
    GroupBuySeat,
    GroupBuyTeam,
    SeatStatus,
    TeamStatus,
)
from .queries import (
    access_flash_sale,
    access_group_buy,
    access_team,
    visible_flash_sales,
    visible_group_buys,
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
@paginate(LimitOffsetPagination)
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
@paginate(LimitOffsetPagination)
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
@paginate(LimitOffsetPagination)
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
