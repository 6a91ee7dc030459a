"""Members API: phones are masked unless the caller's role may see them (PIPL)."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from shequn.core.pagination import Page
from shequn.core.phones import normalize_phone
from shequn.org.api import staff_of
from shequn.org.roles import Perm
from shequn.org.scoping import access_node, require_perm, within_node

from . import actions
from .models import IdentityChannel, Member
from .queries import access_member, phone_for, visible_members

router = Router(tags=["会员"])


class MemberOut(Schema):
    id: int
    name: str
    phone: str = Field(..., description="无权查看个人信息的角色看到 138****1234")
    home_store_id: int
    home_store_name: str
    consent_marketing: bool
    consent_chat_analysis: bool
    consent_personalization: bool
    created_at: datetime

    @staticmethod
    def resolve_phone(obj: Member, context: dict[str, Any]) -> str:
        return phone_for(staff_of(context["request"]), obj)

    @staticmethod
    def resolve_home_store_name(obj: Member) -> str:
        return obj.home_store.name


class MemberIn(Schema):
    store_id: int
    phone: str = Field(..., max_length=32)
    name: str = Field("", max_length=50)
    consents: dict[str, bool] = Field(default_factory=dict)


class MemberPatch(Schema):
    name: str | None = Field(None, max_length=50)
    home_store_id: int | None = None


class ConsentIn(Schema):
    purpose: str = Field(..., description="marketing / chat_analysis / personalization")
    granted: bool


class IdentityIn(Schema):
    channel: IdentityChannel
    value: str = Field(..., min_length=1, max_length=128)


@router.get("", response=list[MemberOut], summary="会员列表(本部门及下级)")
@paginate(Page)
def list_members(
    request: HttpRequest, store_id: int | None = None, phone: str | None = None
) -> object:
    staff = staff_of(request)
    qs = visible_members(staff)
    if store_id is not None:
        qs = within_node(qs, staff, store_id, via="home_store")
    if phone:
        # Searching by a full phone is allowed even when the result is shown masked.
        qs = qs.filter(phone=normalize_phone(phone))
    return qs


@router.get("/{member_id}", response=MemberOut, summary="会员详情")
def get_member(request: HttpRequest, member_id: int) -> Member:
    return access_member(staff_of(request), member_id)


@router.post("", response={201: MemberOut, 200: MemberOut}, summary="登记会员(按手机号查找或新建)")
def register_member(request: HttpRequest, payload: MemberIn) -> Status[Member]:
    staff = staff_of(request)
    require_perm(staff, Perm.MANAGE_MEMBERS)
    store = access_node(staff, payload.store_id)
    result = actions.find_or_register_member(
        store=store,
        phone=payload.phone,
        name=payload.name,
        consents=payload.consents,
        actor=staff.user,
    )
    return Status((201 if result.created else 200), result.member)


@router.patch("/{member_id}", response=MemberOut, summary="修改会员")
def update_member(request: HttpRequest, member_id: int, payload: MemberPatch) -> Member:
    staff = staff_of(request)
    member = access_member(staff, member_id)
    home_store = (
        access_node(staff, payload.home_store_id) if payload.home_store_id is not None else None
    )
    return actions.update_member(
        acting=staff, member=member, name=payload.name, home_store=home_store
    )


@router.post("/{member_id}/consents", response=MemberOut, summary="记录授权或撤回")
def set_consent(request: HttpRequest, member_id: int, payload: ConsentIn) -> Member:
    staff = staff_of(request)
    require_perm(staff, Perm.MANAGE_MEMBERS)
    member = access_member(staff, member_id)
    return actions.set_consent(
        member=member, purpose=payload.purpose, granted=payload.granted, actor=staff.user
    )


@router.post("/{member_id}/identities", response=MemberOut, summary="绑定渠道身份")
def attach_identity(request: HttpRequest, member_id: int, payload: IdentityIn) -> Member:
    staff = staff_of(request)
    member = access_member(staff, member_id)
    return actions.attach_identity(
        acting=staff, member=member, channel=payload.channel, value=payload.value
    )
