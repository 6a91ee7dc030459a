"""Refunds are their own records; Σ refunds ≤ paid holds even when clerks refund at once."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import DatabaseError, connections, transaction
from django.db.models import Sum

from shequn.catalog.models import StockItem
from shequn.core.errors import DomainError, InvalidInput, PermissionDenied, RuleViolation
from shequn.orders.actions import (
    MAX_REFUND_ATTEMPTS,
    RefundReport,
    record_refund_result,
    request_refund,
    submit_refund,
)
from shequn.orders.models import OrderStatus, Payment, Refund, RefundStatus
from tests.conftest import Chain, build_chain, client_for
from tests.orders.test_pickup import paid_order, pay


def test_partial_refunds_up_to_the_paid_amount(chain: Chain) -> None:
    order = paid_order(chain)  # 2 × ¥39.90
    first = request_refund(acting=chain.manager_a, order=order, amount_fen=3990, reason="一盒破损")
    second = request_refund(acting=chain.manager_a, order=order, amount_fen=3990, reason="整单退")
    assert first.out_refund_no != second.out_refund_no
    with pytest.raises(RuleViolation) as info:
        request_refund(acting=chain.manager_a, order=order, amount_fen=1, reason="多退一分")
    assert info.value.code == "refund_exceeds_payment"
    payment = Payment.objects.get(order=order)
    assert payment.refunded_fen == payment.amount_fen == 7980
    assert Refund.objects.filter(order=order).count() == 2


def test_a_paid_twice_order_refunds_the_duplicate_by_name(chain: Chain) -> None:
    order = paid_order(chain)  # first payment: 4200-1
    assert pay(order, "4200-DUP") == "refund_required"
    with pytest.raises(InvalidInput) as info:
        request_refund(
            acting=chain.manager_a, order=order, amount_fen=order.total_fen, reason="重复支付"
        )
    assert info.value.code == "payment_required"
    duplicate = Payment.objects.get(transaction_id="4200-DUP")
    refund = request_refund(
        acting=chain.manager_a,
        order=order,
        amount_fen=order.total_fen,
        reason="重复支付",
        payment=duplicate,
    )
    assert refund.payment == duplicate
    record_refund_result(
        RefundReport(
            notification_id="EV-R",
            event_type="REFUND.SUCCESS",
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.amount_fen,
            mchid="m",
        ),
        expected_mchid="m",
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID  # the real purchase stands, its units stay allocated
    assert StockItem.objects.get(store=chain.store_a).quantity_allocated == 2


@pytest.mark.parametrize("amount", [0, -5, 1.5, "100", True])
def test_bad_amounts_refused(chain: Chain, amount: object) -> None:
    order = paid_order(chain)
    with pytest.raises(InvalidInput):
        request_refund(acting=chain.manager_a, order=order, amount_fen=amount, reason="x")  # type: ignore[arg-type]
    assert not Refund.objects.exists()


def test_cashier_cannot_refund_and_unpaid_cannot_be_refunded(chain: Chain) -> None:
    order = paid_order(chain)
    with pytest.raises(PermissionDenied):
        request_refund(acting=chain.cashier_a, order=order, amount_fen=100, reason="x")
    order.payments.all().delete()
    with pytest.raises(RuleViolation):
        request_refund(acting=chain.manager_a, order=order, amount_fen=100, reason="x")


def test_database_refuses_over_refund(chain: Chain) -> None:
    order = paid_order(chain)
    with pytest.raises(DatabaseError), transaction.atomic():
        Payment.objects.filter(order=order).update(refunded_fen=999999)


def test_refund_submission_gives_up_after_the_cap(chain: Chain, settings) -> None:  # type: ignore[no-untyped-def]
    from shequn.integrations.wechatpay.crypto import generate_private_key, private_pem

    order = paid_order(chain)
    settings.SHEQUN_WECHATPAY = {
        "MCHID": "m",
        "APPID": "a",
        "APIV3_KEY": "k" * 32,
        "PLATFORM_PUBLIC_KEYS": {},
        "API_BASE": "http://127.0.0.1:9",
        "MERCHANT_KEY": private_pem(generate_private_key()).decode(),
        "MERCHANT_SERIAL": "S",
    }
    refund = request_refund(acting=chain.manager_a, order=order, amount_fen=100, reason="x")
    Refund.objects.filter(pk=refund.pk).update(submit_attempts=MAX_REFUND_ATTEMPTS - 1)
    assert submit_refund(refund.pk) == "failed"
    refund.refresh_from_db()
    assert refund.status == RefundStatus.ABNORMAL
    assert refund.last_error.startswith("放弃自动重试")


def test_refund_api_shape(chain: Chain) -> None:
    order = paid_order(chain)
    client = client_for(chain.manager_a)
    ok = client.post(
        f"/api/orders/{order.pk}/refunds",
        data={"amount_fen": 100, "reason": "少发"},
        content_type="application/json",
    )
    assert ok.status_code == 201
    too_much = client.post(
        f"/api/orders/{order.pk}/refunds",
        data={"amount_fen": 999999, "reason": "x"},
        content_type="application/json",
    )
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "refund_exceeds_payment"
    floaty = client.post(
        f"/api/orders/{order.pk}/refunds",
        data={"amount_fen": 1.5, "reason": "x"},
        content_type="application/json",
    )
    assert floaty.status_code == 422
    assert Refund.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_concurrent_refunds_never_exceed_payment() -> None:
    chain = build_chain()
    order = paid_order(chain)  # 7980 fen
    share = 3000  # two fit, a third would exceed

    def refund(_: int) -> str:
        try:
            request_refund(acting=chain.manager_a, order=order, amount_fen=share, reason="并发退款")
            return "ok"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = Counter(pool.map(refund, range(8)))
    assert outcomes == Counter({"ok": 2, "refund_exceeds_payment": 6}), outcomes
    assert Refund.objects.aggregate(t=Sum("amount_fen"))["t"] == 6000
    assert Payment.objects.get(order=order).refunded_fen == 6000
