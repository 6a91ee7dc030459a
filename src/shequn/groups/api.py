"""Groups, invitations, rewards and the public join endpoints."""

from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from shequn.core.errors import NotFound
from shequn.core.middleware import client_ip
from shequn.core.pagination import Page
from shequn.members.actions import (
    LOGIN_CODE_TTL,
    prove_phone,
    send_login_code,
    ticked_consents,
)
from shequn.members.queries import phone_for
from shequn.org.api import staff_of
from shequn.org.models import Staff
from shequn.org.scoping import access_node, within_node

from . import actions
from .models import (
    WECHAT_GROUP_CAP,
    CustomerGroup,
    GroupMembership,
    GroupStatus,
    GroupTheme,
    Invitation,
    InvitationKind,
    MembershipRole,
    ModerationPolicy,
    RecruitmentReward,
)
from .qr import qr_png
from .queries import (
    access_group,
    access_invitation,
    access_membership,
    visible_groups,
    visible_invitations,
    visible_memberships,
    visible_rewards,
)

router = Router(tags=["社群"])
invitations_router = Router(tags=["邀请码"])
rewards_router = Router(tags=["拉新奖励"])
join_router = Router(tags=["入群(公开)"], auth=None)


# --- schemas -------------------------------------------------------------------------------
class GroupOut(Schema):
    id: int
    store_id: int
    store_name: str
    name: str
    theme: str
    theme_label: str
    rules: str
    capacity: int
    member_count: int
    status: str
    moderation: str
    owner_id: int | None
    created_at: datetime

    @staticmethod
    def resolve_store_name(obj: CustomerGroup) -> str:
        return obj.store.name

    @staticmethod
    def resolve_theme_label(obj: CustomerGroup) -> str:
        return obj.get_theme_display()


class GroupIn(Schema):
    store_id: int
    name: str = Field(..., min_length=1, max_length=100)
    theme: GroupTheme
    capacity: int = Field(WECHAT_GROUP_CAP, ge=1, le=WECHAT_GROUP_CAP)
    rules: str = Field("", max_length=5000)


class GroupPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    rules: str | None = Field(None, max_length=5000)
    capacity: int | None = Field(None, ge=1, le=WECHAT_GROUP_CAP)
    status: GroupStatus | None = None
    moderation: ModerationPolicy | None = None


class MembershipOut(Schema):
    id: int
    group_id: int
    member_id: int
    member_name: str
    member_phone: str
    role: str
    join_channel: str
    invited_by_staff_id: int | None
    invited_by_member_id: int | None
    joined_at: datetime
    left_at: datetime | None

    @staticmethod
    def resolve_member_name(obj: GroupMembership) -> str:
        return obj.member.name

    @staticmethod
    def resolve_member_phone(obj: GroupMembership, context: dict[str, Any]) -> str:
        return phone_for(staff_of(context["request"]), obj.member)


class AddMemberIn(Schema):
    phone: str = Field(..., max_length=32)
    name: str = Field("", max_length=50)
    role: MembershipRole = MembershipRole.MEMBER


class RolePatch(Schema):
    role: MembershipRole


class RemoveIn(Schema):
    reason: str = Field("", max_length=100)


class InvitationOut(Schema):
    id: int
    kind: str
    store_id: int
    group_id: int | None
    theme: str
    staff_id: int | None
    code: str
    join_url: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    uses: int

    @staticmethod
    def resolve_uses(obj: Invitation) -> int:
        annotated = getattr(obj, "uses", None)
        return annotated if annotated is not None else obj.joins.count()

    @staticmethod
    def resolve_code(obj: Invitation) -> str:
        return actions.invitation_code(obj)

    @staticmethod
    def resolve_join_url(obj: Invitation, context: dict[str, Any]) -> str:
        return join_url(context["request"], obj)


class InvitationIn(Schema):
    kind: InvitationKind
    store_id: int | None = None
    group_id: int | None = None
    theme: GroupTheme | None = None
    days: int = Field(30, ge=1, le=actions.MAX_INVITATION_DAYS)


class RewardOut(Schema):
    id: int
    staff_id: int
    store_id: int
    group_id: int
    member_id: int
    member_ordinal: int
    amount_fen: int
    created_at: datetime


class JoinPreviewOut(Schema):
    kind: str
    store_name: str
    group_name: str | None
    expires_at: datetime


class JoinCodeIn(Schema):
    code: str = Field(..., min_length=1, max_length=120, description="邀请码")
    phone: str = Field(..., max_length=32)


class JoinCodeOut(Schema):
    sent: bool
    expires_in_s: int = Field(description="验证码有效期(秒)")
    retry_after_s: int = Field(description="多少秒后可重新获取")


