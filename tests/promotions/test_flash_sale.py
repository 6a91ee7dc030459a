"""Flash sales: created with checked numbers, sold at the sale price within quota and limits,
units given back exactly once when an order closes unpaid or is refunded before pickup."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from shequn.members.actions import find_or_register_member
from shequn.orders.actions import (
    LineRequest,
    cancel_unpaid_order,
    place_order,
    request_refund,
    sweep_expired_orders,
    verify_pickup,
)
from shequn.orders.models import Order
from shequn.promotions.actions import cancel_flash_sale, create_flash_sale
from shequn.promotions.models import FlashSale, FlashSaleBuyer, FlashSaleQuota
from tests.conftest import Chain, build_chain, make_sku, phone
from tests.orders.test_pickup import pay

pytestmark = pytest.mark.django_db


def sale_for(chain: Chain, sku: Any, **overrides: Any) -> FlashSale:
    now = timeutil.now()
    params: dict[str, Any] = {
        "acting": chain.hq_operator,
        "sku": sku,
        "name": "艾草贴秒杀",
        "price_fen": 990,
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(hours=1),
        "per_member_limit": 2,
        "per_order_limit": 2,
        "chain_quota": 5,
    }
    params.update(overrides)
    return create_flash_sale(**params)


def buy(
    chain: Chain, sale: FlashSale, n: int, quantity: int = 1, key: str = "k", store: Any = None
) -> Order:
    member = find_or_register_member(store=chain.store_a, phone=phone(n)).member
    return place_order(
        member=member,
        store=store or chain.store_a,
        lines=[LineRequest(sale.sku_id, quantity)],
        idempotency_key=key,
        flash_sale_id=sale.pk,
    ).order


def refused(call: Any) -> str:
    with pytest.raises(DomainError) as info:
        call()
    return info.value.code


def test_sale_price_quota_and_limits(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    sale = sale_for(chain, sku)
    order = buy(chain, sale, 1, quantity=2)
    assert order.total_fen == 1980  # 2 × ¥9.90, not the list price
    assert order.lines.get().flash_quota_id == sale.quotas.get().pk
    assert buy(chain, sale, 1, quantity=2).pk == order.pk  # the same key: the same order
    assert refused(lambda: buy(chain, sale, 1, key="k2")) == "flash_member_limit"
    assert refused(lambda: buy(chain, sale, 2, quantity=3)) == "flash_order_limit"
    buy(chain, sale, 2, quantity=2)
    buy(chain, sale, 3, quantity=1)
    assert refused(lambda: buy(chain, sale, 4)) == "flash_sold_out"
    assert sale.quotas.get().sold == 5
    assert not FlashSaleBuyer.objects.filter(
        sale=sale, member__phone=phone(4), bought__gt=0
    ).exists()
    assert StockItem.objects.get(store=chain.store_a, sku=sku).quantity_allocated == 5


def test_window_cancel_scope_and_foreign_chain_are_refused(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50, chain.store_b: 50})
    now = timeutil.now()
    later = sale_for(
        chain, sku, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )
    assert refused(lambda: buy(chain, later, 1)) == "flash_not_started"
    per_store = sale_for(chain, sku, chain_quota=None, store_quotas={chain.store_a: 3})
    assert refused(lambda: buy(chain, per_store, 1, store=chain.store_b)) == "flash_not_here"
    assert buy(chain, per_store, 1).total_fen == 990
    cancel_flash_sale(acting=chain.hq_operator, sale=per_store)
    assert refused(lambda: buy(chain, per_store, 2)) == "flash_cancelled"
    FlashSale.objects.filter(pk=later.pk).update(
        starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1)
    )
    assert refused(lambda: buy(chain, later, 3)) == "flash_ended"
    other = build_chain()
    foreign = sale_for(other, make_sku(other, price_fen=3990))
    assert refused(lambda: buy(chain, foreign, 4)) == "unknown_flash_sale"
    assert Order.objects.filter(store=chain.store_b).count() == 0


def test_units_come_back_once_on_cancel_timeout_and_refund_but_not_after_pickup(
    chain: Chain, wechatpay: Any
) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    sale = sale_for(chain, sku, per_member_limit=1, per_order_limit=1)
    quota = sale.quotas.get()

    cancelled = buy(chain, sale, 1)
    cancel_unpaid_order(order=cancelled, member=cancelled.member)
    timed_out = buy(chain, sale, 2)
    Order.objects.filter(pk=timed_out.pk).update(payment_deadline=timeutil.now())
    assert sweep_expired_orders() == 1
    assert sweep_expired_orders() == 0
    quota.refresh_from_db()
    assert quota.sold == 0
    assert set(FlashSaleBuyer.objects.filter(sale=sale).values_list("bought", flat=True)) == {0}
    buy(chain, sale, 1, key="again")  # the member may buy again after cancelling

    refunded = buy(chain, sale, 3)
    pay(refunded, "4200-flash-1")
    refund = request_refund(acting=chain.manager_a, order=refunded, amount_fen=990, reason="不要了")
    from shequn.orders.actions import RefundReport, record_refund_result

    record_refund_result(
        RefundReport("EV-r1", "REFUND.SUCCESS", refund.out_refund_no, 990, "1900000001"),
        expected_mchid="1900000001",
    )
    picked = buy(chain, sale, 4)
    pay(picked, "4200-flash-2")
    picked.refresh_from_db()
    verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=picked.pickup_code)
    quota.refresh_from_db()
    assert quota.sold == 2  # "again" and the picked-up one; the refunded unit came back
    assert FlashSaleBuyer.objects.get(sale=sale, member=refunded.member).bought == 0


def test_bad_sale_definitions_write_nothing(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990)
    now = timeutil.now()
    bad: list[dict[str, Any]] = [
        {"price_fen": 0},
        {"price_fen": -5},
        {"price_fen": 9.9},
        {"price_fen": 3990},  # not below the list price
        {"price_fen": 10**12},
        {"ends_at": now - timedelta(minutes=1), "starts_at": now - timedelta(hours=1)},
        {"ends_at": now, "starts_at": now + timedelta(hours=1)},
        {"ends_at": now + timedelta(days=40)},
        {"per_member_limit": 0},
        {"per_order_limit": 10_000},
        {"chain_quota": 0},
        {"chain_quota": 10**9},
        {"chain_quota": None},
        {"store_quotas": {chain.store_a: 5}},  # both
        {"name": ""},
    ]
    for overrides in bad:
        with pytest.raises(InvalidInput):
            sale_for(chain, sku, **overrides)
    other = build_chain()
    with pytest.raises(NotFound):  # another chain's SKU
        sale_for(chain, make_sku(other, code="F-9", price_fen=3990))
    with pytest.raises(NotFound):  # another chain's store
        sale_for(chain, sku, chain_quota=None, store_quotas={other.store_a: 3})
    with pytest.raises(PermissionDenied):
        sale_for(chain, sku, acting=chain.manager_a)
    assert not FlashSale.objects.exists()
    assert not FlashSaleQuota.objects.exists()


def test_an_empty_shelf_refuses_without_using_quota_and_mixed_orders_work(chain: Chain) -> None:
    sku = make_sku(chain, code="HOT", price_fen=3990, stock={chain.store_a: 1})
    other = make_sku(chain, code="SIDE", price_fen=500, stock={chain.store_a: 10})
    sale = sale_for(chain, sku, per_member_limit=1, per_order_limit=1)
    member = find_or_register_member(store=chain.store_a, phone=phone(1)).member
    mixed = place_order(
        member=member,
        store=chain.store_a,
        lines=[LineRequest(other.pk, 2), LineRequest(sku.pk, 1)],
        idempotency_key="mixed",
        flash_sale_id=sale.pk,
    ).order
    assert mixed.total_fen == 990 + 2 * 500
    assert refused(lambda: buy(chain, sale, 2)) == "out_of_stock"  # quota left, shelf empty
    assert sale.quotas.get().sold == 1
    assert not FlashSaleBuyer.objects.filter(
        sale=sale, member__phone=phone(2), bought__gt=0
    ).exists()
    allocated = dict(
        StockItem.objects.filter(store=chain.store_a).values_list("sku__code", "quantity_allocated")
    )
    assert allocated == {"HOT": 1, "SIDE": 2}
