"""Shop API: product cards for staff (push a product into groups in scope, list what was
pushed), and orders for members (``X-Member-Token``), flash sales and group-buys included."""

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import AuthenticationError
from ninja.pagination import paginate
from ninja.security import APIKeyHeader

from shequn.catalog.queries import access_product
from shequn.core.errors import DomainError, NotFound
from shequn.core.pagination import Page
from shequn.core.rows import row_by_pk, rows_by_pk
from shequn.groups.codes import unsign_member
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.org.api import staff_of
from shequn.org.models import OrgNode
from shequn.org.roles import Perm
from shequn.org.scoping import scoped, within_node
from shequn.referrals.actions import request_withdrawal
from shequn.referrals.models import Sharer
from shequn.referrals.queries import earnings

from . import actions
from .links import Source, product_link
from .models import GroupPost

router = Router(tags=["商品卡片"])


class PushIn(Schema):
    product_id: int
    group_ids: list[int] = Field(..., min_length=1, max_length=actions.MAX_GROUPS_PER_PUSH)
    headline: str = Field("", max_length=100, description="推荐语")


class CardOut(Schema):
    id: int
    group_id: int
    group_name: str
    product_id: int
    product_name: str
    headline: str
    sharer_id: int | None
    content_ref: str
    link: str = Field(description="卡片链接(带社群、分享人、素材编号, 已签名)")
    posted_at: datetime

    @staticmethod
    def resolve_group_name(obj: GroupPost) -> str:
        return obj.group.name

    @staticmethod
    def resolve_product_name(obj: GroupPost) -> str:
        return obj.product.name

    @staticmethod
    def resolve_link(obj: GroupPost) -> str:
        return product_link(
            obj.product_id, Source(obj.group_id, obj.sharer_id, obj.content_ref, "group_share")
        )


@router.post("/cards", response={201: list[CardOut]}, summary="把商品卡片推送到社群")
def push_card(request: HttpRequest, payload: PushIn) -> Status[list[GroupPost]]:
    staff = staff_of(request)
    posts = actions.push_product_card(
        acting=staff,
        product=access_product(staff, payload.product_id),
        group_ids=payload.group_ids,
        headline=payload.headline,
    )
    return Status(201, posts)


@router.get("/cards", response=list[CardOut], summary="已推送的商品卡片(本部门及下级)")
@paginate(Page)
def list_cards(request: HttpRequest, store_id: int | None = None) -> object:
    staff = staff_of(request)
    qs = scoped(GroupPost.objects.select_related("group", "product"), staff, Perm.VIEW_GROUPS)
    if store_id is not None:
        qs = within_node(qs, staff, store_id, via="group__store")
    return qs


# --- members buying (the member's signed token, not a staff login) -------------------------------
@dataclass(frozen=True)
class SignedMember:
    """A member id from a token whose signature and age checked out. The member row itself is
    read by the handler (``member_of``), so the order endpoint can read it together with the
    store in one round trip."""

    member_id: int


class MemberTokenAuth(APIKeyHeader):
    """``X-Member-Token``: the signed token a member's phone keeps (issued when they join a
    group, or by the member pages); it names the member and expires."""

    param_name = "X-Member-Token"

    def authenticate(self, request: HttpRequest, key: str | None) -> SignedMember | None:
        if not key or len(key) > 200:
            return None
        try:
            return SignedMember(unsign_member(key))
        except DomainError:
            return None


def member_of(request: HttpRequest) -> Member:
    """The token's member; a token for a member who is not there is refused like a bad one."""
    signed: SignedMember = request.auth  # type: ignore[attr-defined]
    member = row_by_pk(Member, signed.member_id)
    if member is None:
        raise AuthenticationError
    return member


member_router = Router(tags=["会员下单"], auth=MemberTokenAuth())


class LineIn(Schema):
    sku_id: int
    quantity: int = Field(..., ge=1, le=999, strict=True)


class MemberOrderIn(Schema):
    store_id: int
    lines: list[LineIn] = Field(..., min_length=1, max_length=50)
    idempotency_key: str = Field(..., min_length=1, max_length=64)
    flash_sale_id: int | None = None
    group_buy_id: int | None = None
    team_id: int | None = None
    coupon_id: int | None = None


class MemberOrderOut(Schema):
    id: int
    number: str
    status: str
    subtotal_fen: int
    total_fen: int
    payment_deadline: datetime
    created: bool


@member_router.post(
    "/orders",
    response={201: MemberOrderOut, 200: MemberOrderOut},
    summary="会员下单(含秒杀/拼团/券)",
)
def place_member_order(request: HttpRequest, payload: MemberOrderIn) -> Status[dict[str, object]]:
    """同一 idempotency_key 重试返回同一订单(200); 新订单 201。"""
    signed: SignedMember = request.auth  # type: ignore[attr-defined]
    member, store = rows_by_pk((Member, signed.member_id), (OrgNode, payload.store_id))
    if member is None:
        raise AuthenticationError
    if store is None:  # another chain's store is refused by place_order, in the same words
        raise NotFound("门店不存在")
    placed = place_order(
        member=member,
        store=store,
        lines=[LineRequest(line.sku_id, line.quantity) for line in payload.lines],
        idempotency_key=payload.idempotency_key,
        flash_sale_id=payload.flash_sale_id,
        group_buy_id=payload.group_buy_id,
        team_id=payload.team_id,
        coupon_id=payload.coupon_id,
    )
    order = placed.order
    return Status(
        201 if placed.created else 200,
        {
            "id": order.pk,
            "number": order.number,
            "status": order.status,
            "subtotal_fen": order.subtotal_fen,
            "total_fen": order.total_fen,
            "payment_deadline": order.payment_deadline,
            "created": placed.created,
        },
    )


# --- the member as a sharer (推客), by token ----------------------------------------------------
class EarningsOut(Schema):
    status: str = Field(description="none / pending / approved / rejected / suspended")
    pending_fen: int
    available_fen: int
    in_flight_fen: int
    paid_out_fen: int
    owed_fen: int


@member_router.get("/earnings", response=EarningsOut, summary="推客收益(冻结/可提现/提现中/已提现)")
def member_earnings(request: HttpRequest) -> dict[str, object]:
    return _earnings_of(member_of(request))


def _earnings_of(member: Member) -> dict[str, object]:
    sharer = Sharer.objects.filter(member=member).first()
    found = earnings(member)
    return {
        "status": sharer.status if sharer else "none",
        "pending_fen": found.pending_fen,
        "available_fen": found.available_fen,
        "in_flight_fen": found.in_flight_fen,
        "paid_out_fen": found.paid_out_fen,
        "owed_fen": found.owed_fen,
    }


class WithdrawalIn(Schema):
    amount_fen: int = Field(..., ge=1, strict=True)
    request_key: str = Field(..., min_length=1, max_length=40)


@member_router.post("/withdrawals", response={201: EarningsOut}, summary="推客申请提现")
def member_withdraw(request: HttpRequest, payload: WithdrawalIn) -> Status[dict[str, object]]:
    """同一 request_key 重试不会重复提现; 金额不能低于最低提现额, 也不能超过可提现余额。"""
    member = member_of(request)
    request_withdrawal(
        member=member, amount_fen=payload.amount_fen, request_key=payload.request_key
    )
    return Status(201, _earnings_of(member))
