"""Group actions: create and edit groups, invitations, join, leave, roles.

`join_group` is the hot path (a till full of customers scanning the same code): the membership
INSERT comes first (its partial unique index refuses duplicates), and the conditional counter
UPDATE on the group row comes last, so the row lock is held only through the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F

from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from shequn.members.actions import PhoneProof, find_or_register_member
from shequn.members.models import Member
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm, Role
from shequn.org.scoping import require_perm
from shequn.referrals.staff_rewards import book_recruitment_reward

from . import codes
from .models import (
    WECHAT_GROUP_CAP,
    CustomerGroup,
    GroupMembership,
    GroupStatus,
    GroupTheme,
    Invitation,
    InvitationKind,
    JoinChannel,
    MembershipRole,
    ModerationPolicy,
    RecruitmentReward,
)
from .queries import sibling_with_room
from .rewards import recruitment_reward_fen

MAX_INVITATION_DAYS = 365
STORE_CODE_TRIES = 5  # groups a store code tries before giving up


# --- groups --------------------------------------------------------------------------------
def _check_group_fields(name: str, theme: str, capacity: int, rules: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("群名称不能为空, 且不超过100字")
    if theme not in GroupTheme.values:
        raise InvalidInput(f"未知的群主题: {theme}", code="invalid_theme")
    if not 1 <= capacity <= WECHAT_GROUP_CAP:
        raise InvalidInput(f"群容量须在 1 到 {WECHAT_GROUP_CAP} 之间", code="invalid_capacity")
    if len(rules) > 5000:
        raise InvalidInput("群规不超过5000字")
    return name


def _require_store_in_scope(acting: Staff, store: OrgNode) -> None:
    if store.kind != NodeKind.STORE:
        raise InvalidInput("社群只能建在门店下", code="not_a_store")
    if not store.is_within(acting.node):
        raise NotFound("门店不存在")


def create_group(
    *,
    acting: Staff,
    store: OrgNode,
    name: str,
    theme: str,
    capacity: int = WECHAT_GROUP_CAP,
    rules: str = "",
    owner: User | None = None,
) -> CustomerGroup:
    require_perm(acting, Perm.MANAGE_GROUPS)
    _require_store_in_scope(acting, store)
    name = _check_group_fields(name, theme, capacity, rules)
    if owner is not None and not _is_staff_of(owner, store):
        raise InvalidInput("群主须为该门店的员工", code="invalid_owner")
    with transaction.atomic():
        group = CustomerGroup.objects.create(
            store=store, name=name, theme=theme, capacity=capacity, rules=rules, owner=owner
        )
        record_audit(
            acting.user,
            "groups.created",
            target=group,
            scope_path=store.path,
            details={"name": name, "theme": theme, "capacity": capacity},
        )
    return group


def _is_staff_of(user: User, store: OrgNode) -> bool:
    staff = Staff.objects.filter(user=user).select_related("node").first()
    return staff is not None and store.is_within(staff.node)


def update_group(
    *,
    acting: Staff,
    group: CustomerGroup,
    name: str | None = None,
    rules: str | None = None,
    capacity: int | None = None,
    status: str | None = None,
    moderation: str | None = None,
) -> CustomerGroup:
    """Change a group's name, rules, capacity, status or how its ads are handled."""
    require_perm(acting, Perm.MANAGE_GROUPS)
    new_name = group.name if name is None else name
    new_rules = group.rules if rules is None else rules
    new_capacity = group.capacity if capacity is None else capacity
    new_name = _check_group_fields(new_name, group.theme, new_capacity, new_rules)
    if status is not None and status not in GroupStatus.values:
        raise InvalidInput(f"未知的群状态: {status}", code="invalid_status")
    if moderation is not None and moderation not in ModerationPolicy.values:
        raise InvalidInput(f"未知的广告处理方式: {moderation}", code="invalid_moderation")
    with transaction.atomic():
        # Shrinking below the current head count is refused by the guard, never by a stale read.
        updated = CustomerGroup.objects.filter(pk=group.pk, member_count__lte=new_capacity).update(
            name=new_name,
            rules=new_rules,
            capacity=new_capacity,
            status=status or group.status,
            moderation=moderation or group.moderation,
        )
        if not updated:
            raise RuleViolation(
                f"群内已有 {group.member_count} 人, 容量不能小于当前人数",
                code="capacity_below_count",
            )
        group.refresh_from_db()
        record_audit(
            acting.user,
            "groups.updated",
            target=group,
            scope_path=group.store.path,
            details={
                "name": new_name,
                "capacity": new_capacity,
                "status": group.status,
                "moderation": group.moderation,
            },
        )
    return group


