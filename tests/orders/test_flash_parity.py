"""The flash rules live twice: in ``place_order``'s general path and in the fast path's one SQL
statement (ADR 0008). This test runs every success and refusal case through both and requires
the same outcome — the same refusal code, or an order with the same amounts, lines, counters,
shelf and audit — so no rule can change in one place only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from shequn.catalog.models import Product, StockItem
from shequn.core import timeutil
from shequn.core.errors import DomainError
from shequn.core.models import AuditEvent
from shequn.orders.actions import placing
from shequn.orders.flash_path import forget_cached_facts
from shequn.promotions.models import FlashSale, FlashSaleBuyer, FlashSaleQuota
from tests.conftest import Chain, make_sku
from tests.promotions.test_flash_sale import buy, sale_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the fast path is PostgreSQL's"),
]


def _summary(chain: Chain, sale: FlashSale, attempt: Callable[[], Any]) -> tuple[Any, ...]:
    """What a person could see of the attempt, without ids, numbers or times."""
    try:
        placed = attempt()
    except DomainError as refused:
        result: tuple[Any, ...] = ("refused", refused.code, refused.status)
    else:
        order = placed.order if hasattr(placed, "order") else placed
        lines = [
            (line.quantity, line.unit_price_fen, line.flash_quota_id is not None)
            for line in order.lines.all()
        ]
        result = (
            "placed",
            getattr(placed, "created", None),
            order.status,
            order.subtotal_fen,
            order.total_fen,
            order.discount_fen if hasattr(order, "discount_fen") else None,
            order.channel,
            order.fulfilment,
            lines,
        )
    quotas = sorted(FlashSaleQuota.objects.filter(sale=sale).values_list("quota", "sold"))
    bought = sorted(FlashSaleBuyer.objects.filter(sale=sale).values_list("bought", flat=True))
    shelf = sorted(
        StockItem.objects.filter(sku=sale.sku).values_list("quantity", "quantity_allocated")
    )
    audit = sorted(
        AuditEvent.objects.filter(action__startswith="orders.").values_list("action", flat=True)
    )
    return (result, quotas, bought, shelf, audit)


def _at(chain: Chain, **sale: Any) -> tuple[FlashSale, Any]:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10, chain.store_b: 10})
    return sale_for(chain, sku, **sale), sku


def one(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain)
    return sale, lambda: buy(chain, sale, 1)


def two(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain)
    return sale, lambda: buy(chain, sale, 1, quantity=2)


def retry_same_key(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain)
    buy(chain, sale, 1)
    return sale, lambda: buy(chain, sale, 1)


def key_reused_for_another_order(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain)
    buy(chain, sale, 1)
    return sale, lambda: buy(chain, sale, 1, quantity=2)


def order_limit(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain, per_order_limit=2, per_member_limit=5)
    return sale, lambda: buy(chain, sale, 1, quantity=3)


def member_limit(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain)
    buy(chain, sale, 1, quantity=2)
    return sale, lambda: buy(chain, sale, 1, key="k2")


def sold_out(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain, chain_quota=2)
    buy(chain, sale, 1, quantity=2)
    return sale, lambda: buy(chain, sale, 2)


def more_than_is_left(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain, chain_quota=3)
    buy(chain, sale, 1, quantity=2)
    return sale, lambda: buy(chain, sale, 2, quantity=2)


def store_not_in_sale(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10, chain.store_b: 10})
    sale = sale_for(chain, sku, chain_quota=None, store_quotas={chain.store_a: 5})
    return sale, lambda: buy(chain, sale, 1, store=chain.store_b)


def per_store_quota(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10, chain.store_b: 10})
    sale = sale_for(chain, sku, chain_quota=None, store_quotas={chain.store_a: 1, chain.store_b: 5})
    buy(chain, sale, 1)
    return sale, lambda: buy(chain, sale, 2)


def cancelled(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain)
    FlashSale.objects.filter(pk=sale.pk).update(cancelled_at=timeutil.now())
    return sale, lambda: buy(chain, sale, 1)


def ended(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, _ = _at(chain)
    FlashSale.objects.filter(pk=sale.pk).update(ends_at=timeutil.now())
    return sale, lambda: buy(chain, sale, 1)


def not_started(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    now = timeutil.now()
    sale, _ = _at(chain)
    FlashSale.objects.filter(pk=sale.pk).update(
        starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )
    return sale, lambda: buy(chain, sale, 1)


def off_sale(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, sku = _at(chain)
    Product.objects.filter(pk=sku.product_id).update(is_active=False)
    return sale, lambda: buy(chain, sale, 1)


def empty_shelf(chain: Chain) -> tuple[FlashSale, Callable[[], Any]]:
    sale, sku = _at(chain)
    StockItem.objects.filter(sku=sku, store=chain.store_a).update(quantity=1)
    return sale, lambda: buy(chain, sale, 1, quantity=2)


SCENARIOS = [
    one,
    two,
    retry_same_key,
    key_reused_for_another_order,
    order_limit,
    member_limit,
    sold_out,
    more_than_is_left,
    store_not_in_sale,
    per_store_quota,
    cancelled,
    ended,
    not_started,
    off_sale,
    empty_shelf,
]


class _Undo(Exception):
    pass


def _run(
    chain: Chain, scenario: Callable[..., Any], *, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[tuple[Any, ...], bool]:
    """The scenario's outcome on one path, then everything it wrote rolled back."""
    forget_cached_facts()
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(placing, "_place_flash_fast", lambda **_: None)
        try:
            with transaction.atomic():
                sale, attempt = scenario(chain)
                with CaptureQueriesContext(connection) as queries:
                    summary = _summary(chain, sale, attempt)
                took_fast = any(
                    q["sql"].startswith("WITH info AS") for q in queries.captured_queries
                )
                raise _Undo(summary, took_fast)
        except _Undo as undo:
            return undo.args[0], undo.args[1]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_both_paths_give_the_same_outcome(
    chain: Chain, scenario: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    general, general_fast = _run(chain, scenario, fast=False, monkeypatch=monkeypatch)
    fast, _ = _run(chain, scenario, fast=True, monkeypatch=monkeypatch)
    assert not general_fast  # the general path really ran
    assert fast == general


def test_the_fast_path_is_what_serves_the_placed_cases(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parity would prove nothing if the fast path declined everything."""
    for scenario in (one, two):
        _, took_fast = _run(chain, scenario, fast=True, monkeypatch=monkeypatch)
        assert took_fast, scenario.__name__
