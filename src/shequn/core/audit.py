"""The one helper every action uses to write the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from .context import current_context
from .models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def record_audit(
    actor: User | AnonymousUser | None,
    action: str,
    *,
    target: models.Model | None = None,
    scope_path: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event inside the caller's transaction (rolled back with it)."""
    ctx = current_context()
    user = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=user,
        actor_label=user.get_username() if user is not None else "",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        scope_path=scope_path,
        ip=ctx.ip,
        channel=ctx.channel,
        details=details or {},
    )
