from datetime import timedelta

import pytest
from django.db.models import F

from shequn.catalog import actions as catalog_actions
from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.core.errors import Conflict, InvalidInput, NotFound, RuleViolation
from shequn.members.actions import find_or_register_member
from shequn.members.models import Member
from shequn.orders.actions import (
    LineRequest,
    cancel_unpaid_order,
    place_order,
    sweep_expired_orders,
)
from shequn.orders.models import Order, OrderStatus
from shequn.orders.states import transition
from tests.conftest import Chain, make_group, make_sku, phone


def member_of(chain: Chain, n: int = 1) -> Member:
    return find_or_register_member(store=chain.store_a, phone=phone(n)).member


def stock(sku_id: int, store_id: int) -> tuple[int, int]:
    item = StockItem.objects.get(sku_id=sku_id, store_id=store_id)
    return item.quantity, item.quantity_allocated


def test_place_order_prices_on_server_and_reserves(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=1000)
    catalog_actions.set_price_tiers(acting=chain.admin, sku=sku, tiers=[(3, 900)])
    group = make_group(chain.manager_a, chain.store_a)
    sharer = member_of(chain, 2)
    placed = place_order(
        member=member_of(chain),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 2), LineRequest(sku.pk, 1)],  # merged into 3 → tier price
        idempotency_key="k1",
        channel="group_share",
        source_group=group,
        sharer=sharer,
        content_ref="script-42",
    )
    order = placed.order
    assert placed.created
    assert order.total_fen == 2700
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert (order.channel, order.source_group, order.sharer, order.content_ref) == (
        "group_share",
        group,
        sharer,
        "script-42",
    )
    assert order.payment_deadline > timeutil.now()
    line = order.lines.get()
    assert (line.quantity, line.unit_price_fen, line.line_total_fen) == (3, 900, 2700)
    assert stock(sku.pk, chain.store_a.pk) == (100, 3)


def test_same_key_same_order_other_body_conflict(chain: Chain) -> None:
    sku = make_sku(chain)
    member = member_of(chain)
    first = place_order(
        member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 1)], idempotency_key="k"
    )
    again = place_order(
        member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 1)], idempotency_key="k"
    )
    assert not again.created
    assert again.order.pk == first.order.pk
    with pytest.raises(Conflict):
        place_order(
            member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 2)], idempotency_key="k"
        )
    assert Order.objects.count() == 1
    assert stock(sku.pk, chain.store_a.pk) == (100, 1)


def test_self_referral_is_not_attributed(chain: Chain) -> None:
    sku = make_sku(chain)
    member = member_of(chain)
    placed = place_order(
        member=member,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key="k",
        sharer=member,
    )
    assert placed.order.sharer is None


@pytest.mark.parametrize(
    ("lines", "error", "code"),
    [
        ([], InvalidInput, "empty_order"),
        ([(None, 0)], InvalidInput, "invalid_quantity"),
        ([(None, -1)], InvalidInput, "invalid_quantity"),
        ([(None, 1.5)], InvalidInput, "invalid_quantity"),
        ([(None, True)], InvalidInput, "invalid_quantity"),
        ([(None, 1000)], InvalidInput, "invalid_quantity"),
        ([(999999, 1)], NotFound, "unknown_sku"),
        ([(None, 101)], RuleViolation, "out_of_stock"),
    ],
)
def test_bad_lines_refused_and_nothing_written(
    chain: Chain, lines: list, error: type, code: str
) -> None:
    sku = make_sku(chain)
    member = member_of(chain)
    requests = [LineRequest(sku.pk if sku_id is None else sku_id, q) for sku_id, q in lines]
    with pytest.raises(error) as info:
        place_order(member=member, store=chain.store_a, lines=requests, idempotency_key="k")
    assert info.value.code == code
    assert Order.objects.count() == 0
    assert stock(sku.pk, chain.store_a.pk) == (100, 0)


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


