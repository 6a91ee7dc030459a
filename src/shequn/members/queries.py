"""Reads of member data, scoped to the acting staff member; phones masked unless permitted."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from shequn.core.audit import note_disclosure
from shequn.core.phones import mask_phone, national_digits
from shequn.org.models import Staff
from shequn.org.roles import Perm, has_perm
from shequn.org.scoping import get_scoped, scoped

from .models import ChannelIdentity, IdentityChannel, Member

PHONES_VIEWED = "members.phones_viewed"  # the audit action of a full phone shown


def visible_members(staff: Staff) -> QuerySet[Member]:
    return scoped(Member.objects.select_related("home_store"), staff, Perm.VIEW_MEMBERS)


def access_member(staff: Staff, member_id: object) -> Member:
    return get_scoped(
        Member.objects.select_related("home_store"), staff, member_id, Perm.VIEW_MEMBERS
    )


def can_see_pii(staff: Staff) -> bool:
    return has_perm(staff.role, Perm.VIEW_PII)


def phone_for(staff: Staff, member: Member) -> str:
    """What this staff member may see of the phone: full digits or ``138****1234``. Full digits
    are a disclosure in the audit log (one event per request or export, not per phone)."""
    if not can_see_pii(staff):
        return mask_phone(member.phone)
    note_disclosure(staff.user, PHONES_VIEWED, scope_path=staff.node.path, target=member)
    return national_digits(member.phone)


def members_by_wecom_id(chain_id: int, external_userids: Iterable[str]) -> dict[str, int]:
    """WeCom external userid → member id, for the chain's members who have one (how chat
    records and group callbacks name customers)."""
    return dict(
        ChannelIdentity.objects.filter(
            chain_id=chain_id,
            channel=IdentityChannel.WECOM_EXTERNAL_USERID,
            value__in=list(external_userids),
        ).values_list("value", "member_id")
    )
