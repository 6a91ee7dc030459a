"""A 20 MB body to the signed callbacks is refused in each callback's own answer shape — WeChat
Pay's JSON ``{"code": "FAIL", "message": ...}``, WeCom's plain text — with 413, never Django's
HTML error page, and nothing is written; a real-sized delivery still goes through."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from shequn.core.models import AuditEvent
from shequn.groups.models import GroupChangeEvent, GroupMembership
from shequn.orders.models import OrderStatus, Payment, PaymentNotification
from tests.conftest import Chain, FakeWechatPay
from tests.groups.test_wecom_callback import CORP, KEYS, URL, deliver, event
from tests.orders.test_payment_notifications import new_order

pytestmark = pytest.mark.django_db

TWENTY_MB = 20 * 1024 * 1024


def test_wechatpay_notify_refuses_20_mb_with_its_json_shape(
    chain: Chain, wechatpay: FakeWechatPay
) -> None:
    order = new_order(chain)
    signed = wechatpay.notification(order)
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed.headers.items()}
    audit_before = AuditEvent.objects.count()
    answer = Client().post(
        "/webhooks/wechatpay/notify",
        data=signed.body + b" " * TWENTY_MB,  # still JSON; far too big to be a notification
        content_type="application/json",
        **headers,
    )
    assert answer.status_code == 413
    assert answer["Content-Type"].startswith("application/json")
    assert answer.json() == {"code": "FAIL", "message": "请求体过大"}
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert not Payment.objects.exists()
    assert not PaymentNotification.objects.exists()
    assert AuditEvent.objects.count() == audit_before
    # The same notification at its real size is taken.
    assert wechatpay.post(Client(), signed).status_code == 204


def test_wecom_callback_refuses_20_mb_in_plain_text(chain: Chain, settings: Any) -> None:
    settings.WECOM = {
        "CORP_ID": CORP,
        "CALLBACK_TOKEN": KEYS.token,
        "CALLBACK_AES_KEY": KEYS.encoding_aes_key,
        "CHAIN_CODE": chain.hq.code,
    }
    memberships = GroupMembership.objects.count()
    padding = "<!-- " + "x" * TWENTY_MB + " -->"
    envelope = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>{padding}<Encrypt></Encrypt></xml>"
    answer = Client().post(
        URL + "?msg_signature=0&timestamp=0&nonce=n0nce", envelope, content_type="text/xml"
    )
    assert answer.status_code == 413
    assert answer["Content-Type"].startswith("text/plain")
    assert answer.content.decode() == "请求体过大"
    assert not GroupChangeEvent.objects.exists()
    assert GroupMembership.objects.count() == memberships
    # A real-sized callback is still read (here: an event for a chat we do not know).
    assert deliver(event("dismiss")).status_code == 200
