"""The one place that decides what an acting staff member may see.

Every read of scoped data goes through `scoped()` (reads in ``queries.py``) or `access_node()`.
A model is "scoped" when it defines ``scope_q(path) -> Q``: the condition under which a row
belongs to the org subtree rooted at ``path``. A user sees their node and its subtree, never a
sibling's. Objects outside the scope are reported as *not found*, never as forbidden, so ids
cannot be probed.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, Q, QuerySet

from shequn.core.errors import NotAuthenticated, NotFound, PermissionDenied

from .models import OrgNode, Staff
from .roles import Perm, has_perm

M = TypeVar("M", bound=Model)


class ScopedModel(Protocol):
    @classmethod
    def scope_q(cls, path: str) -> Q: ...


def acting_staff(user: User | AnonymousUser | None) -> Staff:
    """The staff profile behind a logged-in user, or 401/403."""
    if user is None or not user.is_authenticated:
        raise NotAuthenticated("请先登录")
    if not user.is_active:
        raise NotAuthenticated("账号已停用")
    try:
        staff: Staff = user.staff
    except Staff.DoesNotExist:
        raise PermissionDenied("该账号不是员工账号") from None
    return staff


def require_perm(staff: Staff, perm: Perm) -> None:
    if not has_perm(staff.role, perm):
        raise PermissionDenied(f"当前角色({staff.get_role_display()})无此权限", code="forbidden")


def scoped(qs: QuerySet[M], staff: Staff, perm: Perm | None = None) -> QuerySet[M]:
    """``qs`` limited to the rows under ``staff``'s node; empty without ``perm``."""
    scope_q = getattr(qs.model, "scope_q", None)
    if scope_q is None:
        raise TypeError(f"{qs.model.__name__} has no scope_q(); it cannot be read through scoping")
    if perm is not None and not has_perm(staff.role, perm):
        return qs.none()
    return qs.filter(scope_q(staff.node.path))


def get_scoped(qs: QuerySet[M], staff: Staff, pk: object, perm: Perm | None = None) -> M:
    """One row by id within the scope, else NotFound (same answer for 'missing' and 'foreign')."""
    try:
        return scoped(qs, staff, perm).get(pk=pk)
    except (ObjectDoesNotExist, ValueError, TypeError, OverflowError):  # 25 digits: not found
        raise NotFound(f"{qs.model._meta.verbose_name}不存在") from None


def access_node(staff: Staff, node_id: object) -> OrgNode:
    return get_scoped(OrgNode.objects.all(), staff, node_id)


def within_node(qs: QuerySet[M], staff: Staff, node_id: object, via: str = "store") -> QuerySet[M]:
    """A list filter "only under this node": ``via`` is the row's org-node field. A node outside
    the caller's scope is a 404, never an empty list (ids cannot be probed)."""
    return qs.filter(**{f"{via}__path__startswith": access_node(staff, node_id).path})