def test_all_or_nothing_across_lines(chain: Chain) -> None:
    plenty = make_sku(chain, code="A")
    scarce = make_sku(chain, code="B", stock={chain.store_a: 1})
    with pytest.raises(RuleViolation):
        place_order(
            member=member_of(chain),
            store=chain.store_a,
            lines=[LineRequest(plenty.pk, 5), LineRequest(scarce.pk, 2)],
            idempotency_key="k",
        )
    assert stock(plenty.pk, chain.store_a.pk) == (100, 0)
    assert Order.objects.count() == 0


def test_product_not_stocked_at_the_store_is_refused(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_b: 10})  # only store B sells it
    with pytest.raises(RuleViolation) as info:
        place_order(
            member=member_of(chain),
            store=chain.store_a,
            lines=[LineRequest(sku.pk, 1)],
            idempotency_key="k",
        )
    assert info.value.code == "not_sold_here"


def test_another_chains_sku_is_unknown(chain: Chain) -> None:
    from tests.conftest import build_chain

    other = build_chain()
    foreign = make_sku(other, code="OTHER")
    with pytest.raises(NotFound):
        place_order(
            member=member_of(chain),
            store=chain.store_a,
            lines=[LineRequest(foreign.pk, 1)],
            idempotency_key="k",
        )


def test_inactive_product_is_not_on_sale(chain: Chain) -> None:
    sku = make_sku(chain)
    sku.product.is_active = False
    sku.product.save()
    with pytest.raises(RuleViolation) as info:
        place_order(
            member=member_of(chain),
            store=chain.store_a,
            lines=[LineRequest(sku.pk, 1)],
            idempotency_key="k",
        )
    assert info.value.code == "not_on_sale"


def test_illegal_transitions_refused(chain: Chain) -> None:
    sku = make_sku(chain)
    order = place_order(
        member=member_of(chain),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key="k",
    ).order
    with pytest.raises(RuleViolation) as info:
        transition(order.pk, OrderStatus.PENDING_PAYMENT, OrderStatus.FULFILLED)
    assert info.value.code == "illegal_transition"
    cancel_unpaid_order(order=order, member=order.member)
    with pytest.raises(RuleViolation):
        transition(order.pk, OrderStatus.CLOSED, OrderStatus.PAID)  # a closed order never re-opens
    assert not transition(
        order.pk, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID
    )  # stale writer loses
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED


def test_cancel_releases_once(chain: Chain) -> None:
    sku = make_sku(chain)
    order = place_order(
        member=member_of(chain),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 4)],
        idempotency_key="k",
    ).order
    cancel_unpaid_order(order=order, member=order.member)
    assert stock(sku.pk, chain.store_a.pk) == (100, 0)
    with pytest.raises(RuleViolation):
        cancel_unpaid_order(order=order, member=order.member)
    assert stock(sku.pk, chain.store_a.pk) == (100, 0)
    with pytest.raises(NotFound):
        cancel_unpaid_order(order=order, member=member_of(chain, 9))


def test_sweep_closes_only_due_orders_and_releases_once(chain: Chain) -> None:
    sku = make_sku(chain)
    due = place_order(
        member=member_of(chain, 1),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 2)],
        idempotency_key="a",
    ).order
    fresh = place_order(
        member=member_of(chain, 2),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 3)],
        idempotency_key="b",
    ).order
    Order.objects.filter(pk=due.pk).update(payment_deadline=timeutil.now() - timedelta(seconds=1))
    assert sweep_expired_orders() == 1
    assert sweep_expired_orders() == 0  # idempotent
    due.refresh_from_db()
    fresh.refresh_from_db()
    assert (due.status, due.close_reason) == (OrderStatus.CLOSED, "payment_timeout")
    assert fresh.status == OrderStatus.PENDING_PAYMENT
    assert stock(sku.pk, chain.store_a.pk) == (100, 3)


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


def test_staff_cancel_needs_permission(chain: Chain) -> None:
    sku = make_sku(chain)
    order = place_order(
        member=member_of(chain),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key="k",
    ).order
    from shequn.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        cancel_unpaid_order(order=order, acting=chain.cashier_a)
    cancel_unpaid_order(order=order, acting=chain.manager_a)