# --- invitations ---------------------------------------------------------------------------
def create_invitation(
    *,
    acting: Staff,
    kind: str,
    store: OrgNode | None = None,
    group: CustomerGroup | None = None,
    theme: str = "",
    days: int | None = None,
) -> Invitation:
    """A store, group or staff code. A staff code belongs to the acting staff member: joins
    through it earn them the recruitment reward. Cashiers may only make their own staff codes."""
    require_perm(acting, Perm.CREATE_INVITATIONS)
    if kind not in InvitationKind.values:
        raise InvalidInput(f"未知的邀请码类型: {kind}", code="invalid_kind")
    if acting.role == Role.CASHIER and kind != InvitationKind.STAFF:
        raise PermissionDenied("收银员只能生成自己的员工码")
    days = settings.SHEQUN["INVITATION_DEFAULT_DAYS"] if days is None else days
    if not 1 <= days <= MAX_INVITATION_DAYS:
        raise InvalidInput(f"有效期须在 1 到 {MAX_INVITATION_DAYS} 天之间", code="invalid_days")
    if theme and theme not in GroupTheme.values:
        raise InvalidInput(f"未知的群主题: {theme}", code="invalid_theme")
    if group is not None:
        store = group.store
    if store is None:
        raise InvalidInput("须指定门店或社群", code="missing_target")
    _require_store_in_scope(acting, store)
    if kind == InvitationKind.GROUP and group is None:
        raise InvalidInput("群码须指定社群", code="missing_group")
    with transaction.atomic():
        invitation = Invitation.objects.create(
            token=codes.new_token(),
            kind=kind,
            store=store,
            group=group,
            theme=theme if group is None else "",
            staff=acting.user if kind == InvitationKind.STAFF else None,
            created_by=acting.user,
            expires_at=timeutil.now() + timedelta(days=days),
        )
        record_audit(
            acting.user,
            "groups.invitation_created",
            target=invitation,
            scope_path=store.path,
            details={"kind": kind, "group": group.pk if group else None, "days": days},
        )
    return invitation


def invitation_code(invitation: Invitation) -> str:
    return codes.sign_invitation(invitation.token)


def revoke_invitation(*, acting: Staff, invitation: Invitation) -> Invitation:
    require_perm(acting, Perm.CREATE_INVITATIONS)
    if acting.role == Role.CASHIER and invitation.staff_id != acting.user_id:
        raise NotFound("邀请码不存在")
    with transaction.atomic():
        updated = Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(
            revoked_at=timeutil.now()
        )
        if not updated:
            raise Conflict("邀请码已作废", code="already_revoked")
        invitation.refresh_from_db()
        record_audit(
            acting.user,
            "groups.invitation_revoked",
            target=invitation,
            scope_path=invitation.store.path,
        )
    return invitation


def resolve_invitation(code: str) -> Invitation:
    """The live invitation behind a code; tampered, unknown, revoked and expired codes refused."""
    token = codes.unsign_invitation(code)
    invitation = (
        Invitation.objects.select_related("store", "group__store", "staff")
        .filter(token=token)
        .first()
    )
    if invitation is None:
        raise InvalidInput("邀请码无效", code="invalid_invitation")
    if invitation.revoked_at is not None:
        raise RuleViolation("该邀请码已作废, 请向门店索取新的二维码", code="invitation_revoked")
    if invitation.expires_at <= timeutil.now():
        raise RuleViolation("该邀请码已过期, 请向门店索取新的二维码", code="invitation_expired")
    return invitation


# --- joining and leaving -------------------------------------------------------------------
class _GroupFull(Exception):
    pass


@dataclass(frozen=True)
class JoinResult:
    membership: GroupMembership
    member: Member
    member_created: bool
    reward: RecruitmentReward | None

    @property
    def member_token(self) -> str:
        """A signed token the member's phone keeps, to leave the group later by themselves."""
        return codes.sign_member(self.member.pk)


