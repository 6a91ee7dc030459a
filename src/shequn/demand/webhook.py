"""The signed group-message webhook, ``POST /webhooks/demand/messages``: a bridge that sees the
chain's groups delivers messages as they happen instead of exporting files for
``shequn messages import``; the rows are the same, stored by the same code.

Body: ``{"messages": [record, …]}`` with at most 1,000 generic records (``ingest.generic_record``:
``msgid``, ``chat_id`` or ``group_id``, ``sender``, ``time``, ``type``, ``content``, and an
optional ``platform``, default ``webhook``) in at most 1 MiB. A record may claim only the
platforms ``MESSAGE_WEBHOOK["PLATFORMS"]`` names (``webhook`` unless configured):
``(platform, msgid)`` is what makes a message one, so a sender free to name any platform could
occupy the keys of messages a file import has yet to bring.

The signature is the authentication (no session, no CSRF token)::

    X-Shequn-Timestamp: unix seconds, within ±300 s of our clock
    X-Shequn-Nonce:     8–64 visible ASCII characters, never used before
    X-Shequn-Signature: hex HMAC-SHA256(secret, f"{timestamp}\\n{nonce}\\n" + raw body bytes)

Answers: 503 not configured (or a secret shorter than 32 characters), 413 too large, 403 signature / window / nonce refused, 400 not
readable — none of them changes anything, not even the nonce. 200 stored, with
``{"stored", "duplicates", "bad": [{"index", "reason"}]}``: bad records are named by their
index and skipped, a message already stored (same platform and msgid) adds nothing, so a sender
may retry a whole delivery with a new nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shequn.core import timeutil
from shequn.core.models import WebhookNonce
from shequn.org.models import NodeKind, OrgNode

from .ingest import BadRecord, ImportReport, Incoming, _Bad, generic_record, store_batch

logger = logging.getLogger("shequn.demand")

SOURCE = "demand-messages"  # this webhook's name in the nonce table
PLATFORM = "webhook"
WINDOW_S = 300
# A nonce accepted at our time s carries a timestamp t with |s - t| ≤ 300, and t passes the
# window until t + 300 ≤ s + 600: kept 10 minutes, it is refused for as long as it could pass.
NONCE_KEPT = timedelta(seconds=2 * WINDOW_S)
MAX_BODY = 1024 * 1024
MAX_MESSAGES = 1000
MIN_SECRET = 32  # characters: an HMAC key a sender can be trusted to have made at random

TIMESTAMP = re.compile(r"[0-9]{1,12}")
NONCE = re.compile(r"[\x21-\x7e]{8,64}")
SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
PLATFORM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,15}")


class Refused(Exception):
    """The delivery is answered with an error and nothing is written."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def signing_string(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """What a sender puts in ``X-Shequn-Signature`` (also used by the tests)."""
    message = signing_string(timestamp, nonce, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _error(status: int, code: str, message: str) -> JsonResponse:
    """The project's one error shape, as the API answers it."""
    return JsonResponse(
        {"code": code, "message": message}, status=status, json_dumps_params={"ensure_ascii": False}
    )


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """Check the signature and the window; returns the nonce, not yet claimed."""
    timestamp = headers.get("X-Shequn-Timestamp", "")
    nonce = headers.get("X-Shequn-Nonce", "")
    signature = headers.get("X-Shequn-Signature", "")
    if not (timestamp and nonce and signature):
        raise Refused(403, "signature_missing", "缺少签名头 X-Shequn-Timestamp / Nonce / Signature")
    if not TIMESTAMP.fullmatch(timestamp):
        raise Refused(403, "bad_timestamp", "X-Shequn-Timestamp 须为 Unix 秒数")
    if not NONCE.fullmatch(nonce):
        raise Refused(403, "bad_nonce", "X-Shequn-Nonce 须为 8-64 个可见 ASCII 字符")
    if not SIGNATURE.fullmatch(signature):
        raise Refused(403, "bad_signature", "签名无效")
    expected = sign(secret, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise Refused(403, "bad_signature", "签名无效")
    if abs(now - int(timestamp)) > WINDOW_S:
        raise Refused(403, "stale_timestamp", "时间戳不在允许的 ±300 秒内, 请检查发送方时钟")
    return nonce


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(name)


def parse_messages(body: bytes) -> list[Any]:
    """The ``messages`` list of a UTF-8 JSON object; its items are read one by one later."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise Refused(400, "invalid_encoding", "请求体须为 UTF-8 编码") from None
    except ValueError:  # JSONDecodeError, NaN/Infinity, too deep
        raise Refused(400, "invalid_json", "请求体不是有效的 JSON") from None
    except RecursionError:
        raise Refused(400, "invalid_json", "请求体不是有效的 JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise Refused(400, "invalid_shape", '请求体须为 {"messages": [...]} 形式的 JSON 对象')
    messages: list[Any] = document["messages"]
    if len(messages) > MAX_MESSAGES:
        raise Refused(413, "too_many_messages", f"一次最多 {MAX_MESSAGES} 条消息")
    return messages


def allowed_platforms() -> frozenset[str]:
    names = str(settings.MESSAGE_WEBHOOK.get("PLATFORMS", PLATFORM)).split(",")
    return frozenset(n.strip() for n in names if PLATFORM_NAME.fullmatch(n.strip())) | {PLATFORM}


def read_record(index: int, record: Any, platforms: frozenset[str]) -> Incoming | BadRecord:
    """One generic record, read as the file importer reads it; ``line`` is its index."""
    try:
        if not isinstance(record, dict):
            raise _Bad("每条消息须为一个 JSON 对象")
        platform = record.get("platform", PLATFORM)
        if not isinstance(platform, str) or platform not in platforms:
            raise _Bad(f"platform 须为以下之一: {', '.join(sorted(platforms))}")
        return generic_record(index, record, platform)
    except _Bad as bad:
        return BadRecord(index, str(bad))


def _prune(now_moment: datetime) -> None:
    """Forget nonces that can no longer pass the window. After commit, in its own statement:
    housekeeping must neither hold up a delivery nor turn a stored one into an error."""
    try:
        WebhookNonce.objects.filter(source=SOURCE, created_at__lt=now_moment - NONCE_KEPT).delete()
    except DatabaseError:
        logger.exception("message webhook: pruning nonces failed")


@csrf_exempt
@require_POST
def message_webhook(request: HttpRequest) -> HttpResponse:
    config = settings.MESSAGE_WEBHOOK
    chain = None
    if config["SECRET"] and config["CHAIN_CODE"]:
        chain = OrgNode.objects.filter(code=config["CHAIN_CODE"], kind=NodeKind.HQ).first()
    if chain is None:
        return _error(503, "not_configured", "群消息 Webhook 未配置")
    if len(config["SECRET"]) < MIN_SECRET:
        return _error(
            503, "weak_secret", f"群消息 Webhook 的密钥过短 (至少 {MIN_SECRET} 个字符), 未启用"
        )
    declared = str(request.META.get("CONTENT_LENGTH") or "0")
    try:
        if declared.isdecimal() and int(declared) > MAX_BODY:  # refused before it is read
            raise RequestDataTooBig
        raw = request.body  # the bytes as received: the signature covers exactly these
        if len(raw) > MAX_BODY:
            raise RequestDataTooBig
    except RequestDataTooBig:
        return _error(413, "payload_too_large", "请求体过大 (最多 1 MiB)")
    try:
        nonce = verify(config["SECRET"], request.headers, raw, time.time())
        messages = parse_messages(raw)
    except Refused as refused:
        logger.warning("message webhook refused: %s %s", refused.code, refused.message)
        return _error(refused.status, refused.code, refused.message)

    report = ImportReport(read=len(messages))
    readable: list[Incoming] = []
    platforms = allowed_platforms()
    for index, record in enumerate(messages):
        read = read_record(index, record, platforms)
        if isinstance(read, BadRecord):
            report.bad.append(read)
        else:
            readable.append(read)
    now_moment = timeutil.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                WebhookNonce.objects.create(source=SOURCE, nonce=nonce, created_at=now_moment)
        except IntegrityError:
            logger.warning("message webhook refused: nonce %s replayed", nonce)
            return _error(403, "replayed_nonce", "该 X-Shequn-Nonce 已使用过, 疑似重放")
        if readable:
            store_batch(chain, readable, report)
    _prune(now_moment)
    bad = sorted(report.bad, key=lambda b: b.line)
    return JsonResponse(
        {
            "stored": report.imported,
            "duplicates": report.duplicates,
            "bad": [{"index": b.line, "reason": b.reason} for b in bad],
        },
        json_dumps_params={"ensure_ascii": False},
    )
