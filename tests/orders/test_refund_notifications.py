"""Refund results from WeChat Pay: SUCCESS is final, ABNORMAL is not, CLOSED gives the hold back."""

from __future__ import annotations

from django.test import Client

from shequn.catalog.models import StockItem
from shequn.orders.actions import request_refund
from shequn.orders.models import OrderStatus, Payment, Refund, RefundStatus
from tests.conftest import Chain, FakeWechatPay
from tests.orders.test_pickup import paid_order


def test_full_refund_of_an_order_not_picked_up_returns_the_units(
    chain: Chain, wechatpay: FakeWechatPay
) -> None:
    order = paid_order(chain)  # 2 units allocated, 7980 fen paid
    refund = request_refund(acting=chain.manager_a, order=order, amount_fen=7980, reason="不要了")
    signed = wechatpay.refund_notification(refund, "REFUND.SUCCESS")
    for _ in range(3):  # redelivered: one effect
        assert wechatpay.post(Client(), signed).status_code == 204
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.finished_at is not None
    assert order.status == OrderStatus.REFUNDED
    item = StockItem.objects.get(store=chain.store_a)
    assert (item.quantity, item.quantity_allocated) == (10, 0)


def test_partial_refund_keeps_the_order_paid(chain: Chain, wechatpay: FakeWechatPay) -> None:
    order = paid_order(chain)
    refund = request_refund(
        acting=chain.manager_a, order=order, amount_fen=1000, reason="少发一件赠品"
    )
    assert (
        wechatpay.post(
            Client(), wechatpay.refund_notification(refund, "REFUND.SUCCESS")
        ).status_code
        == 204
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_closed_refund_gives_the_amount_back(chain: Chain, wechatpay: FakeWechatPay) -> None:
    order = paid_order(chain)
    refund = request_refund(acting=chain.manager_a, order=order, amount_fen=7980, reason="整单退")
    assert (
        wechatpay.post(Client(), wechatpay.refund_notification(refund, "REFUND.CLOSED")).status_code
        == 204
    )
    refund.refresh_from_db()
    assert refund.status == RefundStatus.CLOSED
    assert Payment.objects.get(order=order).refunded_fen == 0
    again = request_refund(acting=chain.manager_a, order=order, amount_fen=7980, reason="再次发起")
    assert again.status == RefundStatus.PENDING
    # A SUCCESS for the closed refund contradicts it: refused, nothing changed.
    contradicting = wechatpay.post(
        Client(), wechatpay.refund_notification(refund, "REFUND.SUCCESS")
    )
    assert contradicting.status_code == 400
    assert contradicting.json()["code"] == "FAIL"


def test_abnormal_is_not_final(chain: Chain, wechatpay: FakeWechatPay) -> None:
    order = paid_order(chain)
    refund = request_refund(acting=chain.manager_a, order=order, amount_fen=7980, reason="整单退")
    assert (
        wechatpay.post(
            Client(), wechatpay.refund_notification(refund, "REFUND.ABNORMAL")
        ).status_code
        == 204
    )
    refund.refresh_from_db()
    assert refund.status == RefundStatus.ABNORMAL
    assert refund.finished_at is None
    assert (
        wechatpay.post(
            Client(), wechatpay.refund_notification(refund, "REFUND.SUCCESS")
        ).status_code
        == 204
    )
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED


def test_wrong_refund_amount_refused(chain: Chain, wechatpay: FakeWechatPay) -> None:
    order = paid_order(chain)
    refund = request_refund(acting=chain.manager_a, order=order, amount_fen=1000, reason="x")
    response = wechatpay.post(
        Client(), wechatpay.refund_notification(refund, "REFUND.SUCCESS", amount=7980)
    )
    assert response.status_code == 400
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING
    assert Refund.objects.count() == 1
