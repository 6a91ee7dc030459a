"""Paying through the (simulated) gateway over loopback: H5 and JSAPI prepay, the payer pays,
the signed notification marks the order paid; a lost notification is recovered by querying the
order; an expired order is closed at the gateway before it is closed here."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.core.errors import NotFound, RuleViolation, Unavailable
from shequn.integrations.wechatpay.crypto import rsa_verify
from shequn.members.actions import find_or_register_member
from shequn.orders.actions import (
    GATEWAY_GRACE,
    LineRequest,
    cancel_unpaid_order,
    place_order,
    reconcile_payment,
    start_payment,
    sweep_expired_orders,
)
from shequn.orders.models import Order, OrderStatus, Payment, PaymentNotification
from tests.conftest import Chain, build_chain, make_sku, phone, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def unpaid_order(chain: Chain, n: int = 1) -> Order:
    sku = make_sku(chain, code=f"GW-{n}", stock={chain.store_a: 10}, price_fen=3990)
    member = find_or_register_member(store=chain.store_a, phone=phone(n)).member
    return place_order(
        member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 2)], idempotency_key="k"
    ).order


def start(order: Order) -> Any:
    return start_payment(
        order=order,
        member=order.member,
        return_url="http://shop.example/m/orders/1/",
        client_ip="127.0.0.1",
    )


def prepay_id(url: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["prepay_id"][0]


def test_h5_payment_round_trip(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, base = gateway
    order = unpaid_order(build_chain())
    begun = start(order)
    assert begun.kind == "h5"
    assert begun.url.startswith(f"{base}/sim/cashier?prepay_id=")
    assert urllib.parse.quote("http://shop.example/m/orders/1/", safe="") in begun.url
    again = start(order)  # a second tap on 支付 is the same prepay, not a second payment
    assert prepay_id(again.url) == prepay_id(begun.url)
    seen = sim.transactions[order.number]
    assert seen["content"]["amount"] == {"total": 7980, "currency": "CNY"}
    # WeChat refuses payment after our deadline (time_expire, to the second)
    assert abs((seen["expires"] - order.payment_deadline).total_seconds()) < 1
    assert sim.pay(order.number) == (True, "")
    order = wait_for_status(order, OrderStatus.PAID)
    assert len(order.pickup_code) == 8
    assert Payment.objects.get(order=order).amount_fen == 7980
    with pytest.raises(RuleViolation) as info:
        start(order)
    assert info.value.code == "illegal_transition"


def test_jsapi_prepay_returns_signed_bridge_params(gateway, settings: Any) -> None:  # type: ignore[no-untyped-def]
    sim, _ = gateway
    order = unpaid_order(build_chain())
    begun = start_payment(
        order=order,
        member=order.member,
        return_url="",
        client_ip="127.0.0.1",
        openid="o-member-1",
    )
    params = begun.params
    assert begun.kind == "jsapi"
    assert params is not None
    assert params["package"] == f"prepay_id={sim.transactions[order.number]['prepay_id']}"
    assert params["appId"] == settings.SHEQUN_WECHATPAY["APPID"]
    message = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    assert rsa_verify(sim.merchant_public_key, message.encode(), params["paySign"])
    assert sim.transactions[order.number]["payer"] == {"openid": "o-member-1"}


def test_lost_notification_is_recovered_by_query(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, _ = gateway
    sim.notify_payments = False  # the payer pays, the notification never arrives
    order = unpaid_order(build_chain())
    assert reconcile_payment(order) == "not_started"
    start(order)
    order.refresh_from_db()
    assert reconcile_payment(order) == "notpay"
    sim.pay(order.number)
    assert reconcile_payment(order) == "paid"
    assert reconcile_payment(order) == "duplicate"  # the second query books nothing
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Payment.objects.filter(order=order).count() == 1


def test_sweep_books_a_payment_whose_notification_was_lost(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, _ = gateway
    sim.notify_payments = False
    order = unpaid_order(build_chain())
    start(order)
    sim.pay(order.number)
    later = order.payment_deadline + timedelta(minutes=1)
    assert sweep_expired_orders(now=later) == 0  # paid at the gateway: booked, not closed
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert StockItem.objects.get(store=order.store).quantity_allocated == 2


def test_sweep_closes_an_unpaid_order_at_the_gateway_first(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, _ = gateway
    order = unpaid_order(build_chain())
    start(order)
    order.refresh_from_db()
    assert sweep_expired_orders(now=order.payment_deadline + timedelta(seconds=1)) == 1
    assert sim.transactions[order.number]["trade_state"] == "CLOSED"
    assert sim.pay(order.number) == (False, "订单已关闭")  # nobody can pay it any more
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED
    assert StockItem.objects.get(store=order.store).quantity_allocated == 0


def test_unreachable_gateway_holds_the_order_until_the_grace_ends(gateway, settings: Any) -> None:  # type: ignore[no-untyped-def]
    order = unpaid_order(build_chain())
    start(order)
    order.refresh_from_db()
    settings.SHEQUN_WECHATPAY = {**settings.SHEQUN_WECHATPAY, "API_BASE": "http://127.0.0.1:9"}
    assert sweep_expired_orders(now=order.payment_deadline + timedelta(minutes=5)) == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT  # the payer may have paid: wait
    with pytest.raises(Unavailable):
        cancel_unpaid_order(order=order, member=order.member)  # a person is told to retry
    assert sweep_expired_orders(now=order.payment_deadline + GATEWAY_GRACE) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED


def test_member_cancel_closes_at_the_gateway_and_a_paid_order_cannot_be_cancelled(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, _ = gateway
    chain = build_chain()
    first = unpaid_order(chain, 1)
    start(first)
    first.refresh_from_db()
    cancel_unpaid_order(order=first, member=first.member)
    assert sim.transactions[first.number]["trade_state"] == "CLOSED"

    sim.notify_payments = False
    second = unpaid_order(chain, 2)
    start(second)
    second.refresh_from_db()
    sim.pay(second.number)  # paid, but we have not heard yet
    with pytest.raises(Exception) as info:
        cancel_unpaid_order(order=second, member=second.member)
    assert getattr(info.value, "code", "") in ("order_changed", "illegal_transition")
    second.refresh_from_db()
    assert second.status == OrderStatus.PAID


def test_payment_refusals_write_nothing(gateway, settings: Any) -> None:  # type: ignore[no-untyped-def]
    chain = build_chain()
    order = unpaid_order(chain, 1)
    stranger = find_or_register_member(store=chain.store_a, phone=phone(9)).member
    with pytest.raises(NotFound):
        start_payment(order=order, member=stranger, return_url="", client_ip="127.0.0.1")
    Order.objects.filter(pk=order.pk).update(payment_deadline=timeutil.now())
    order.refresh_from_db()
    with pytest.raises(RuleViolation) as info:
        start(order)
    assert info.value.code == "payment_expired"
    other = unpaid_order(chain, 2)
    settings.SHEQUN_WECHATPAY = {**settings.SHEQUN_WECHATPAY, "MERCHANT_KEY": ""}
    with pytest.raises(Unavailable) as unavailable:
        start(other)
    assert unavailable.value.code == "payment_not_configured"
    assert not Order.objects.filter(payment_started_at__isnull=False).exists()
    assert not PaymentNotification.objects.exists()


def test_a_cancel_and_a_payment_racing_never_leave_a_payable_closed_order(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, _ = gateway
    chain = build_chain()
    # The member's pay tap read the order just before another tab cancelled it.
    first = unpaid_order(chain, 1)
    stale = Order.objects.get(pk=first.pk)
    cancel_unpaid_order(order=first, member=first.member)
    with pytest.raises(RuleViolation) as info:
        start(stale)
    assert info.value.code == "illegal_transition"
    assert first.number not in sim.transactions  # no payment was ever opened for it
    # The other way round: the cancel read the order before the payment was opened.
    second = unpaid_order(chain, 2)
    stale = Order.objects.get(pk=second.pk)
    start(second)
    cancel_unpaid_order(order=stale, member=second.member)
    assert sim.transactions[second.number]["trade_state"] == "CLOSED"
    assert sim.pay(second.number) == (False, "订单已关闭")


def test_one_order_pays_in_one_channel(gateway) -> None:  # type: ignore[no-untyped-def]
    order = unpaid_order(build_chain())
    start(order)
    order.refresh_from_db()
    with pytest.raises(RuleViolation) as info:  # then opened inside WeChat: JSAPI
        start_payment(
            order=order, member=order.member, return_url="", client_ip="1.2.3.4", openid="o-1"
        )
    assert info.value.code == "payment_channel_changed"


def test_api_cancel_with_idempotency_key_closes_at_the_gateway(gateway) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import client_for

    sim, _ = gateway
    chain = build_chain()
    order = unpaid_order(chain)
    start(order)
    response = client_for(chain.manager_a).post(
        f"/api/orders/{order.pk}/cancel", HTTP_IDEMPOTENCY_KEY="cancel-1"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"
    assert sim.transactions[order.number]["trade_state"] == "CLOSED"