class JoinIn(Schema):
    code: str = Field(..., min_length=1, max_length=120)
    phone: str = Field(..., max_length=32)
    sms_code: str = Field(
        ..., min_length=1, max_length=10, description="发到该手机号的验证码(先调用 /api/join/sms)"
    )
    name: str = Field("", max_length=50)
    consent_marketing: bool = False
    consent_chat_analysis: bool = Field(
        False, description="同意门店分析其群内发言(进入需求看板, 可随时撤回)"
    )
    referrer_token: str | None = Field(
        None, max_length=200, description="分享者的会员凭证(会员推荐入群)"
    )


class JoinOut(Schema):
    group_id: int
    group_name: str
    store_name: str
    member_id: int
    member_token: str = Field(..., description="会员凭证(下单、收益、自助退群), 30 天有效")


class LeaveIn(Schema):
    member_token: str = Field(..., max_length=200)
    group_id: int


M = TypeVar("M", CustomerGroup, Invitation, RecruitmentReward)


def narrow(
    staff: Staff, qs: QuerySet[M], *, store_id: int | None = None, group_id: int | None = None
) -> QuerySet[M]:
    """Apply the list filters; a foreign store or group in a filter is a 404, not an empty list."""
    if store_id is not None:
        qs = within_node(qs, staff, store_id)
    if group_id is not None:
        qs = qs.filter(Q(group=access_group(staff, group_id)))
    return qs


def join_url(request: HttpRequest, invitation: Invitation) -> str:
    return request.build_absolute_uri(
        reverse("console:join", args=[actions.invitation_code(invitation)])
    )


# --- groups --------------------------------------------------------------------------------
@router.get("", response=list[GroupOut], summary="社群列表(本部门及下级)")
@paginate(Page)
def list_groups(
    request: HttpRequest,
    store_id: int | None = None,
    theme: GroupTheme | None = None,
    status: GroupStatus | None = None,
) -> object:
    staff = staff_of(request)
    qs = narrow(staff, visible_groups(staff), store_id=store_id)
    if theme is not None:
        qs = qs.filter(theme=theme)
    if status is not None:
        qs = qs.filter(status=status)
    return qs


@router.get("/{group_id}", response=GroupOut, summary="社群详情")
def get_group(request: HttpRequest, group_id: int) -> CustomerGroup:
    return access_group(staff_of(request), group_id)


@router.post("", response={201: GroupOut}, summary="新建社群")
def create_group(request: HttpRequest, payload: GroupIn) -> Status[CustomerGroup]:
    staff = staff_of(request)
    store = access_node(staff, payload.store_id)
    group = actions.create_group(
        acting=staff,
        store=store,
        name=payload.name,
        theme=payload.theme,
        capacity=payload.capacity,
        rules=payload.rules,
    )
    return Status(201, group)


@router.patch("/{group_id}", response=GroupOut, summary="修改社群")
def update_group(request: HttpRequest, group_id: int, payload: GroupPatch) -> CustomerGroup:
    staff = staff_of(request)
    group = access_group(staff, group_id)
    return actions.update_group(
        acting=staff,
        group=group,
        name=payload.name,
        rules=payload.rules,
        capacity=payload.capacity,
        status=payload.status,
        moderation=payload.moderation,
    )


@router.get("/{group_id}/members", response=list[MembershipOut], summary="群成员")
@paginate(Page)
def list_group_members(request: HttpRequest, group_id: int, include_left: bool = False) -> object:
    staff = staff_of(request)
    group = access_group(staff, group_id)
    qs = visible_memberships(staff).filter(group=group)
    return qs if include_left else qs.filter(left_at__isnull=True)


@router.post("/{group_id}/members", response={201: MembershipOut}, summary="员工拉会员入群")
def add_group_member(
    request: HttpRequest, group_id: int, payload: AddMemberIn
) -> Status[GroupMembership]:
    staff = staff_of(request)
    group = access_group(staff, group_id)
    result = actions.add_member_by_staff(
        acting=staff, group=group, phone=payload.phone, name=payload.name, role=payload.role
    )
    return Status(201, result.membership)


def _membership_in_group(
    request: HttpRequest, group_id: int, membership_id: int
) -> tuple[Staff, GroupMembership]:
    staff = staff_of(request)
    group = access_group(staff, group_id)
    membership = access_membership(staff, membership_id)
    if membership.group_id != group.pk:
        raise NotFound("群成员不存在")
    return staff, membership


@router.patch("/{group_id}/members/{membership_id}", response=MembershipOut, summary="设置群内角色")
def set_member_role(
    request: HttpRequest, group_id: int, membership_id: int, payload: RolePatch
) -> GroupMembership:
    staff, membership = _membership_in_group(request, group_id, membership_id)
    return actions.set_membership_role(acting=staff, membership=membership, role=payload.role)


@router.post("/{group_id}/members/{membership_id}/remove", response=MembershipOut, summary="移出群")
def remove_group_member(
    request: HttpRequest, group_id: int, membership_id: int, payload: RemoveIn
) -> GroupMembership:
    staff, membership = _membership_in_group(request, group_id, membership_id)
    return actions.remove_member(acting=staff, membership=membership, reason=payload.reason)


