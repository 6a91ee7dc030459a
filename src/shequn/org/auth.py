"""API authentication: the console's session (with CSRF) or a bearer token for API clients."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.security import APIKeyCookie, HttpBearer

from shequn.core import timeutil

from .actions import hash_token
from .models import ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenAuth(HttpBearer):
    openapi_description = "API token: `Authorization: Bearer sq_...` (发放: shequn token create)"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        try:
            api_token = ApiToken.objects.select_related("user").get(
                key_hash=hash_token(token), revoked_at__isnull=True
            )
        except ApiToken.DoesNotExist:
            return None
        if not api_token.user.is_active:
            return None
        now = timeutil.now()
        # Record use at most once a minute: a write per GET would serialize readers on SQLite.
        if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        request.user = api_token.user
        return api_token.user


class SessionAuth(APIKeyCookie):
    """Django's session cookie; CSRF is checked for unsafe methods (ninja does it for cookies)."""

    param_name = "sessionid"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return None


API_AUTH = [TokenAuth(), SessionAuth()]


def docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """/api/docs and /api/openapi.json: for everyone while ``SHEQUN_API_DOCS_PUBLIC`` is on
    (the default; production settings turn it off), else only for staff: the console's
    session or an API token. Anyone else gets the API's 404, as if there were no docs."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.SHEQUN_API_DOCS_PUBLIC or _is_staff(request):
            return view(request, *args, **kwargs)
        return JsonResponse(
            {"code": "not_found", "message": "对象不存在"},
            status=404,
            json_dumps_params={"ensure_ascii": False},
        )

    return wrapper


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        user = TokenAuth()(request)
    return user is not None and user.is_authenticated and hasattr(user, "staff")
