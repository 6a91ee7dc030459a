from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from shequn.org.models import Staff
from shequn.org.roles import ROLE_PERMS


def console_context(request: HttpRequest) -> dict[str, Any]:
    """The acting staff member and their permissions, for the navigation bar."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    staff = Staff.objects.select_related("node").filter(user=user).first()
    if staff is None:
        return {}
    return {"staff": staff, "perms_": {p.value for p in ROLE_PERMS.get(staff.role, ())}}
