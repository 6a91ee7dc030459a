"""Referrals API for staff: sharers (list in scope, approve, reject), commission rules (HQ),
commissions on orders in scope. Members use ``/api/member/...`` with their own token."""

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from shequn.catalog.models import Category
from shequn.catalog.queries import access_product
from shequn.core.errors import NotFound
from shequn.core.pagination import Page
from shequn.core.timeutil import local_today
from shequn.members.queries import phone_for
from shequn.org.api import staff_of
from shequn.org.scoping import within_node

from . import actions
from .models import CommissionRule, OrderCommission, ReferralSettings, Sharer
from .policy import set_referral_settings
from .queries import (
    access_sharer,
    leaderboard,
    month_commissions,
    referral_settings,
    visible_commissions,
    visible_rules,
    visible_sharers,
)

router = Router(tags=["分销"])


class SharerOut(Schema):
    id: int
    member_id: int
    phone: str
    home_store_id: int
    status: str
    parent_id: int | None
    applied_at: datetime
    decided_at: datetime | None


def _sharer_out(request: HttpRequest, sharer: Sharer) -> dict[str, object]:
    return {
        "id": sharer.pk,
        "member_id": sharer.member_id,
        "phone": phone_for(staff_of(request), sharer.member),
        "home_store_id": sharer.member.home_store_id,
        "status": sharer.status,
        "parent_id": sharer.parent_id,
        "applied_at": sharer.applied_at,
        "decided_at": sharer.decided_at,
    }


@router.get("/sharers", response=list[SharerOut], summary="推客(本辖区门店的会员)")
@paginate(Page)
def list_sharers(
    request: HttpRequest,
    status: Literal["pending", "approved", "rejected", "suspended"] | None = None,
    store_id: int | None = None,
) -> list[dict[str, object]]:
    staff = staff_of(request)
    sharers = visible_sharers(staff)
    if status:
        sharers = sharers.filter(status=status)
    if store_id is not None:
        sharers = within_node(sharers, staff, store_id, via="member__home_store")
    return [_sharer_out(request, s) for s in sharers[:500]]


class DecisionIn(Schema):
    approve: bool


@router.post("/sharers/{sharer_id}/decision", response=SharerOut, summary="审核推客申请")
def decide(request: HttpRequest, sharer_id: int, payload: DecisionIn) -> dict[str, object]:
    staff = staff_of(request)
    sharer = actions.decide_sharer(
        acting=staff, sharer=access_sharer(staff, sharer_id), approve=payload.approve
    )
    return _sharer_out(request, sharer)


class RuleIn(Schema):
    kind: Literal["percent", "fixed"] = Field(
        "percent", description="percent: 按实付金额的比例; fixed: 每件固定金额(分)"
    )
    rates_bp: list[int] = Field(
        ...,
        min_length=1,
        description="一级(, 二级)佣金: percent 为万分比, fixed 为每件分; 最多两级",
        examples=[[1000, 300]],
    )
    product_id: int | None = None
    category_id: int | None = None
    pyramid_role: str = ""


class RuleOut(Schema):
    id: int
    kind: str
    product_id: int | None
    category_id: int | None
    pyramid_role: str
    level1_bp: int
    level2_bp: int
    created_at: datetime


@router.get("/rules", response=list[RuleOut], summary="佣金规则")
@paginate(Page)
def list_rules(request: HttpRequest) -> object:
    return visible_rules(staff_of(request))


@router.post("/rules", response={201: RuleOut}, summary="设置佣金规则(最多两级)")
def create_rule(request: HttpRequest, payload: RuleIn) -> Status[CommissionRule]:
    staff = staff_of(request)
    category = None
    if payload.category_id is not None:
        category = Category.objects.filter(
            pk=payload.category_id, chain_id=staff.node.chain_id
        ).first()
        if category is None:
            raise NotFound("类目不存在")
    rule = actions.set_commission_rule(
        acting=staff,
        rates_bp=payload.rates_bp,
        product=access_product(staff, payload.product_id) if payload.product_id else None,
        category=category,
        pyramid_role=payload.pyramid_role,
        kind=payload.kind,
    )
    return Status(201, rule)


