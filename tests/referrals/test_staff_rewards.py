"""Staff rewards live in the sharers' ledger: a cashier's recruitment reward is booked with the
join that earned it (once, ever, per group and member); a group owner earns the chain's rate on
orders from their group, given back in proportion on refunds; both are paid with wages once per
month label, and a claw-back after payment leaves a flagged negative balance."""

from __future__ import annotations

from typing import Any

import pytest

from shequn.core.errors import DomainError, PermissionDenied
from shequn.groups import actions as groups
from shequn.groups.models import RecruitmentReward
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order
from shequn.referrals.ledger import chain_account, staff_account
from shequn.referrals.models import AccountKind, LedgerTransaction, TransactionKind
from shequn.referrals.policy import set_referral_settings
from shequn.referrals.staff_rewards import (
    book_recruitment_rewards,
    pay_staff_rewards,
)
from tests.conftest import Chain, make_group, make_sku, phone, staff_code, vouched
from tests.orders.test_pickup import pay
from tests.referrals.test_bulk_booking import ledger_is_sound
from tests.referrals.test_commission_lifecycle import member, refund_in_full

pytestmark = pytest.mark.django_db


def earned(chain: Chain, staff: Any) -> int:
    return staff_account(chain.hq.pk, staff.user).balance_fen


def test_a_cashiers_recruitment_rewards_are_booked_with_the_joins(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = staff_code(chain.cashier_a, group)
    for n in range(3):
        groups.join_by_invitation(
            code=groups.invitation_code(code), proof=vouched(groups.invitation_code(code), phone(n))
        )
    rewards = RecruitmentReward.objects.filter(staff=chain.cashier_a.user)
    assert rewards.count() == 3
    assert earned(chain, chain.cashier_a) == 150
    txns = LedgerTransaction.objects.filter(kind=TransactionKind.RECRUITMENT_REWARD)
    assert sorted(txns.values_list("key", flat=True)) == sorted(
        f"recruit:{pk}" for pk in rewards.values_list("pk", flat=True)
    )
    assert chain_account(chain.hq.pk, AccountKind.REWARD_EXPENSE).balance_fen == -150
    ledger_is_sound()


def group_order(chain: Chain, group: Any, sku: Any, n: int, units: int = 2) -> Order:
    order = place_order(
        member=member(chain, n),
        store=chain.store_a,
        lines=[LineRequest(sku.pk, units)],
        idempotency_key=f"g{n}",
        source_group=group,
    ).order
    assert pay(order, f"T{order.number}") == "paid"
    order.refresh_from_db()
    return order


@pytest.fixture
def owned_group(chain: Chain) -> Any:
    group = make_group(chain.manager_a, chain.store_a)
    type(group).objects.filter(pk=group.pk).update(owner=chain.operator_a.user)
    group.refresh_from_db()
    return group


def test_the_group_owner_earns_on_orders_from_the_group_and_gives_back_on_refunds(
    chain: Chain, owned_group: Any
) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    no_rate = group_order(chain, owned_group, sku, 1)
    assert earned(chain, chain.operator_a) == 0  # no rate set: nothing
    set_referral_settings(acting=chain.hq_operator, group_owner_bp=300)
    order = group_order(chain, owned_group, sku, 2)  # 7,980 fen at 3 % → 239
    assert earned(chain, chain.operator_a) == 239
    refund_in_full(chain, order, amount=3990)  # half back → floor(239 × 3990 / 7980) = 119 kept
    assert earned(chain, chain.operator_a) == 119
    refund_in_full(chain, order, amount=3990)
    assert earned(chain, chain.operator_a) == 0
    assert no_rate.pk != order.pk
    ledger_is_sound()


def test_rewards_are_paid_with_wages_once_and_a_later_clawback_is_flagged(
    chain: Chain, owned_group: Any
) -> None:
    set_referral_settings(acting=chain.hq_operator, group_owner_bp=500)
    sku = make_sku(chain, price_fen=2000, stock={chain.store_a: 50})
    order = group_order(chain, owned_group, sku, 1, units=1)  # 100 fen
    groups.join_by_invitation(
        code=groups.invitation_code(staff_code(chain.cashier_a, owned_group)),
        proof=vouched(groups.invitation_code(staff_code(chain.cashier_a, owned_group)), phone(9)),
    )
    with pytest.raises(PermissionDenied):
        pay_staff_rewards(acting=chain.manager_a, label="2026-11")
    assert pay_staff_rewards(acting=chain.hq_operator, label="2026-11") == {
        "staff": 2,
        "amount_fen": 150,
    }
    assert pay_staff_rewards(acting=chain.hq_operator, label="2026-11") == {
        "staff": 0,
        "amount_fen": 0,
    }
    assert chain_account(chain.hq.pk, AccountKind.PAYROLL_CLEARING).balance_fen == 150
    refund_in_full(chain, order)
    assert earned(chain, chain.operator_a) == -100  # netted against next month's wages
    clawback = LedgerTransaction.objects.get(kind=TransactionKind.GROUP_OWNER_REVERSE)
    assert clawback.flagged
    ledger_is_sound()


@pytest.mark.parametrize("rate", [-1, 3001, 2.5, "300"])
def test_bad_group_owner_rates_are_refused(chain: Chain, rate: Any) -> None:
    with pytest.raises(DomainError) as refused:
        set_referral_settings(acting=chain.hq_operator, group_owner_bp=rate)
    assert refused.value.code == "invalid_setting"
    with pytest.raises(PermissionDenied):
        set_referral_settings(acting=chain.manager_a, group_owner_bp=100)


def test_rewards_loaded_in_bulk_are_booked_once_like_the_joins_book_them(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = staff_code(chain.cashier_a, group)
    for n in range(2):
        groups.join_by_invitation(
            code=groups.invitation_code(code), proof=vouched(groups.invitation_code(code), phone(n))
        )
    rewards = list(RecruitmentReward.objects.select_related("group", "staff"))
    assert book_recruitment_rewards(rewards, chain.hq.pk) == 0  # booked by the joins already
    assert LedgerTransaction.objects.filter(kind=TransactionKind.RECRUITMENT_REWARD).count() == 2
    # a reward row written without the join's booking (as the demo's bulk load does)
    membership = groups.add_member_by_staff(
        acting=chain.manager_a, group=group, phone=phone(7)
    ).membership
    loaded = RecruitmentReward.objects.create(
        staff=chain.cashier_b.user,
        store=chain.store_a,
        group=group,
        member=membership.member,
        membership=membership,
        member_ordinal=3,
        amount_fen=50,
    )
    assert book_recruitment_rewards([loaded, *rewards], chain.hq.pk) == 1
    assert book_recruitment_rewards([loaded], chain.hq.pk) == 0
    assert earned(chain, chain.cashier_b) == 50
    assert earned(chain, chain.cashier_a) == 100
    ledger_is_sound()
