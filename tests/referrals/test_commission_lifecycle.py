"""A sharer's commission through the order's life: paid → pending (level 1 and 2), handed over
→ released after the freeze by the sweep, refunded → clawed back to the fen; rules by product,
category, role and default; at most two levels; approvals in scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog import actions as catalog
from shequn.core import timeutil
from shequn.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from shequn.members.models import Member
from shequn.orders.actions import (
    LineRequest,
    RefundReport,
    place_order,
    record_refund_result,
    request_refund,
    verify_pickup,
)
from shequn.orders.models import Order
from shequn.referrals.actions import (
    apply_as_sharer,
    decide_sharer,
    release_due_commissions,
    set_commission_rule,
)
from shequn.referrals.ledger import sharer_account
from shequn.referrals.models import AccountKind, CommissionRule, OrderCommission, Sharer
from tests.conftest import Chain, make_sku, phone
from tests.orders.test_pickup import pay

pytestmark = pytest.mark.django_db


def member(chain: Chain, n: int, store: Any = None) -> Member:
    return Member.objects.create(chain=chain.hq, phone=phone(n), home_store=store or chain.store_a)


def approved_sharer(chain: Chain, n: int, invited_by: Member | None = None) -> Member:
    sharer = apply_as_sharer(member=member(chain, n), invited_by=invited_by)
    decide_sharer(acting=chain.manager_a, sharer=sharer, approve=True)
    return sharer.member


def bought_through(chain: Chain, sku: Any, sharer: Member, n: int, units: int = 2) -> Order:
    order = place_order(
        member=member(chain, n),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, units)],
        idempotency_key=f"k{n}",
        sharer=sharer,
    ).order
    assert pay(order, f"T{order.number}") == "paid"
    order.refresh_from_db()
    return order


def held(sharer: Member) -> dict[str, int]:
    return {
        kind: sharer_account(sharer, kind).balance_fen
        for kind in (AccountKind.PENDING, AccountKind.AVAILABLE)
    }


def refund_in_full(chain: Chain, order: Order, amount: int | None = None) -> None:
    refund = request_refund(
        acting=chain.manager_a,
        order=order,
        amount_fen=amount or order.total_fen,
        reason="顾客退货",
    )
    record_refund_result(
        RefundReport(
            notification_id=f"EV-{refund.out_refund_no}",
            event_type="REFUND.SUCCESS",
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.amount_fen,
            mchid="m",
        ),
        expected_mchid="m",
    )


def test_paid_handed_over_released_and_two_levels_exactly(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000, 300])  # 10 % and 3 %
    parent = approved_sharer(chain, 1)
    child = approved_sharer(chain, 2, invited_by=parent)
    grandchild = approved_sharer(chain, 3, invited_by=child)
    order = bought_through(chain, sku, grandchild, 10)  # ¥79.80
    rows = {row.level: row for row in OrderCommission.objects.filter(order=order)}
    assert {level: (row.member_id, row.accrued_fen) for level, row in rows.items()} == {
        1: (grandchild.pk, 798),
        2: (child.pk, 239),  # floor(7980 × 3 %); the grandparent gets nothing: two levels
    }
    assert held(grandchild) == {"pending": 798, "available": 0}
    assert held(parent) == {"pending": 0, "available": 0}

    done = verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=order.pickup_code)
    release_at = OrderCommission.objects.get(order=order, level=1).unfreeze_at
    assert release_at is not None
    assert release_at - done.fulfilled_at == timedelta(days=7)  # type: ignore[operator]
    assert release_due_commissions() == 0  # not yet
    later = timeutil.now() + timedelta(days=8)
    assert release_due_commissions(now=later) == 2
    assert release_due_commissions(now=later) == 0
    assert held(grandchild) == {"pending": 0, "available": 798}
    assert held(child) == {"pending": 0, "available": 239}

    refund_in_full(chain, order, amount=3990)  # half back after release: from available
    assert held(grandchild) == {"pending": 0, "available": 399}  # floor(3990 × 10 %)
    assert held(child) == {"pending": 0, "available": 119}


def test_a_refund_before_handover_takes_everything_back(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    sharer = approved_sharer(chain, 1)
    order = bought_through(chain, sku, sharer, 10)
    refund_in_full(chain, order)
    assert held(sharer) == {"pending": 0, "available": 0}
    assert release_due_commissions(now=timeutil.now() + timedelta(days=30)) == 0


def test_no_commission_without_an_approved_sharer_or_a_rule(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    pending = apply_as_sharer(member=member(chain, 1)).member
    assert not OrderCommission.objects.filter(order=bought_through(chain, sku, pending, 10))
    approved = approved_sharer(chain, 2)
    assert not OrderCommission.objects.filter(order=bought_through(chain, sku, approved, 11))
    set_commission_rule(acting=chain.hq_operator, rates_bp=[500])
    assert OrderCommission.objects.filter(order=bought_through(chain, sku, approved, 12)).exists()


def test_rules_by_product_category_role_and_default(chain: Chain) -> None:
    moxa = make_sku(chain, code="MOXA-1", price_fen=1000, stock={chain.store_a: 50})
    soap = make_sku(chain, code="SOAP-1", price_fen=1000, stock={chain.store_a: 50})
    health = catalog.get_or_create_category(acting=chain.admin, name="养生")
    type(moxa.product).objects.filter(pk=moxa.product_id).update(category=health)
    set_commission_rule(acting=chain.hq_operator, rates_bp=[100])  # default 1 %
    set_commission_rule(acting=chain.hq_operator, rates_bp=[500], category=health)  # 5 %
    set_commission_rule(acting=chain.hq_operator, rates_bp=[2000], product=soap.product)  # 20 %
    sharer = approved_sharer(chain, 1)
    order = place_order(
        member=member(chain, 10),
        store=chain.store_a,
        lines=[LineRequest(moxa.pk, 1), LineRequest(soap.pk, 1)],
        idempotency_key="mixed",
        sharer=sharer,
    ).order
    pay(order, f"T{order.number}")
    row = OrderCommission.objects.get(order=order)
    assert row.rate_bp == (500 * 1000 + 2000 * 1000) // 2000  # blended by line totals
    assert row.accrued_fen == 2000 * 1250 // 10_000


@pytest.mark.parametrize(
    ("rates", "extra", "error"),
    [
        ([1000, 300, 100], {}, "too_many_levels"),
        ([-1], {}, "invalid_rate"),
        ([6000, 5000], {}, "invalid_rate"),
        ([], {}, "invalid_rate"),
        ([10.5], {}, "invalid_rate"),
        ([100], {"pyramid_role": "pyramid"}, "invalid_target"),
        ([-1], {"kind": "fixed"}, "invalid_rate"),
        ([60_000, 50_000], {"kind": "fixed"}, "invalid_rate"),
        ([100], {"kind": "per_order"}, "invalid_rule_kind"),
    ],
)
def test_bad_rules_are_refused(
    chain: Chain, rates: list[Any], extra: dict[str, Any], error: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        set_commission_rule(acting=chain.hq_operator, rates_bp=rates, **extra)
    assert refused.value.code == error
    assert not CommissionRule.objects.exists()


def test_rule_permissions_and_sharer_approvals_in_scope(chain: Chain) -> None:
    with pytest.raises(PermissionDenied):
        set_commission_rule(acting=chain.manager_a, rates_bp=[100])
    applicant = apply_as_sharer(member=member(chain, 1))
    with pytest.raises(NotFound):  # store B's manager cannot decide for a store-A member
        decide_sharer(acting=chain.manager_b, sharer=applicant, approve=True)
    with pytest.raises(PermissionDenied):
        decide_sharer(acting=chain.cashier_a, sharer=applicant, approve=True)
    decide_sharer(acting=chain.manager_a, sharer=applicant, approve=False)
    with pytest.raises(DomainError) as twice:
        decide_sharer(acting=chain.manager_a, sharer=applicant, approve=True)
    assert twice.value.code == "already_decided"
    someone = member(chain, 2)
    with pytest.raises(InvalidInput):
        apply_as_sharer(member=someone, invited_by=someone)
    with pytest.raises(NotFound):  # only an approved sharer can invite
        apply_as_sharer(member=someone, invited_by=applicant.member)
    assert Sharer.objects.count() == 1


def test_fixed_amount_rules_pay_per_unit_on_what_was_paid(chain: Chain) -> None:
    moxa = make_sku(chain, code="MOXA-F", price_fen=3990, stock={chain.store_a: 50})
    soap = make_sku(chain, code="SOAP-F", price_fen=1000, stock={chain.store_a: 50})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000, 300])  # default 10 % + 3 %
    set_commission_rule(  # moxa: ¥2.00 + ¥0.50 a box
        acting=chain.hq_operator, rates_bp=[200, 50], product=moxa.product, kind="fixed"
    )
    parent = approved_sharer(chain, 1)
    sharer = approved_sharer(chain, 2, invited_by=parent)
    order = place_order(
        member=member(chain, 10),
        store=chain.store_a,
        lines=[LineRequest(moxa.pk, 3), LineRequest(soap.pk, 2)],
        idempotency_key="fixed",
        sharer=sharer,
    ).order
    pay(order, f"T{order.number}")
    level1 = OrderCommission.objects.get(order=order, member=sharer)
    level2 = OrderCommission.objects.get(order=order, member=parent)
    assert level1.accrued_fen == 3 * 200 + 2000 * 1000 // 10_000  # 600 + 200, to the fen
    assert level2.accrued_fen == 3 * 50 + 2000 * 300 // 10_000  # 150 + 60
    refund_in_full(chain, order, amount=order.total_fen // 2)  # half back: half the commission
    assert held(sharer)["pending"] == 400
    assert held(parent)["pending"] == 105


def test_a_fixed_amount_never_pays_more_than_the_line(chain: Chain) -> None:
    cheap = make_sku(chain, code="CHEAP", price_fen=150, stock={chain.store_a: 50})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[100, 100], kind="fixed")
    parent = approved_sharer(chain, 1)
    sharer = approved_sharer(chain, 2, invited_by=parent)
    order = bought_through(chain, cheap, sharer, 10, units=2)  # 300 fen; ¥1 + ¥1 a unit asked
    assert held(sharer)["pending"] == 200
    assert held(parent)["pending"] == 100  # what is left of the line, not 200
    assert order.total_fen == 300
