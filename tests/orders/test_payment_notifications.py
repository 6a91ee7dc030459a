"""The WeChat Pay notification endpoint, end to end: signature, decryption, exactly-once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import Client

from shequn.core.models import AuditEvent
from shequn.members.actions import find_or_register_member
from shequn.orders.actions import LineRequest, cancel_unpaid_order, place_order
from shequn.orders.models import Order, OrderStatus, Payment, PaymentNotification
from tests.conftest import Chain, FakeWechatPay, build_chain, make_sku, phone


def new_order(chain: Chain, n: int = 1) -> Order:
    sku = make_sku(chain, code=f"PAY-{n}")
    member = find_or_register_member(store=chain.store_a, phone=phone(n)).member
    return place_order(
        member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 2)], idempotency_key="k"
    ).order


def assert_fail(response, status: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.json()["code"] == "FAIL"
    assert response.json()["message"]


def test_paid_once_for_three_sequential_deliveries(chain: Chain, wechatpay: FakeWechatPay) -> None:
    order = new_order(chain)
    signed = wechatpay.notification(order)
    for _ in range(3):
        assert wechatpay.post(Client(), signed).status_code == 204
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.paid_at is not None
    assert Payment.objects.filter(order=order).count() == 1
    assert PaymentNotification.objects.get().outcome == "paid"
    assert AuditEvent.objects.filter(action="orders.paid", target_id=str(order.pk)).count() == 1


def test_redelivery_with_a_new_envelope_id_is_still_one_payment(
    chain: Chain, wechatpay: FakeWechatPay
) -> None:
    order = new_order(chain)
    assert wechatpay.post(Client(), wechatpay.notification(order)).status_code == 204
    assert wechatpay.post(Client(), wechatpay.notification(order)).status_code == 204
    assert Payment.objects.count() == 1
    assert sorted(PaymentNotification.objects.values_list("outcome", flat=True)) == [
        "duplicate",
        "paid",
    ]


@pytest.mark.parametrize(
    ("_case", "change"),
    [
        (
            "tampered body",
            lambda s: s.__class__(headers=s.headers, body=s.body.replace(b"EV-", b"EX-")),
        ),
        ("stale timestamp", None),
        (
            "signtest probe",
            lambda s: s.__class__(
                headers={
                    **s.headers,
                    "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + s.headers["Wechatpay-Signature"],
                },
                body=s.body,
            ),
        ),
        (
            "unknown serial",
            lambda s: s.__class__(headers={**s.headers, "Wechatpay-Serial": "ABCDEF"}, body=s.body),
        ),
    ],
)
def test_unverifiable_notifications_refused(
    chain: Chain, wechatpay: FakeWechatPay, _case: str, change
) -> None:  # type: ignore[no-untyped-def]
    import time

    order = new_order(chain)
    if change is None:
        signed = wechatpay.notification(order, timestamp=int(time.time()) - 301)
    else:
        signed = change(wechatpay.notification(order))
    assert_fail(wechatpay.post(Client(), signed), 401)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert not PaymentNotification.objects.exists()


@pytest.mark.parametrize(
    ("_case", "kwargs"),
    [("wrong amount", {"amount": 1}), ("wrong merchant", {"mchid": "1900000999"})],
)
def test_verified_but_not_ours_refused_and_nothing_changed(
    chain: Chain, wechatpay: FakeWechatPay, _case: str, kwargs: dict
) -> None:
    order = new_order(chain)
    assert_fail(wechatpay.post(Client(), wechatpay.notification(order, **kwargs)), 400)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert not Payment.objects.exists()
    assert not PaymentNotification.objects.exists()


def test_late_success_for_a_closed_order_goes_to_refund(
    chain: Chain, wechatpay: FakeWechatPay
) -> None:
    order = new_order(chain)
    cancel_unpaid_order(order=order, member=order.member)
    assert wechatpay.post(Client(), wechatpay.notification(order)).status_code == 204
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED  # never re-opened
    payment = Payment.objects.get()
    assert payment.refund_required
    assert AuditEvent.objects.filter(action="orders.paid_needs_refund").count() == 1


def test_only_post(wechatpay: FakeWechatPay) -> None:
    assert Client().get("/webhooks/wechatpay/notify").status_code == 405


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_ten_concurrent_deliveries_make_one_transition(wechatpay: FakeWechatPay) -> None:
    chain = build_chain()
    order = new_order(chain)
    same = wechatpay.notification(order)
    fresh_ids = [
        wechatpay.notification(order) for _ in range(10)
    ]  # redelivered with new envelope ids

    def deliver(signed) -> int:  # type: ignore[no-untyped-def]
        try:
            return wechatpay.post(Client(), signed).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(deliver, [same] * 10 + fresh_ids))
    assert statuses == [204] * 20
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Payment.objects.count() == 1
    assert AuditEvent.objects.filter(action="orders.paid").count() == 1
    assert PaymentNotification.objects.count() == 11


@pytest.mark.parametrize(
    ("_case", "resource_patch"),
    [
        ("payer is null", {"payer": None}),
        ("amount is not an object", {"amount": 7980}),
        ("out_trade_no too long", {"out_trade_no": "9" * 40}),
        ("missing transaction_id", {"transaction_id": None}),
    ],
)
def test_signed_but_malformed_resources_are_400(
    chain: Chain, wechatpay: FakeWechatPay, _case: str, resource_patch: dict
) -> None:
    from shequn.integrations.wechatpay.signing import build_notification

    order = new_order(chain)
    resource = {
        "mchid": wechatpay.mchid,
        "appid": wechatpay.appid,
        "out_trade_no": order.number,
        "transaction_id": "4200x",
        "trade_state": "SUCCESS",
        "amount": {"total": order.total_fen},
        **resource_patch,
    }
    if resource.get("transaction_id") is None:
        del resource["transaction_id"]
    signed = build_notification(
        event_type="TRANSACTION.SUCCESS",
        resource=resource,
        platform_key=wechatpay.platform_key,
        platform_serial=wechatpay.serial,
        apiv3_key=wechatpay.apiv3_key,
    )
    response = wechatpay.post(Client(), signed)
    if _case == "payer is null":  # a null payer is tolerated: the payment is still ours
        assert response.status_code == 204
        return
    assert_fail(response, 400)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
