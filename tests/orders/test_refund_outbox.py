"""End to end over loopback: a clerk refunds, the gateway call happens after commit (outbox), the
simulated gateway notifies our webhook, and the refund completes; a failed call is retried by
the sweep, never lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.orders.actions import request_refund, submit_refund, sweep_unsubmitted_refunds
from shequn.orders.models import OrderStatus, Refund, RefundStatus
from tests.conftest import build_chain, wait_for_status
from tests.orders.test_pickup import paid_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_refund_goes_out_after_commit_and_completes_by_notification(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, _ = gateway
    chain = build_chain()
    order = paid_order(chain)
    refund = request_refund(
        acting=chain.manager_a, order=order, amount_fen=order.total_fen, reason="整单退"
    )
    refund = wait_for_status(refund, RefundStatus.SUCCEEDED)
    assert refund.submitted_at is not None
    assert refund.submit_attempts == 1
    assert list(sim.refunds) == [refund.out_refund_no]
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert StockItem.objects.get(store=chain.store_a).quantity_allocated == 0
    assert submit_refund(refund.pk) == "skipped"  # a second delivery of the task does nothing


def test_failed_gateway_call_is_retried_by_the_sweep(gateway, settings: Any) -> None:  # type: ignore[no-untyped-def]
    sim, base = gateway
    reachable = settings.SHEQUN_WECHATPAY
    settings.SHEQUN_WECHATPAY = {**reachable, "API_BASE": "http://127.0.0.1:9"}  # nothing listens
    chain = build_chain()
    order = paid_order(chain)
    refund = request_refund(acting=chain.manager_a, order=order, amount_fen=1000, reason="少发")
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING  # the record stands; the call failed after commit
    assert refund.submitted_at is None
    assert refund.last_error.startswith("unreachable")
    settings.SHEQUN_WECHATPAY = reachable
    assert sweep_unsubmitted_refunds() == 0  # not due yet (a minute's grace)
    Refund.objects.filter(pk=refund.pk).update(created_at=timeutil.now() - timedelta(minutes=2))
    assert sweep_unsubmitted_refunds() == 1
    wait_for_status(refund, RefundStatus.SUCCEEDED)
    assert len(sim.refunds) == 1