def join_group(
    *,
    group: CustomerGroup,
    member: Member,
    channel: str,
    invited_by_staff: User | None = None,
    invited_by_member: Member | None = None,
    invitation: Invitation | None = None,
    reward_staff: User | None = None,
    role: str = MembershipRole.MEMBER,
    actor: User | None = None,
) -> tuple[GroupMembership, RecruitmentReward | None]:
    """Put ``member`` into ``group`` if it has room. ``reward_staff`` earns the recruitment
    reward when this is the member's first ever stay in the group."""
    if member.chain_id != group.store.chain_id:
        raise NotFound("社群不存在")
    if group.status != GroupStatus.ACTIVE:
        raise RuleViolation(f"「{group.name}」已关闭, 不再接受新成员", code="group_closed")
    try:
        with transaction.atomic():
            first_stay = not GroupMembership.objects.filter(group=group, member=member).exists()
            try:
                with transaction.atomic():
                    membership = GroupMembership.objects.create(
                        group=group,
                        member=member,
                        role=role,
                        join_channel=channel,
                        invited_by_staff=invited_by_staff,
                        invited_by_member=invited_by_member,
                        invitation=invitation,
                    )
            except IntegrityError:
                raise Conflict(f"已在「{group.name}」中", code="already_member") from None
            # Hot row last: capacity is enforced by this guarded UPDATE, never by a Python check.
            claimed = CustomerGroup.objects.filter(
                pk=group.pk, status=GroupStatus.ACTIVE, member_count__lt=F("capacity")
            ).update(member_count=F("member_count") + 1)
            if not claimed:
                raise _GroupFull
            ordinal = CustomerGroup.objects.values_list("member_count", flat=True).get(pk=group.pk)
            reward = None
            if reward_staff is not None and first_stay:
                try:  # one reward per (group, member) ever: a racing rejoin earns nothing
                    with transaction.atomic():
                        reward = RecruitmentReward.objects.create(
                            staff=reward_staff,
                            store=group.store,
                            group=group,
                            member=member,
                            membership=membership,
                            member_ordinal=ordinal,
                            amount_fen=recruitment_reward_fen(ordinal),
                        )
                        book_recruitment_reward(reward)  # the money, in the same transaction
                except IntegrityError:
                    reward = None
            record_audit(
                actor,
                "groups.member_joined",
                target=membership,
                scope_path=group.store.path,
                details={
                    "group": group.pk,
                    "member": member.pk,
                    "channel": channel,
                    "ordinal": ordinal,
                    "reward_fen": reward.amount_fen if reward else 0,
                },
            )
    except _GroupFull:
        status = CustomerGroup.objects.values_list("status", flat=True).get(pk=group.pk)
        if status != GroupStatus.ACTIVE:  # closed between our check and the guarded UPDATE
            raise RuleViolation(
                f"「{group.name}」已关闭, 不再接受新成员", code="group_closed"
            ) from None
        raise _group_full_error(group) from None
    group.member_count = ordinal
    return membership, reward


def _group_full_error(group: CustomerGroup) -> RuleViolation:
    sibling = sibling_with_room(group)
    if sibling is None:
        return RuleViolation(
            f"「{group.name}」已满({group.capacity}人), 本店暂无同主题且有空位的群",
            code="group_full",
        )
    return RuleViolation(
        f"「{group.name}」已满({group.capacity}人), 可加入同主题的「{sibling.name}」"
        f"(还有 {sibling.room} 个空位)",
        code="group_full",
        details={"suggested_group": {"id": sibling.pk, "name": sibling.name, "room": sibling.room}},
    )


def _groups_for_invitation(invitation: Invitation) -> list[CustomerGroup]:
    """The group a code points at, or for a store code the store's groups with room, fullest
    first (operators fill groups one after another)."""
    if invitation.group is not None:
        return [invitation.group]
    candidates = CustomerGroup.objects.filter(
        store=invitation.store, status=GroupStatus.ACTIVE, member_count__lt=F("capacity")
    ).select_related("store")
    if invitation.theme:
        candidates = candidates.filter(theme=invitation.theme)
    groups = list(candidates.order_by("-member_count", "id")[:STORE_CODE_TRIES])
    if not groups:
        raise RuleViolation("本店暂无可加入的社群, 请联系店员", code="no_group_with_room")
    return groups


