"""Payment platform callbacks. The signature is the authentication: no session, no CSRF token.

Answers follow WeChat Pay's rules: 204 when the notification is taken (also for a duplicate);
4xx with ``{"code": "FAIL", "message": ...}`` when it is refused (nothing changed) — a body over
1 MiB too (413, refused before it is read; a real notification is a few KB); 5xx with the
same body when we failed, so the platform retries. Never 200 with FAIL.
"""

from __future__ import annotations

import logging
import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shequn.core.bodies import MAX_CALLBACK_BODY, read_body
from shequn.core.errors import DomainError
from shequn.integrations.wechatpay.config import wechatpay_config
from shequn.integrations.wechatpay.notifications import NotificationRejected, verify_notification

from .actions import (
    REFUND_EVENTS,
    PaymentReport,
    RefundReport,
    bounded_id,
    record_payment,
    record_refund_result,
)

logger = logging.getLogger("shequn.payments")


def _fail(status: int, message: str) -> JsonResponse:
    return JsonResponse(
        {"code": "FAIL", "message": message},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )


@csrf_exempt
@require_POST
def wechatpay_notify(request: HttpRequest) -> HttpResponse:
    raw = read_body(request)  # the bytes as received: the signature covers exactly these
    if raw is None:
        logger.warning("wechatpay notification refused: body over %d bytes", MAX_CALLBACK_BODY)
        return _fail(413, "请求体过大")
    config = wechatpay_config()
    try:
        notification = verify_notification(
            request.headers,
            raw,
            platform_keys=config.platform_keys,
            apiv3_key=config.apiv3_key,
            now=time.time(),
        )
    except NotificationRejected as exc:
        logger.warning("wechatpay notification refused: %s", exc.reason)
        return _fail(401 if exc.reason != "bad_envelope" else 400, exc.message)
    resource = notification.resource
    if not isinstance(resource, dict):
        return _fail(400, "通知内容格式错误")
    if notification.event_type in REFUND_EVENTS:
        return _refund(notification.id, notification.event_type, resource, config.mchid)
    if notification.event_type != "TRANSACTION.SUCCESS":
        logger.warning("wechatpay notification %s not handled", notification.event_type)
        return _fail(501, f"暂不处理 {notification.event_type}")  # 5xx: WeChat retries later
    if resource.get("trade_state") != "SUCCESS":
        return HttpResponse(status=204)
    try:
        report = PaymentReport.from_wechat(resource, notification_id=notification.id)
        record_payment(report, expected_mchid=config.mchid, expected_appid=config.appid)
    except (KeyError, TypeError, ValueError, AttributeError):
        return _fail(400, "通知内容缺少必要字段")
    except DomainError as exc:
        logger.error("wechatpay notification refused: %s (%s)", exc.message, exc.code)
        return _fail(400, exc.message)
    return HttpResponse(status=204)


def _refund(
    notification_id: str, event_type: str, resource: dict[str, object], mchid: str
) -> HttpResponse:
    try:
        amount = resource["amount"]
        if not isinstance(amount, dict):
            raise TypeError("amount")
        report = RefundReport(
            notification_id=bounded_id(notification_id, 64),
            event_type=event_type,
            out_refund_no=bounded_id(resource["out_refund_no"], 32),
            refund_fen=int(amount["refund"]),
            mchid=str(resource["mchid"]),
        )
        record_refund_result(report, expected_mchid=mchid)
    except (KeyError, TypeError, ValueError):
        return _fail(400, "通知内容缺少必要字段")
    except DomainError as exc:
        logger.error("wechatpay refund notification refused: %s (%s)", exc.message, exc.code)
        return _fail(400, exc.message)
    return HttpResponse(status=204)
