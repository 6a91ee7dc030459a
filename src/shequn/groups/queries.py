"""Reads of group data, scoped to the acting staff member."""

from __future__ import annotations

from django.db.models import Count, F, QuerySet, Sum, Value

from shequn.org.models import OrgNode, Staff
from shequn.org.queries import visible_stores
from shequn.org.roles import Perm, Role, has_perm
from shequn.org.scoping import get_scoped, scoped

from .models import (
    CustomerGroup,
    GroupMembership,
    GroupStatus,
    Invitation,
    RecruitmentReward,
)


def visible_groups(staff: Staff) -> QuerySet[CustomerGroup]:
    return scoped(CustomerGroup.objects.select_related("store", "owner"), staff, Perm.VIEW_GROUPS)


def stores_with_groups(staff: Staff) -> QuerySet[OrgNode]:
    """The stores in scope, each with its number of groups and group members — counted only
    for those who may see groups (a supplier's account sees the stores, not their customers)."""
    if not has_perm(staff.role, Perm.VIEW_GROUPS):
        return visible_stores(staff).annotate(group_count=Value(0), member_total=Value(0))
    return visible_stores(staff).annotate(
        group_count=Count("groups", distinct=True), member_total=Sum("groups__member_count")
    )


def access_group(staff: Staff, group_id: object) -> CustomerGroup:
    return get_scoped(
        CustomerGroup.objects.select_related("store", "owner"), staff, group_id, Perm.VIEW_GROUPS
    )


def visible_memberships(staff: Staff) -> QuerySet[GroupMembership]:
    return scoped(
        GroupMembership.objects.select_related("member", "group", "invited_by_staff"),
        staff,
        Perm.VIEW_MEMBERS,
    )


def access_membership(staff: Staff, membership_id: object) -> GroupMembership:
    return get_scoped(
        GroupMembership.objects.select_related("member", "group__store"),
        staff,
        membership_id,
        Perm.VIEW_MEMBERS,
    )


def visible_invitations(staff: Staff) -> QuerySet[Invitation]:
    """Cashiers see only their own codes; others see every code in their scope."""
    qs = scoped(
        Invitation.objects.select_related("store", "group", "staff__staff").annotate(
            uses=Count("joins")  # derived, so a join never locks the invitation row
        ),
        staff,
        Perm.CREATE_INVITATIONS,
    )
    if staff.role == Role.CASHIER:
        qs = qs.filter(staff=staff.user)
    return qs


def access_invitation(staff: Staff, invitation_id: object) -> Invitation:
    return get_scoped(visible_invitations(staff), staff, invitation_id)


def visible_rewards(staff: Staff) -> QuerySet[RecruitmentReward]:
    """Everybody sees their own rewards; reward viewers see their whole scope."""
    qs = RecruitmentReward.objects.select_related("staff__staff", "group", "store")
    if has_perm(staff.role, Perm.VIEW_REWARDS):
        return scoped(qs, staff)
    return scoped(qs, staff).filter(staff=staff.user)


def sibling_with_room(group: CustomerGroup) -> CustomerGroup | None:
    """Another active group of the same store and theme that still has room (most room first)."""
    return (
        CustomerGroup.objects.filter(
            store_id=group.store_id,
            theme=group.theme,
            status=GroupStatus.ACTIVE,
            member_count__lt=F("capacity"),
        )
        .exclude(pk=group.pk)
        .order_by(F("member_count") - F("capacity"), "id")
        .first()
    )
