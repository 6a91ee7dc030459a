"""Hot SKU: many members order the last units at once. Real threads, one connection each.

PostgreSQL: 500 units, 2,000 concurrent place_order calls → exactly 500 reserved.
SQLite (writers queue on one lock): 100 units, 300 calls → exactly 100.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from shequn.catalog.models import StockItem
from shequn.core.errors import DomainError
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order, sweep_expired_orders
from shequn.orders.models import Order, OrderStatus
from tests.conftest import build_chain, due_orders, make_sku, phone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def scale() -> tuple[int, int, int]:
    """(units, attempts, workers) for this database."""
    return (500, 2000, 32) if connection.vendor == "postgresql" else (100, 300, 12)


def test_concurrent_orders_never_oversell() -> None:
    units, attempts, workers = scale()
    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: units})
    Member.objects.bulk_create(
        Member(chain=chain.hq, phone=phone(n), home_store=chain.store_a) for n in range(attempts)
    )
    member_ids = list(
        Member.objects.filter(chain=chain.hq).order_by("id").values_list("pk", flat=True)
    )

    def attempt(n: int) -> str:
        try:
            member = Member.objects.get(pk=member_ids[n])
            place_order(
                member=member,
                store=chain.store_a,
                lines=[LineRequest(sku.pk, 1)],
                idempotency_key=f"k{n}",
            )
            return "placed"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = Counter(pool.map(attempt, range(attempts)))

    assert outcomes == Counter({"placed": units, "out_of_stock": attempts - units}), outcomes
    item = StockItem.objects.get(store=chain.store_a, sku=sku)
    assert (item.quantity, item.quantity_allocated) == (units, units)
    assert Order.objects.filter(status=OrderStatus.PENDING_PAYMENT).count() == units


def test_two_sweepers_release_each_order_once() -> None:
    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: 200})
    due_orders(chain, sku, count=60, quantity=2)

    def sweep(_: int) -> int:
        try:
            return sweep_expired_orders(batch=7)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        closed = sum(pool.map(sweep, range(4)))
    assert closed == 60
    item = StockItem.objects.get(store=chain.store_a, sku=sku)
    assert item.quantity_allocated == 0
    assert Order.objects.filter(status=OrderStatus.CLOSED).count() == 60


def test_concurrent_retries_with_one_key_place_one_order() -> None:
    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: 50})
    member = Member.objects.create(chain=chain.hq, phone=phone(1), home_store=chain.store_a)

    def retry(_: int) -> tuple[int, bool]:
        try:
            placed = place_order(
                member=member,
                store=chain.store_a,
                lines=[LineRequest(sku.pk, 3)],
                idempotency_key="tap-tap-tap",
            )
            return placed.order.pk, placed.created
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(retry, range(10)))
    assert len({order_id for order_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert StockItem.objects.get(store=chain.store_a, sku=sku).quantity_allocated == 3
