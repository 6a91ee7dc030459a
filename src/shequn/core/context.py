"""Who is acting and from where, for the audit log, without threading `request` into actions."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    user_agent: str = ""
    channel: str = "system"  # api / console / cli / system


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "shequn_request_context",
    default=RequestContext(),  # noqa: B039 - frozen dataclass, immutable
)


def current_context() -> RequestContext:
    return _current.get()


def set_context(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def reset_context(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)
