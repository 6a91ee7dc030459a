"""The flash-sale fast path (PostgreSQL): a one-line flash order in one statement writes exactly
what the general path writes, refuses with the same precise reasons, and leaves nothing behind
when it refuses."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from shequn.catalog.models import Product, StockItem
from shequn.core import timeutil
from shequn.core.errors import DomainError
from shequn.core.models import AuditEvent
from shequn.members.actions import find_or_register_member
from shequn.members.models import Member
from shequn.orders import flash_path
from shequn.orders.actions import LineRequest, cancel_unpaid_order, place_order
from shequn.orders.models import Order, OrderLine
from shequn.promotions import flash
from shequn.promotions.models import FlashSale, FlashSaleBuyer, FlashSaleQuota
from tests.conftest import Chain, make_sku, phone
from tests.promotions.test_coupons import template_for
from tests.promotions.test_flash_sale import buy, sale_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL fast path"),
]


def test_one_statement_writes_what_the_general_path_writes(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku)
    buy(chain, sale, 0)  # warm the per-process facts
    member = Member.objects.create(chain=chain.hq, phone="+8613800000555", home_store=chain.store_a)
    with CaptureQueriesContext(connection) as queries:
        order = place_order(
            member=member,
            store=chain.store_a,
            lines=[LineRequest(sku.pk, 2)],
            idempotency_key="fast",
            flash_sale_id=sale.pk,
        ).order
    statements = [q["sql"] for q in queries.captured_queries]
    assert [s for s in statements if "SAVEPOINT" not in s][0].startswith("WITH info AS")
    assert len([s for s in statements if "SAVEPOINT" not in s]) == 1, statements

    stored = Order.objects.get(pk=order.pk)
    assert (stored.number, stored.total_fen, stored.subtotal_fen) == (order.number, 1980, 1980)
    # choices are stored as their values (psycopg alone would write an enum by its name)
    assert (stored.status, stored.channel, stored.fulfilment) == (
        "pending_payment",
        "organic",
        "pickup",
    )
    assert stored.payment_deadline - stored.created_at == timedelta(minutes=15)
    [line] = OrderLine.objects.filter(order=stored)
    assert (line.sku_id, line.quantity, line.unit_price_fen, line.line_total_fen) == (
        sku.pk,
        2,
        990,
        1980,
    )
    assert (line.product_name, line.flash_quota_id) == (sku.product.name, sale.quotas.get().pk)
    event = AuditEvent.objects.get(action="orders.placed", target_id=str(stored.pk))
    assert event.details == {"member": stored.member_id, "total_fen": 1980, "channel": "organic"}
    assert event.scope_path == chain.store_a.path
    # a retry with the same key is the same order
    again = place_order(
        member=member,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 2)],
        idempotency_key="fast",
        flash_sale_id=sale.pk,
    )
    assert (again.order.pk, again.created) == (order.pk, False)


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("cancel", "flash_cancelled"),
        ("end", "flash_ended"),
        ("not_started", "flash_not_started"),
        ("off_sale", "not_on_sale"),
        ("empty_shelf", "out_of_stock"),
        ("sold_out", "flash_sold_out"),
    ],
)
def test_refusals_say_why_and_leave_nothing(chain: Chain, setup: str, code: str) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 3})
    sale = sale_for(chain, sku, chain_quota=2)
    buy(chain, sale, 0)  # the facts are cached now: the database still decides
    now = timeutil.now()
    if setup == "cancel":
        FlashSale.objects.filter(pk=sale.pk).update(cancelled_at=now)
    elif setup == "end":
        FlashSale.objects.filter(pk=sale.pk).update(ends_at=now)
    elif setup == "not_started":
        FlashSale.objects.filter(pk=sale.pk).update(
            starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)
        )
    elif setup == "off_sale":
        Product.objects.filter(pk=sku.product_id).update(is_active=False)
    elif setup == "empty_shelf":
        StockItem.objects.filter(sku=sku).update(quantity=1)
    else:
        buy(chain, sale, 1)
    find_or_register_member(store=chain.store_a, phone=phone(5))  # registered beforehand
    before = (Order.objects.count(), AuditEvent.objects.count(), FlashSaleBuyer.objects.count())
    with pytest.raises(DomainError) as refused:
        buy(chain, sale, 5)
    assert refused.value.code == code
    after = (Order.objects.count(), AuditEvent.objects.count(), FlashSaleBuyer.objects.count())
    assert after == before
    quota = sale.quotas.get()
    assert quota.sold == Order.objects.count()


def test_member_limit(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku, per_member_limit=1, per_order_limit=1)
    buy(chain, sale, 1)
    with pytest.raises(DomainError) as limit:
        buy(chain, sale, 1, key="again")
    assert limit.value.code == "flash_member_limit"
    assert FlashSaleBuyer.objects.get().bought == 1


def test_an_instant_discount_for_promotions_sends_the_order_down_the_general_path(
    chain: Chain,
) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku)
    template_for(
        chain,
        name="秒杀立减",
        kind="instant",
        discount_fen=100,
        min_spend_fen=0,
        valid_days=None,
        applies_to_promotions=True,
    )
    member = Member.objects.create(chain=chain.hq, phone="+8613800000777", home_store=chain.store_a)
    with CaptureQueriesContext(connection) as queries:
        order = place_order(
            member=member,
            store=chain.store_a,
            lines=[LineRequest(sku.pk, 1)],
            idempotency_key="instant",
            flash_sale_id=sale.pk,
        ).order
    assert order.total_fen == 990 - 100
    assert not any("WITH info AS" in q["sql"] for q in queries.captured_queries)


def test_the_statement_is_prepared_on_the_server(chain: Chain) -> None:
    """Django turns psycopg's prepared statements off unless told otherwise, and then
    ``prepare=True`` is silently ignored: the settings must keep them on for our statement."""
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku)
    buy(chain, sale, 0)
    buy(chain, sale, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(statement.startswith("WITH info AS") for statement in prepared), prepared


def test_sold_out_is_remembered_but_a_retry_still_gets_its_order(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku, chain_quota=2, per_member_limit=1, per_order_limit=1)
    first, second = buy(chain, sale, 1), buy(chain, sale, 2)
    with pytest.raises(DomainError) as sold_out:
        buy(chain, sale, 3)  # the statement says so, and the process notes it
    assert sold_out.value.code == "flash_sold_out"
    with CaptureQueriesContext(connection) as queries, pytest.raises(DomainError) as again:
        buy(chain, sale, 4)
    assert again.value.code == "flash_sold_out"
    assert not any("WITH info AS" in q["sql"] for q in queries.captured_queries)
    assert buy(chain, sale, 1).pk == first.pk  # a retry is answered with its order, not a refusal
    assert (Order.objects.count(), sale.quotas.get().sold) == (2, 2)

    # A unit given back in this process ends the memo at once: the next buyer gets it.
    cancel_unpaid_order(order=second, member=second.member)
    assert buy(chain, sale, 5).pk != second.pk
    assert sale.quotas.get().sold == 2


def test_the_sold_out_memo_expires(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Units that come back through another process are seen once the memo runs out."""
    monkeypatch.setattr(flash, "SOLD_OUT_MEMO_S", 0.2)
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku, chain_quota=1, per_member_limit=1, per_order_limit=1)
    buy(chain, sale, 1)
    with pytest.raises(DomainError):
        buy(chain, sale, 2)
    FlashSaleQuota.objects.filter(sale=sale).update(quota=2)  # as another process's release
    with pytest.raises(DomainError):
        buy(chain, sale, 2)  # still remembered
    time.sleep(0.25)
    assert buy(chain, sale, 2).total_fen == 990


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


def _commit_modes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each flash statement set synchronous_commit to (its last column), as it ran."""
    seen: list[Any] = []
    run = flash_path._execute_prepared

    def recording(sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
        row = run(sql, params)
        if sql.startswith("WITH info AS"):
            seen.append(row[-1])
        return row

    monkeypatch.setattr(flash_path, "_execute_prepared", recording)
    return seen


@pytest.mark.django_db(transaction=True)
def test_asynchronous_commit_is_the_flash_orders_own(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a transaction the statement commits asynchronously, and only itself: the
    connection's next transaction is synchronous again. Inside a caller's transaction the
    caller's setting stands."""
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku)
    modes = _commit_modes(monkeypatch)
    buy(chain, sale, 1)
    assert not connection.in_atomic_block
    assert _synchronous_commit() == "on"
    with transaction.atomic():
        buy(chain, sale, 2)
        assert _synchronous_commit() == "on"
    assert modes == ["off", None]
    assert Order.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_asynchronous_commit_can_be_turned_off(
    chain: Chain, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.FLASH_ORDER_ASYNC_COMMIT = False
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku)
    modes = _commit_modes(monkeypatch)
    buy(chain, sale, 1)
    assert modes == [None]
    assert Order.objects.count() == 1