def join_by_invitation(
    *,
    code: str,
    proof: PhoneProof,
    name: str = "",
    consents: dict[str, bool] | None = None,
    referrer_token: str | None = None,
) -> JoinResult:
    """A customer scans a QR code at the till or on a poster and joins the right group.

    ``proof`` shows the phone is theirs (the code texted to it, see ``members.prove_phone``):
    the join issues a member token and may book a cashier's reward, so a typed-in number alone
    gets neither. ``referrer_token`` is the member token of a member who shared the code.
    """
    invitation = resolve_invitation(code)
    if proof.chain_id != invitation.store.chain_id:
        raise InvalidInput("请先验证手机号", code="phone_not_proven")
    referrer = _referrer(referrer_token, invitation) if referrer_token else None
    groups = _groups_for_invitation(invitation)
    is_staff_code = invitation.kind == InvitationKind.STAFF
    if referrer is not None:
        channel = JoinChannel.MEMBER_REFERRAL
    elif is_staff_code:
        channel = JoinChannel.STAFF_INVITE
    else:
        channel = JoinChannel.STORE_QR
    with transaction.atomic():
        registered = find_or_register_member(
            store=invitation.store, phone=proof.phone, name=name, consents=consents
        )
        for index, group in enumerate(groups):
            try:
                membership, reward = join_group(
                    group=group,
                    member=registered.member,
                    channel=channel,
                    invited_by_staff=invitation.staff,
                    invited_by_member=referrer,
                    invitation=invitation,
                    reward_staff=invitation.staff if is_staff_code else None,
                )
                break
            except RuleViolation as exc:
                # A store code moves on when its group filled up meanwhile; a group code names
                # the sibling with room in its error instead.
                if exc.code != "group_full" or index == len(groups) - 1:
                    raise
    return JoinResult(
        membership=membership,
        member=registered.member,
        member_created=registered.created,
        reward=reward,
    )


def _referrer(token: str, invitation: Invitation) -> Member:
    member = Member.objects.filter(pk=codes.unsign_member(token)).first()
    if member is None or member.chain_id != invitation.store.chain_id:
        raise InvalidInput("推荐人凭证无效", code="invalid_referrer")
    return member


def add_member_by_staff(
    *, acting: Staff, group: CustomerGroup, phone: str, name: str = "", role: str = "member"
) -> JoinResult:
    """Staff add a customer they know (e.g. from the member system) into a group."""
    require_perm(acting, Perm.MANAGE_GROUPS)
    if role not in MembershipRole.values:
        raise InvalidInput(f"未知的群内角色: {role}", code="invalid_role")
    with transaction.atomic():
        registered = find_or_register_member(
            store=group.store, phone=phone, name=name, actor=acting.user
        )
        membership, reward = join_group(
            group=group,
            member=registered.member,
            channel=JoinChannel.STAFF_INVITE,
            invited_by_staff=acting.user,
            role=role,
            actor=acting.user,
        )
    return JoinResult(membership, registered.member, registered.created, reward)


def leave_group(
    *,
    membership: GroupMembership,
    reason: str = "",
    actor: User | None = None,
) -> GroupMembership:
    """Close a stay. The row stays (history); a later rejoin opens a new one."""
    reason = (reason or "")[:100]
    with transaction.atomic():
        left = GroupMembership.objects.filter(pk=membership.pk, left_at__isnull=True).update(
            left_at=timeutil.now(), left_reason=reason
        )
        if not left:
            raise Conflict("该成员已不在群中", code="not_a_member")
        CustomerGroup.objects.filter(pk=membership.group_id, member_count__gt=0).update(
            member_count=F("member_count") - 1
        )
        membership.refresh_from_db()
        record_audit(
            actor,
            "groups.member_left",
            target=membership,
            scope_path=membership.group.store.path,
            details={
                "group": membership.group_id,
                "member": membership.member_id,
                "reason": reason,
            },
        )
    return membership


def leave_group_by_member_token(*, token: str, group_id: int) -> GroupMembership:
    member_id = codes.unsign_member(token)
    membership = (
        GroupMembership.objects.filter(group_id=group_id, member_id=member_id, left_at__isnull=True)
        .select_related("group__store")
        .first()
    )
    if membership is None:
        raise NotFound("你不在该群中")
    return leave_group(membership=membership, reason="成员主动退群")


def remove_member(
    *, acting: Staff, membership: GroupMembership, reason: str = ""
) -> GroupMembership:
    require_perm(acting, Perm.MANAGE_GROUPS)
    return leave_group(membership=membership, reason=reason or "员工移出", actor=acting.user)


def set_membership_role(
    *, acting: Staff, membership: GroupMembership, role: str
) -> GroupMembership:
    require_perm(acting, Perm.MANAGE_GROUPS)
    if role not in MembershipRole.values:
        raise InvalidInput(f"未知的群内角色: {role}", code="invalid_role")
    if membership.left_at is not None:
        raise Conflict("该成员已不在群中", code="not_a_member")
    with transaction.atomic():
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        record_audit(
            acting.user,
            "groups.role_changed",
            target=membership,
            scope_path=membership.group.store.path,
            details={"from": old, "to": role},
        )
    return membership
