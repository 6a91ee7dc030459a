import pytest
from django.db import DatabaseError, connection, transaction

from shequn.catalog import actions
from shequn.catalog.models import StockItem, StockMovement
from shequn.catalog.pricing import unit_price_fen
from shequn.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from tests.conftest import Chain, make_sku


def test_tiered_price_picks_the_largest_tier_reached(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=1000)
    actions.set_price_tiers(acting=chain.admin, sku=sku, tiers=[(3, 900), (10, 800)])
    assert [unit_price_fen(sku, q) for q in (1, 2, 3, 9, 10, 50)] == [
        1000,
        1000,
        900,
        900,
        800,
        800,
    ]


@pytest.mark.parametrize(
    "tiers",
    [[(1, 900)], [(3, 1000)], [(3, 900), (5, 950)], [(3, 900), (3, 800)], [(3, 0)], [(3, 9.5)]],
)
def test_bad_tiers_refused_and_nothing_written(chain: Chain, tiers: list) -> None:
    sku = make_sku(chain, price_fen=1000)
    actions.set_price_tiers(acting=chain.admin, sku=sku, tiers=[(2, 990)])
    with pytest.raises(InvalidInput):
        actions.set_price_tiers(acting=chain.admin, sku=sku, tiers=tiers)
    assert list(sku.tiers.values_list("min_quantity", "unit_price_fen")) == [(2, 990)]


@pytest.mark.parametrize("price", [0, -1, 1.5, "10", True, 100_000_001])
def test_bad_sku_prices_refused(chain: Chain, price: object) -> None:
    sku = make_sku(chain)
    with pytest.raises(InvalidInput):
        actions.add_sku(acting=chain.admin, product=sku.product, code="X2", price_fen=price)  # type: ignore[arg-type]
    assert sku.product.skus.count() == 1


def test_duplicate_sku_code_refused(chain: Chain) -> None:
    sku = make_sku(chain)
    with pytest.raises(Conflict):
        actions.add_sku(acting=chain.admin, product=sku.product, code=sku.code, price_fen=100)


def test_only_hq_manages_the_catalog(chain: Chain) -> None:
    with pytest.raises(PermissionDenied):
        actions.create_supplier(acting=chain.manager_a, name="门店自建供应商")


def test_stock_adjustment_never_cuts_into_allocations(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 10})
    StockItem.objects.filter(store=chain.store_a, sku=sku).update(quantity_allocated=7)
    with pytest.raises(RuleViolation) as info:
        actions.adjust_stock(
            acting=chain.manager_a, store=chain.store_a, sku=sku, delta=-4, reason="damage"
        )
    assert info.value.code == "insufficient_stock"
    change = actions.adjust_stock(
        acting=chain.manager_a, store=chain.store_a, sku=sku, delta=-3, reason="damage"
    )
    assert (change.item.quantity, change.item.quantity_allocated) == (7, 7)
    assert change.movement.delta == -3


@pytest.mark.parametrize("delta", [0, 1.0, "5", True, 10_000_000])
def test_bad_deltas_refused(chain: Chain, delta: object) -> None:
    sku = make_sku(chain)
    before = StockMovement.objects.count()
    with pytest.raises(InvalidInput):
        actions.adjust_stock(
            acting=chain.manager_a, store=chain.store_a, sku=sku, delta=delta, reason="adjustment"
        )  # type: ignore[arg-type]
    assert StockMovement.objects.count() == before


def test_store_manager_cannot_touch_another_store(chain: Chain) -> None:
    sku = make_sku(chain)
    with pytest.raises(NotFound):
        actions.adjust_stock(
            acting=chain.manager_a, store=chain.store_b, sku=sku, delta=5, reason="receipt"
        )
    with pytest.raises(NotFound):
        actions.transfer_stock(
            acting=chain.manager_a, source=chain.store_a, target=chain.store_b, sku=sku, quantity=1
        )


def test_transfer_moves_both_sides_or_neither(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 10})
    out, into = actions.transfer_stock(
        acting=chain.region_manager_a,
        source=chain.store_a,
        target=chain.store_a2,
        sku=sku,
        quantity=4,
    )
    assert (out.item.quantity, into.item.quantity) == (6, 4)
    assert out.movement.reference == into.movement.reference
    with pytest.raises(RuleViolation):
        actions.transfer_stock(
            acting=chain.region_manager_a,
            source=chain.store_a,
            target=chain.store_a2,
            sku=sku,
            quantity=7,
        )
    quantities = dict(StockItem.objects.filter(sku=sku).values_list("store_id", "quantity"))
    assert quantities == {chain.store_a.pk: 6, chain.store_a2.pk: 4}


def test_database_refuses_over_allocation_and_movement_edits(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 5})
    with pytest.raises(DatabaseError), transaction.atomic():
        StockItem.objects.filter(store=chain.store_a, sku=sku).update(quantity_allocated=6)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_stockmovement SET delta = 999")
    assert list(StockMovement.objects.values_list("delta", flat=True)) == [5]
