"""The one helper every action uses to write the audit log, and the record of personal data
shown unmasked (``note_disclosure``): who saw whose data, gathered per request into one event."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
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
    return _append(
        actor,
        action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        scope_path=scope_path,
        details=details or {},
    )


def _append(
    actor: User | AnonymousUser | None,
    action: str,
    *,
    target_type: str,
    target_id: str,
    scope_path: str,
    details: dict[str, Any],
) -> AuditEvent:
    ctx = current_context()
    user = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=user,
        actor_label=user.get_username() if user is not None else "",
        action=action,
        target_type=target_type,
        target_id=target_id,
        scope_path=scope_path,
        ip=ctx.ip,
        channel=ctx.channel,
        details=details,
    )


# --- disclosures: personal data shown unmasked ----------------------------------------------------
MAX_LISTED = 1000  # ids named in one event; ``count`` says how many there were


class Disclosures:
    """Personal data shown unmasked while collecting (one request, one export): the targets'
    ids by actor, action, scope and target type, so a page of 200 full phone numbers is one
    audit event naming 200 members, not 200 events."""

    def __init__(self) -> None:
        # (actor, action, scope path, target type) → target ids, in the order first shown
        self.shown: dict[tuple[User, str, str, str], dict[str, None]] = {}

    def note(self, actor: User, action: str, scope_path: str, target: models.Model) -> None:
        key = (actor, action, scope_path, target._meta.label_lower)
        self.shown.setdefault(key, {})[str(target.pk)] = None

    def ids(self, action: str) -> list[str]:
        """Every target id noted under ``action``, in the order first shown."""
        found: dict[str, None] = {}
        for (_, noted, _, _), ids in self.shown.items():
            if noted == action:
                found.update(ids)
        return list(found)

    def record(self, where: dict[str, Any] | None = None) -> None:
        """Write one audit event per actor, action, scope and target type noted, then forget
        them. ``where``: what the events say about how (the view, the filters)."""
        for (actor, action, scope_path, target_type), noted in self.shown.items():
            ids = list(noted)
            _append(
                actor,
                action,
                target_type=target_type,
                target_id=ids[0] if len(ids) == 1 else "",
                scope_path=scope_path,
                details={**(where or {}), "ids": ids[:MAX_LISTED], "count": len(ids)},
            )
        self.shown.clear()


_collecting: contextvars.ContextVar[Disclosures | None] = contextvars.ContextVar(
    "shequn_disclosures", default=None
)


@contextmanager
def collecting_disclosures() -> Iterator[Disclosures]:
    """Gather the disclosures made inside the block (a request: ``RequestContextMiddleware``;
    an export, which names them in its own event) instead of writing one event for each."""
    collected = Disclosures()
    token = _collecting.set(collected)
    try:
        yield collected
    finally:
        _collecting.reset(token)


def note_disclosure(actor: User, action: str, *, scope_path: str, target: models.Model) -> None:
    """``actor`` was shown ``target``'s personal data unmasked (PIPL: who saw what is logged).
    Inside ``collecting_disclosures``: noted for its one event; outside it: written at once."""
    collected = _collecting.get()
    if collected is not None:
        collected.note(actor, action, scope_path, target)
        return
    alone = Disclosures()
    alone.note(actor, action, scope_path, target)
    alone.record()
