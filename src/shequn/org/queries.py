"""Reads of org data, always scoped to the acting staff member."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import NodeKind, OrgNode, Staff
from .roles import Perm
from .scoping import scoped


def visible_nodes(staff: Staff) -> QuerySet[OrgNode]:
    return scoped(OrgNode.objects.all(), staff)


def visible_stores(staff: Staff) -> QuerySet[OrgNode]:
    return visible_nodes(staff).filter(kind=NodeKind.STORE)


def visible_staff(staff: Staff) -> QuerySet[Staff]:
    """Managers see the staff of their subtree; everybody else sees only themselves."""
    qs = Staff.objects.select_related("user", "node")
    if staff.role in {"hq_admin", "region_manager", "store_manager"}:
        return scoped(qs, staff, Perm.MANAGE_STAFF)
    return qs.filter(pk=staff.pk)
