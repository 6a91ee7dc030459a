"""Regression tests for defects found in review of the money path."""

from __future__ import annotations

from itertools import chain as iter_chain
from itertools import repeat

import pytest
from django.db.models import F

from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.core.errors import InvalidInput, RuleViolation
from shequn.members.actions import find_or_register_member
from shequn.orders import actions
from shequn.orders.actions import (
    LineRequest,
    place_order,
    request_refund,
    sweep_expired_orders,
    verify_pickup,
)
from shequn.orders.models import Order, OrderStatus, Payment, Refund, RefundStatus
from tests.conftest import Chain, make_sku, phone
from tests.orders.test_pickup import paid_order, pay


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
    actions.record_refund_result(
        actions.RefundReport(
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


def test_no_pickup_while_a_refund_is_in_flight(chain: Chain) -> None:
    order = paid_order(chain)
    refund = request_refund(
        acting=chain.manager_a, order=order, amount_fen=order.total_fen, reason="整单退"
    )
    with pytest.raises(RuleViolation) as info:
        verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=order.pickup_code)
    assert info.value.code == "refund_in_progress"
    Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.CLOSED)  # the refund failed
    Payment.objects.filter(order=order).update(refunded_fen=0)
    assert (
        verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=order.pickup_code).status
        == OrderStatus.FULFILLED
    )


def test_pickup_code_collision_is_drawn_again(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = paid_order(chain)
    sku = make_sku(chain, code="PK-2", stock={chain.store_a: 5})
    member = find_or_register_member(store=chain.store_a, phone=phone(2)).member
    second = place_order(
        member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 1)], idempotency_key="k2"
    ).order
    codes = iter_chain([first.pickup_code, first.pickup_code], repeat("12345678"))
    monkeypatch.setattr(actions, "_new_pickup_code", lambda: next(codes))
    assert pay(second, "4200-2") == "paid"
    second.refresh_from_db()
    assert second.pickup_code == "12345678"


def test_expiry_sweep_skips_a_broken_order_and_closes_the_rest(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 10})
    orders = [
        place_order(
            member=find_or_register_member(store=chain.store_a, phone=phone(n)).member,
            store=chain.store_a,
            lines=[LineRequest(sku.pk, 1)],
            idempotency_key=f"k{n}",
        ).order
        for n in range(3)
    ]
    Order.objects.update(payment_deadline=timeutil.now())
    broken = orders[0]
    # Its allocation no longer adds up: it claims 5 units where 3 are allocated in all.
    broken.lines.update(quantity=5, line_total_fen=F("unit_price_fen") * 5)
    assert sweep_expired_orders() == 2
    broken.refresh_from_db()
    assert broken.status == OrderStatus.PENDING_PAYMENT


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
    Refund.objects.filter(pk=refund.pk).update(submit_attempts=actions.MAX_REFUND_ATTEMPTS - 1)
    assert actions.submit_refund(refund.pk) == "failed"
    refund.refresh_from_db()
    assert refund.status == RefundStatus.ABNORMAL
    assert refund.last_error.startswith("放弃自动重试")


def test_absurd_order_totals_refused(chain: Chain) -> None:
    from shequn.catalog.models import Sku

    sku = make_sku(chain, price_fen=10_000_000, stock={chain.store_a: 999})
    assert Sku.objects.filter(pk=sku.pk).exists()
    member = find_or_register_member(store=chain.store_a, phone=phone(1)).member
    with pytest.raises(InvalidInput) as info:
        place_order(
            member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 11)], idempotency_key="k"
        )
    assert info.value.code == "order_total_too_large"
