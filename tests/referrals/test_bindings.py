"""Attribution and binding: a fresh share link wins (last touch); without one, an order credits
the sharer the customer is bound to — per the chain's mode: none, N days, permanent, new
customers only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.core.errors import InvalidInput, PermissionDenied
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order
from shequn.referrals.actions import set_commission_rule
from shequn.referrals.models import CustomerBinding
from shequn.referrals.policy import set_referral_settings
from tests.conftest import Chain, make_sku
from tests.orders.test_pickup import pay
from tests.referrals.test_commission_lifecycle import approved_sharer, member

pytestmark = pytest.mark.django_db


def buy(chain: Chain, sku: Any, buyer: Member, key: str, sharer: Member | None = None) -> Order:
    order = place_order(
        member=buyer,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key=key,
        sharer=sharer,
    ).order
    pay(order, f"T{order.number}")
    order.refresh_from_db()
    return order


@pytest.fixture
def shop(chain: Chain) -> tuple[Chain, Any, Member, Member, Member]:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 100})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    return chain, sku, approved_sharer(chain, 1), approved_sharer(chain, 2), member(chain, 10)


def test_without_binding_only_the_link_counts(shop: tuple[Any, ...]) -> None:
    chain, sku, first, _, buyer = shop
    assert buy(chain, sku, buyer, "a", sharer=first).sharer_id == first.pk
    assert buy(chain, sku, buyer, "b").sharer_id is None
    assert not CustomerBinding.objects.exists()


def test_days_binding_credits_the_first_sharer_until_it_expires(shop: tuple[Any, ...]) -> None:
    chain, sku, first, second, buyer = shop
    set_referral_settings(acting=chain.hq_operator, binding_mode="days", binding_days=30)
    buy(chain, sku, buyer, "a", sharer=first)
    assert buy(chain, sku, buyer, "b").sharer_id == first.pk  # no link: the bound sharer
    assert buy(chain, sku, buyer, "c", sharer=second).sharer_id == second.pk  # last touch
    assert CustomerBinding.objects.get().sharer_id == first.pk  # the first keeps the binding
    CustomerBinding.objects.update(expires_at=CustomerBinding.objects.get().bound_at)
    assert buy(chain, sku, buyer, "d").sharer_id is None  # expired
    buy(chain, sku, buyer, "e", sharer=second)  # a new link binds anew
    binding = CustomerBinding.objects.get()
    assert binding.sharer_id == second.pk
    assert binding.expires_at is not None
    assert binding.expires_at - binding.bound_at == timedelta(days=30)


def test_permanent_and_new_customers_only(shop: tuple[Any, ...]) -> None:
    chain, sku, first, second, buyer = shop
    set_referral_settings(acting=chain.hq_operator, binding_mode="permanent")
    buy(chain, sku, buyer, "a", sharer=first)
    assert CustomerBinding.objects.get().expires_at is None
    set_referral_settings(acting=chain.hq_operator, binding_mode="new_only")
    regular = member(chain, 11)
    buy(chain, sku, regular, "b")  # a first order without any sharer
    buy(chain, sku, regular, "c", sharer=second)  # not new any more: no binding
    assert not CustomerBinding.objects.filter(member=regular).exists()
    newcomer = member(chain, 12)
    buy(chain, sku, newcomer, "d", sharer=second)
    assert CustomerBinding.objects.get(member=newcomer).sharer_id == second.pk
    set_referral_settings(acting=chain.hq_operator, binding_mode="none")
    assert buy(chain, sku, newcomer, "e").sharer_id is None  # bindings stop counting


@pytest.mark.parametrize(
    ("mode", "days"), [("forever", 30), ("days", 0), ("days", 400), ("days", "30")]
)
def test_bad_settings_are_refused(chain: Chain, mode: str, days: Any) -> None:
    with pytest.raises(InvalidInput):
        set_referral_settings(acting=chain.hq_operator, binding_mode=mode, binding_days=days)
    with pytest.raises(PermissionDenied):
        set_referral_settings(acting=chain.manager_a, binding_mode="days")
