from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .audit import collecting_disclosures
from .context import RequestContext, reset_context, set_context


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, for audit, throttles, login lockout and WeChat's H5 pay. Behind a
    reverse proxy, the header it sets and the operator names (``SHEQUN_CLIENT_IP_HEADER``, e.g.
    ``HTTP_X_REAL_IP``); else the socket's peer. A client's own X-Forwarded-For is never read:
    anyone can write it."""
    header = settings.SHEQUN_CLIENT_IP_HEADER
    forwarded = str(request.META.get(header, "")).split(",")[0].strip() if header else ""
    return forwarded or request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Records the caller's address and channel for the audit log of this request, and writes
    what the request showed unmasked (full phone numbers) as one audit event once the answer is
    ready: if that write fails, the answer is a 500, never the data unrecorded."""

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
            with collecting_disclosures() as disclosures:
                response = self.get_response(request)
                disclosures.record(where=_where(request))
            return response
        finally:
            reset_context(token)


def _where(request: HttpRequest) -> dict[str, object]:
    """How a request's disclosures came about: the view, the path and the filters (its query)."""
    match = request.resolver_match
    return {
        "view": (match.view_name if match else "")[:100],
        "method": request.method,
        "path": request.path[:200],
        # The raw query, cut: parsing it could raise (over 1,000 parameters) after the answer.
        "query": request.META.get("QUERY_STRING", "")[:500],
    }