# --- invitations ---------------------------------------------------------------------------
@invitations_router.get("", response=list[InvitationOut], summary="邀请码列表")
@paginate(Page)
def list_invitations(
    request: HttpRequest, store_id: int | None = None, group_id: int | None = None
) -> object:
    staff = staff_of(request)
    return narrow(staff, visible_invitations(staff), store_id=store_id, group_id=group_id)


@invitations_router.get("/{invitation_id}", response=InvitationOut, summary="邀请码详情")
def get_invitation(request: HttpRequest, invitation_id: int) -> Invitation:
    return access_invitation(staff_of(request), invitation_id)


@invitations_router.get("/{invitation_id}/qr.png", summary="邀请码二维码(PNG, 可打印)")
def invitation_qr(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = access_invitation(staff_of(request), invitation_id)
    return HttpResponse(qr_png(join_url(request, invitation)), content_type="image/png")


@invitations_router.post("", response={201: InvitationOut}, summary="生成邀请码")
def create_invitation(request: HttpRequest, payload: InvitationIn) -> Status[Invitation]:
    staff = staff_of(request)
    store = access_node(staff, payload.store_id) if payload.store_id is not None else None
    group = access_group(staff, payload.group_id) if payload.group_id is not None else None
    invitation = actions.create_invitation(
        acting=staff,
        kind=payload.kind,
        store=store,
        group=group,
        theme=payload.theme or "",
        days=payload.days,
    )
    return Status(201, invitation)


@invitations_router.post("/{invitation_id}/revoke", response=InvitationOut, summary="作废邀请码")
def revoke_invitation(request: HttpRequest, invitation_id: int) -> Invitation:
    staff = staff_of(request)
    invitation = access_invitation(staff, invitation_id)
    return actions.revoke_invitation(acting=staff, invitation=invitation)


# --- rewards -------------------------------------------------------------------------------
@rewards_router.get("", response=list[RewardOut], summary="收银员拉新奖励")
@paginate(Page)
def list_rewards(
    request: HttpRequest, store_id: int | None = None, group_id: int | None = None
) -> object:
    staff = staff_of(request)
    return narrow(staff, visible_rewards(staff), store_id=store_id, group_id=group_id)


# --- public: joining and leaving -----------------------------------------------------------
class LeaveOut(Schema):
    group_id: int
    group_name: str
    left_at: datetime


# Registered before "/{code}" so that POST /join/leave and /join/sms are not taken for a code.
@join_router.post("/leave", response=LeaveOut, summary="会员凭自助凭证退群")
def leave(request: HttpRequest, payload: LeaveIn) -> LeaveOut:
    membership = actions.leave_group_by_member_token(
        token=payload.member_token, group_id=payload.group_id
    )
    assert membership.left_at is not None
    return LeaveOut(
        group_id=membership.group_id, group_name=membership.group.name, left_at=membership.left_at
    )


@join_router.post(
    "/sms",
    response={202: JoinCodeOut},
    summary="入群第一步: 向手机号发送验证码",
    description="同一手机号 60 秒一次、每天 10 次; 每个来源地址与全局另有每日上限(429)。"
    "无论该手机号是否已是会员, 回答都相同。",
)
def send_join_code(request: HttpRequest, payload: JoinCodeIn) -> Status[JoinCodeOut]:
    invitation = actions.resolve_invitation(payload.code)
    send_login_code(store=invitation.store, phone=payload.phone, ip=client_ip(request))
    return Status(
        202,
        JoinCodeOut(
            sent=True,
            expires_in_s=int(LOGIN_CODE_TTL.total_seconds()),
            retry_after_s=settings.SHEQUN_SMS_PHONE_INTERVAL_S,
        ),
    )


@join_router.get("/{code}", response=JoinPreviewOut, summary="扫码预览: 将加入哪个门店/群")
def preview_join(request: HttpRequest, code: str) -> JoinPreviewOut:
    invitation = actions.resolve_invitation(code)
    return JoinPreviewOut(
        kind=invitation.kind,
        store_name=invitation.store.name,
        group_name=invitation.group.name if invitation.group else None,
        expires_at=invitation.expires_at,
    )


@join_router.post("", response={201: JoinOut}, summary="入群第二步: 凭邀请码与短信验证码入群")
def join(request: HttpRequest, payload: JoinIn) -> Status[JoinOut]:
    invitation = actions.resolve_invitation(payload.code)
    proof = prove_phone(store=invitation.store, phone=payload.phone, code=payload.sms_code)
    result = actions.join_by_invitation(
        code=payload.code,
        proof=proof,
        name=payload.name,
        consents=ticked_consents(
            marketing=payload.consent_marketing, chat_analysis=payload.consent_chat_analysis
        ),
        referrer_token=payload.referrer_token,
    )
    group = result.membership.group
    return Status(
        201,
        JoinOut(
            group_id=group.pk,
            group_name=group.name,
            store_name=group.store.name,
            member_id=result.member.pk,
            member_token=result.member_token,
        ),
    )