class CommissionOut(Schema):
    id: int
    order_id: int
    order_number: str
    store_id: int
    member_id: int
    level: int
    rate_bp: int
    accrued_fen: int
    status: str
    unfreeze_at: datetime | None

    @staticmethod
    def resolve_order_number(obj: OrderCommission) -> str:
        return obj.order.number

    @staticmethod
    def resolve_store_id(obj: OrderCommission) -> int:
        return obj.order.store_id


@router.get("/commissions", response=list[CommissionOut], summary="订单佣金(本辖区门店)")
@paginate(Page)
def list_commissions(request: HttpRequest, store_id: int | None = None) -> object:
    staff = staff_of(request)
    rows = visible_commissions(staff).order_by("-id")
    if store_id is not None:
        rows = within_node(rows, staff, store_id, via="order__store")
    return rows


class StatementOut(Schema):
    sharer_id: int
    month: str
    orders: int
    commission_fen: int
    commissions: list[CommissionOut]


@router.get(
    "/sharers/{sharer_id}/statement",
    response=StatementOut,
    summary="推客月度账单(本辖区)",
    description="month 为 YYYY-MM (北京时间, 默认本月)。辖区外或不存在的推客一律 404。",
)
def sharer_statement(request: HttpRequest, sharer_id: int, month: str = "") -> dict[str, object]:
    staff = staff_of(request)
    sharer = access_sharer(staff, sharer_id)
    month = month or f"{local_today():%Y-%m}"
    rows = list(month_commissions(staff, month).filter(member_id=sharer.member_id))
    return {
        "sharer_id": sharer.pk,
        "month": month,
        "orders": sum(1 for row in rows if row.level == 1),
        "commission_fen": sum(row.accrued_fen for row in rows),
        "commissions": rows,
    }


class LeaderOut(Schema):
    rank: int
    member_id: int
    phone: str
    orders: int
    commission_fen: int


@router.get("/leaderboard", response=list[LeaderOut], summary="推客排行(本月或指定月份, 本辖区)")
def sharer_leaderboard(
    request: HttpRequest, month: str = "", limit: int = Query(20, ge=1, le=100)
) -> list[dict[str, object]]:
    staff = staff_of(request)
    month = month or f"{local_today():%Y-%m}"
    return [
        {
            "rank": row.rank,
            "member_id": row.member.pk,
            "phone": phone_for(staff, row.member),
            "orders": row.orders,
            "commission_fen": row.commission_fen,
        }
        for row in leaderboard(staff, month, limit)
    ]


class PolicyOut(Schema):
    binding_mode: str
    binding_days: int
    attribution_days: int
    freeze_days: int
    min_withdrawal_fen: int
    group_owner_bp: int


class PolicyIn(Schema):
    binding_mode: Literal["none", "days", "permanent", "new_only"] | None = None
    binding_days: int | None = None
    attribution_days: int | None = Field(None, description="分享链接归因窗口(天), 最后一次点击为准")
    freeze_days: int | None = Field(None, description="收货后佣金冻结天数")
    min_withdrawal_fen: int | None = None
    group_owner_bp: int | None = Field(None, description="群主奖励, 订单实付的万分比")


@router.get("/settings", response=PolicyOut, summary="分销设置(本连锁)")
def get_policy(request: HttpRequest) -> ReferralSettings:
    return referral_settings(staff_of(request))


@router.patch("/settings", response=PolicyOut, summary="修改分销设置(总部运营)")
def change_policy(request: HttpRequest, payload: PolicyIn) -> ReferralSettings:
    changes = {k: v for k, v in payload.dict().items() if v is not None}
    return set_referral_settings(acting=staff_of(request), **changes)
