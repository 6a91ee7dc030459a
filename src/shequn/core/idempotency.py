"""Idempotency-Key for API writes (IETF draft-ietf-httpapi-idempotency-key-header, Stripe's rules).

- same principal + key + same request  → the stored status and body, with ``Idempotent-Replayed``
- same principal + key + other request → 422 ``idempotency_key_reused``
- concurrent duplicates → the key row is claimed inside the write's own transaction, so the
  second request waits on the unique index and then replays the first one's response.
- 5xx responses are not stored (the transaction rolls back and the client may retry).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import member_tokens, timeutil
from .errors import DomainError
from .middleware import client_ip
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        {"code": code, "message": message}, status=status, json_dumps_params={"ensure_ascii": False}
    )


def request_principal(request: HttpRequest) -> str:
    """Keys are per caller: a key never reaches another client's stored response. A member is
    known by the member inside their token (a refreshed token keeps its keys; another member
    sending the same key gets their own result); an invalid token gets a key space of its own
    and is refused by the endpoint anyway."""
    member_token = request.headers.get(member_tokens.HEADER, "")
    if member_token:
        try:
            return f"member:{member_tokens.unsign_member(member_token)}"
        except DomainError:
            return "member-token:" + hashlib.sha256(member_token.encode()).hexdigest()[:40]
    auth = request.headers.get("Authorization", "")
    if auth:
        return "token:" + hashlib.sha256(auth.encode()).hexdigest()[:40]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    # Anonymous callers (the public join page) are told apart by address, so one client's key
    # can never replay another client's stored response.
    return f"anonymous:{client_ip(request) or '-'}"


def request_fingerprint(request: HttpRequest, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\0" + request.get_full_path().encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if (
            key is None
            or request.method not in WRITE_METHODS
            or not request.path.startswith("/api/")
        ):
            return self.get_response(request)
        if not KEY_PATTERN.match(key):
            return error_response(
                400, "invalid_idempotency_key", "Idempotency-Key 须为 1-255 个可见 ASCII 字符"
            )
        try:
            body = request.body
        except RequestDataTooBig:
            return error_response(413, "payload_too_large", "请求体过大")
        return self._run_once(request, key, body)

    def _run_once(self, request: HttpRequest, key: str, body: bytes) -> HttpResponse:
        principal = request_principal(request)
        fingerprint = request_fingerprint(request, body)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        principal=principal,
                        key=key,
                        method=request.method or "",
                        path=request.path[:255],
                        fingerprint=fingerprint,
                    )
            except IntegrityError:
                return self._replay(principal, key, fingerprint)
            response = self.get_response(request)
            if response.status_code >= 500 or getattr(response, "streaming", False):
                transaction.set_rollback(True)
                return response
            record.status_code = response.status_code
            record.content_type = response.get("Content-Type", "")
            record.response_body = response.content.decode("utf-8", errors="replace")
            record.save(update_fields=["status_code", "content_type", "response_body"])
        response["Idempotent-Replayed"] = "false"
        return response

    @staticmethod
    def _replay(principal: str, key: str, fingerprint: str) -> HttpResponse:
        record = IdempotencyRecord.objects.get(principal=principal, key=key)
        if record.fingerprint != fingerprint:
            return error_response(
                422,
                "idempotency_key_reused",
                "该 Idempotency-Key 已用于另一个请求, 请为新请求使用新的键",
            )
        if record.status_code is None:  # only reachable if a writer died mid-flight
            return error_response(409, "idempotency_in_progress", "相同请求正在处理, 请稍后重试")
        response = HttpResponse(
            record.response_body, status=record.status_code, content_type=record.content_type
        )
        response["Idempotent-Replayed"] = "true"
        return response


def prune_idempotency_records() -> int:
    """Delete records past the retention window (never sooner than 24 h). Returns how many."""
    hours = max(24, int(settings.SHEQUN["IDEMPOTENCY_RETENTION_HOURS"]))
    cutoff = timeutil.now() - timedelta(hours=hours)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
