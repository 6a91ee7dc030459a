"""Product cards API for staff: push a product into groups in scope, list what was pushed."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from shequn.catalog.queries import access_product
from shequn.org.api import staff_of
from shequn.org.roles import Perm
from shequn.org.scoping import scoped, within_node

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
@paginate(LimitOffsetPagination)
def list_cards(request: HttpRequest, store_id: int | None = None) -> object:
    staff = staff_of(request)
    qs = scoped(GroupPost.objects.select_related("group", "product"), staff, Perm.VIEW_GROUPS)
    if store_id is not None:
        qs = within_node(qs, staff, store_id, via="group__store")
    return qs
