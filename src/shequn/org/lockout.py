"""Staff login throttling, on django-axes (the settings are in ``settings/base.py``).

Every failed password (the console's login form: ``authenticate`` is given the request) is
counted in axes' table, per account and per address. When an account reaches
``SHEQUN_LOGIN_FAILURE_LIMIT`` failures, or an address ``SHEQUN_LOGIN_IP_FAILURE_LIMIT``
(whatever usernames it tried), logins of that account or from that address are refused —
the right password too — until the cool-off has passed since the last counted failure: a 429
with the console's login page saying so, or the API's error shape for an ``/api/`` path. The
attempt that locks writes one audit event (``org.login_locked``); refused attempts during the
lockout write nothing and do not extend it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from shequn.core.audit import record_audit

from .models import Staff

logger = logging.getLogger("shequn.auth")


class LoginAttempts(AxesDatabaseHandler):
    """Axes' database handler with a limit per address of its own.

    Axes compares one number, the failures, with one limit (``AXES_FAILURE_LIMIT``, the
    account's). The address's count is given in the account's terms — scaled by the ratio of
    the two limits, rounded down — so it reaches that limit exactly when it reaches its own.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        by_account, by_address = (
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        request.shequn_login_failures = {  # type: ignore[attr-defined]
            "account": by_account,
            "address": by_address,
        }
        account_limit = int(settings.AXES_FAILURE_LIMIT)
        address_limit = int(settings.SHEQUN_LOGIN_IP_FAILURE_LIMIT)
        return max(by_account, by_address * account_limit // address_limit)

    def reset_user_attempts(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> int:
        """After a successful login, forget that account's failures from that address — not
        every failure from the address: one valid account must not reset an address that is
        trying the passwords of others."""
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(
            username=username,
            ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
        ).delete()
        return int(count)


def cooloff_minutes(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else 0


def lockout_message(request: HttpRequest | None = None) -> str:
    return (
        f"登录失败次数过多, 该账号或当前网络已被暂时锁定, "
        f"请 {cooloff_minutes(request)} 分钟后再试。如忘记密码, 请联系上级管理员重置。"
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """What a refused login gets (axes' middleware calls this): 429, with ``Retry-After``."""
    message = lockout_message(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"code": "login_locked", "message": message},
            status=429,
            json_dumps_params={"ensure_ascii": False},
        )
    else:
        context = {"locked_message": message, "next": request.POST.get("next", "")}
        response = render(request, "console/login.html", context, status=429)
    cool_off = get_cool_off(request)
    if cool_off:
        response["Retry-After"] = str(math.ceil(cool_off.total_seconds()))
    return response


@receiver(user_locked_out)
def audit_lockout(
    sender: object, request: HttpRequest, username: str | None, ip_address: str | None, **_: Any
) -> None:
    """One audit event for the attempt that locks. Axes sends this signal again for every
    attempt refused during the lockout; those were not counted (``axes_failures_since_start``
    is left unset) and are not audited — an attacker knocking must not fill the audit log."""
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    failures = getattr(request, "shequn_login_failures", {})
    staff = (
        Staff.objects.select_related("node").filter(user__username=username).first()
        if username
        else None
    )
    logger.warning(
        "login locked: username=%r address=%s failures=%s", username, ip_address, failures
    )
    record_audit(
        None,
        "org.login_locked",
        target=staff,
        scope_path=staff.node.path if staff is not None else "",
        details={
            "username": (username or "")[:150],
            "ip": ip_address or "",
            "account_failures": failures.get("account", 0),
            "address_failures": failures.get("address", 0),
            "cooloff_minutes": cooloff_minutes(request),
        },
    )
