from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .context import RequestContext, reset_context, set_context


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR only: X-Forwarded-For is spoofable unless a trusted proxy rewrites it."""
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Records the caller's address and channel for the audit log of this request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith("/api/") else "console"
        token = set_context(
            RequestContext(
                ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:200],
                channel=channel,
            )
        )
        try:
            return self.get_response(request)
        finally:
            reset_context(token)
