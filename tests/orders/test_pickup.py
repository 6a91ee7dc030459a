"""Store pickup: the code is issued at payment and works exactly once, even under a double scan."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import chain as iter_chain
from itertools import repeat

import pytest
from django.db import connections

from shequn.catalog.models import StockItem, StockMovement
from shequn.core import timeutil
from shequn.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied, RuleViolation
from shequn.members.actions import find_or_register_member
from shequn.orders.actions import (
    LineRequest,
    PaymentReport,
    place_order,
    record_payment,
    request_refund,
    verify_pickup,
)
from shequn.orders.actions import pickup as pickup_actions
from shequn.orders.models import Order, OrderStatus, Payment, Refund, RefundStatus
from tests.conftest import Chain, build_chain, client_for, make_sku, phone


def paid_order(chain: Chain, quantity: int = 2) -> Order:
    sku = make_sku(chain, code="PK-1", stock={chain.store_a: 10})
    member = find_or_register_member(store=chain.store_a, phone=phone(1)).member
    order = place_order(
        member=member,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, quantity)],
        idempotency_key="k",
    ).order
    assert pay(order, "4200-1") == "paid"
    order.refresh_from_db()
    return order


def pay(order: Order, transaction_id: str) -> str:
    """What a verified payment notification for the whole order does."""
    return record_payment(
        PaymentReport(
            notification_id=f"EV-{transaction_id}",
            out_trade_no=order.number,
            transaction_id=transaction_id,
            amount_fen=order.total_fen,
            mchid="m",
            appid="a",
            succeeded_at=timeutil.now(),
        ),
        expected_mchid="m",
        expected_appid="a",
    )


def test_payment_issues_a_code_and_pickup_uses_it_once(chain: Chain) -> None:
    order = paid_order(chain)
    assert len(order.pickup_code) == 8
    done = verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=order.pickup_code)
    assert done.status == OrderStatus.FULFILLED
    assert done.fulfilled_by == chain.cashier_a.user
    item = StockItem.objects.get(store=chain.store_a)
    assert (item.quantity, item.quantity_allocated) == (8, 0)
    assert StockMovement.objects.filter(reason="sale", reference=order.number).get().delta == -2
    with pytest.raises(RuleViolation) as info:
        verify_pickup(acting=chain.manager_a, store=chain.store_a, code=order.pickup_code)
    assert info.value.code == "pickup_code_used"
    assert chain.cashier_a.display_name in info.value.message
    assert "核销" in info.value.message


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
    monkeypatch.setattr(pickup_actions, "_new_pickup_code", lambda: next(codes))
    assert pay(second, "4200-2") == "paid"
    second.refresh_from_db()
    assert second.pickup_code == "12345678"


def test_pickup_bad_input(chain: Chain) -> None:
    order = paid_order(chain)
    with pytest.raises(InvalidInput):
        verify_pickup(acting=chain.cashier_a, store=chain.store_a, code="12ab")
    with pytest.raises(NotFound):
        verify_pickup(
            acting=chain.cashier_a,
            store=chain.store_a,
            code="00000000" if order.pickup_code != "00000000" else "11111111",
        )
    with pytest.raises(NotFound):  # another store's till
        verify_pickup(acting=chain.cashier_b, store=chain.store_b, code=order.pickup_code)
    with pytest.raises(PermissionDenied):
        verify_pickup(acting=chain.hq_operator, store=chain.store_a, code=order.pickup_code)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


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


def test_pickup_api(chain: Chain) -> None:
    order = paid_order(chain)
    client = client_for(chain.cashier_a)
    body = {"store_id": chain.store_a.pk, "code": order.pickup_code}
    ok = client.post("/api/orders/pickup", data=body, content_type="application/json")
    assert ok.status_code == 200
    assert ok.json()["status"] == "fulfilled"
    again = client.post("/api/orders/pickup", data=body, content_type="application/json")
    assert again.status_code == 422
    assert again.json()["code"] == "pickup_code_used"


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_concurrent_double_scan_hands_over_once() -> None:
    chain = build_chain()
    order = paid_order(chain, quantity=3)

    def scan(_: int) -> str:
        try:
            verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=order.pickup_code)
            return "handed_over"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = Counter(pool.map(scan, range(8)))
    assert outcomes == Counter({"handed_over": 1, "pickup_code_used": 7}), outcomes
    item = StockItem.objects.get(store=chain.store_a)
    assert (item.quantity, item.quantity_allocated) == (7, 0)
    assert StockMovement.objects.filter(reason="sale").count() == 1
