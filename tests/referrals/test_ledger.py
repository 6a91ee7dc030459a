"""The ledger: balanced, append-only, idempotent; and a commission's life through it, checked by
a Hypothesis state machine over random sequences of pay, partial and full refunds, unfreeze,
withdraw, payout success and failure, and adjustments."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from shequn.core.errors import Conflict, InvalidInput
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order
from shequn.referrals import commission
from shequn.referrals.ledger import (
    InsufficientBalance,
    balance_from_postings,
    chain_account,
    post,
    sharer_account,
)
from shequn.referrals.models import Account, AccountKind, LedgerTransaction, Posting
from tests.conftest import Chain, make_sku, phone
from tests.orders.test_pickup import pay

pytestmark = pytest.mark.django_db
_numbers = itertools.count(1000)


def paid_order(chain: Chain, sku: Any, units: int = 2) -> Order:
    buyer = Member.objects.create(
        chain=chain.hq, phone=phone(next(_numbers)), home_store=chain.store_a
    )
    order = place_order(
        member=buyer,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, units)],
        idempotency_key=f"k{buyer.pk}",
    ).order
    pay(order, f"T{order.number}")
    order.refresh_from_db()
    return order


def sharer_of(chain: Chain) -> Member:
    return Member.objects.create(
        chain=chain.hq, phone=phone(next(_numbers)), home_store=chain.store_a
    )


def balances(sharer: Member) -> dict[str, int]:
    return {
        kind: sharer_account(sharer, kind).balance_fen
        for kind in (AccountKind.PENDING, AccountKind.AVAILABLE, AccountKind.IN_FLIGHT)
    }


def test_a_commission_from_payment_to_payout(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 100})
    order = paid_order(chain, sku)  # ¥79.80
    sharer = sharer_of(chain)
    assert commission.accrue(order=order, sharer=sharer, net_paid_fen=7980, rate_bp=1000) == 798
    assert commission.accrue(order=order, sharer=sharer, net_paid_fen=7980, rate_bp=1000) == 798
    assert balances(sharer) == {"pending": 798, "available": 0, "in_flight": 0}
    assert commission.unfreeze(order=order, sharer=sharer) == 798
    assert commission.unfreeze(order=order, sharer=sharer) == 0
    with pytest.raises(InsufficientBalance):
        commission.withdraw(sharer=sharer, amount_fen=799, request_key="w0")
    withdrawal = commission.withdraw(sharer=sharer, amount_fen=500, request_key="w1")
    assert balances(sharer) == {"pending": 0, "available": 298, "in_flight": 500}
    commission.settle_payout(withdrawal=withdrawal, succeeded=True)
    with pytest.raises(Conflict):  # a second, different outcome for the same payout
        commission.settle_payout(withdrawal=withdrawal, succeeded=False)
    assert balances(sharer) == {"pending": 0, "available": 298, "in_flight": 0}
    assert chain_account(chain.hq.pk, AccountKind.PAYOUT_CLEARING).balance_fen == 500
    assert chain_account(chain.hq.pk, AccountKind.COMMISSION_EXPENSE).balance_fen == -798


def test_a_refund_after_withdrawal_leaves_a_flagged_receivable_never_a_negative_balance(
    chain: Chain,
) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 100})
    order = paid_order(chain, sku)
    sharer = sharer_of(chain)
    commission.accrue(order=order, sharer=sharer, net_paid_fen=7980, rate_bp=1000)
    commission.unfreeze(order=order, sharer=sharer)
    commission.withdraw(sharer=sharer, amount_fen=700, request_key="w1")
    back = commission.reverse(
        order=order, sharer=sharer, net_paid_fen=0, rate_bp=1000, event_key="refund-1"
    )
    assert back == 798
    assert balances(sharer) == {"pending": 0, "available": 0, "in_flight": 700}
    assert sharer_account(sharer, AccountKind.RECEIVABLE).balance_fen == -700
    assert LedgerTransaction.objects.get(kind="reverse").flagged
    assert commission.net_commission(order, sharer) == 0


def test_bad_postings_are_refused_and_write_nothing(chain: Chain) -> None:
    sharer = sharer_of(chain)
    expense = chain_account(chain.hq.pk, AccountKind.COMMISSION_EXPENSE)
    available = sharer_account(sharer, AccountKind.AVAILABLE)
    for legs in ([(expense, -5), (available, 4)], [(expense, 0), (available, 0)], [(expense, 1)]):
        with pytest.raises(InvalidInput):
            post(chain_id=chain.hq.pk, kind="adjustment", key="bad", legs=legs)
    with pytest.raises(InvalidInput):
        post(
            chain_id=chain.hq.pk,
            kind="adjustment",
            key="bad",
            legs=[(expense, 1.5), (available, -1.5)],
        )  # type: ignore[list-item]
    with pytest.raises(InsufficientBalance):
        post(
            chain_id=chain.hq.pk, kind="adjustment", key="bad", legs=[(expense, 5), (available, -5)]
        )
    with pytest.raises(InvalidInput):
        commission.adjust(sharer=sharer, amount_fen=0, reason="x", request_key="a")
    with pytest.raises(InvalidInput):
        commission.withdraw(sharer=sharer, amount_fen=-1, request_key="w")
    with pytest.raises(InvalidInput):
        commission.commission_for(100, 10_001)
    assert not LedgerTransaction.objects.exists()
    assert not Posting.objects.exists()
    post(chain_id=chain.hq.pk, kind="adjustment", key="ok", legs=[(expense, -5), (available, 5)])
    with pytest.raises(Conflict):  # the same key with other amounts
        post(
            chain_id=chain.hq.pk, kind="adjustment", key="ok", legs=[(expense, -6), (available, 6)]
        )


def test_postings_and_transactions_are_append_only_even_in_raw_sql(chain: Chain) -> None:
    sharer = sharer_of(chain)
    post(
        chain_id=chain.hq.pk,
        kind="adjustment",
        key="k",
        legs=[
            (chain_account(chain.hq.pk, AccountKind.COMMISSION_EXPENSE), -5),
            (sharer_account(sharer, AccountKind.AVAILABLE), 5),
        ],
    )
    for sql in (
        "UPDATE referrals_posting SET amount_fen = amount_fen * 2",
        "DELETE FROM referrals_posting",
        "UPDATE referrals_ledgertransaction SET memo = 'x'",
        "DELETE FROM referrals_ledgertransaction",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert Posting.objects.aggregate(total=Sum("amount_fen"))["total"] == 0


# --- the state machine ------------------------------------------------------------------------
def ledger_is_consistent() -> None:
    """Every transaction sums to zero; every stored balance equals its postings; no account
    that may not go negative is negative."""
    unbalanced = (
        Posting.objects.values("transaction").annotate(total=Sum("amount_fen")).exclude(total=0)
    )
    assert not unbalanced.exists()
    for acc in Account.objects.all():
        assert acc.balance_fen == balance_from_postings(acc), acc
        assert acc.may_go_negative or acc.balance_fen >= 0, acc


def test_random_commission_lives_keep_the_ledger_true(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10_000})

    class CommissionLife(RuleBasedStateMachine):
        @initialize(
            rate=st.integers(0, 3000), units=st.lists(st.integers(1, 5), min_size=2, max_size=2)
        )
        def start(self, rate: int, units: list[int]) -> None:
            self.rate = rate
            self.sharer = sharer_of(chain)
            self.orders = [paid_order(chain, sku, n) for n in units]
            self.refunded = [0, 0]
            self.accrued = [False, False]
            self.withdrawals: list[LedgerTransaction] = []
            self.events = itertools.count()

        def net_paid(self, i: int) -> int:
            return self.orders[i].total_fen - self.refunded[i]

        @rule(i=st.integers(0, 1))
        def pay(self, i: int) -> None:
            commission.accrue(
                order=self.orders[i],
                sharer=self.sharer,
                net_paid_fen=self.net_paid(i),
                rate_bp=self.rate,
            )
            self.accrued[i] = True

        @rule(i=st.integers(0, 1), share=st.integers(1, 100))
        def refund(self, i: int, share: int) -> None:
            left = self.net_paid(i)
            if left == 0:
                return
            self.refunded[i] += max(1, left * share // 100)  # 100 % is a full refund
            commission.reverse(
                order=self.orders[i],
                sharer=self.sharer,
                net_paid_fen=self.net_paid(i),
                rate_bp=self.rate,
                event_key=f"r{next(self.events)}",
            )

        @rule(i=st.integers(0, 1))
        def unfreeze(self, i: int) -> None:
            commission.unfreeze(order=self.orders[i], sharer=self.sharer)

        @rule(amount=st.integers(1, 2000))
        def withdraw(self, amount: int) -> None:
            available = sharer_account(self.sharer, AccountKind.AVAILABLE).balance_fen
            try:
                self.withdrawals.append(
                    commission.withdraw(
                        sharer=self.sharer, amount_fen=amount, request_key=f"w{next(self.events)}"
                    )
                )
                assert amount <= available
            except InsufficientBalance:
                assert amount > available

        @rule(succeeded=st.booleans())
        def payout(self, succeeded: bool) -> None:
            if self.withdrawals:
                commission.settle_payout(withdrawal=self.withdrawals.pop(0), succeeded=succeeded)

        @rule(amount=st.integers(-500, 500).filter(bool))
        def adjustment(self, amount: int) -> None:
            available = sharer_account(self.sharer, AccountKind.AVAILABLE).balance_fen
            try:
                commission.adjust(
                    sharer=self.sharer,
                    amount_fen=amount,
                    reason="人工调整",
                    request_key=f"a{next(self.events)}",
                )
                assert available + amount >= 0
            except InsufficientBalance:
                assert available + amount < 0

        @invariant()
        def ledger_holds(self) -> None:
            if not hasattr(self, "sharer"):
                return
            ledger_is_consistent()
            for i, order in enumerate(self.orders):
                held = commission.net_commission(order, self.sharer)
                cap = commission.commission_for(self.net_paid(i), self.rate)
                assert held <= cap  # Σ commission ≤ rate × (paid − refunded), to the fen
                if self.accrued[i]:
                    assert held == min(cap, commission.commission_for(order.total_fen, self.rate))

    run_state_machine_as_test(
        CommissionLife,
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
