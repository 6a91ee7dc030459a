"""The proposal sweep across crashes and races, with the real `shequn sweep` in a subprocess:
killed with SIGKILL mid-run and started again, two at once, or dying just before a commit —
a missed proposal refunds every deposit exactly once, a reached one makes one production order."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.db.models import Count

from shequn.core import timeutil
from shequn.demand.models import (
    PreOrder,
    PreOrderStatus,
    ProductionOrder,
    Proposal,
    ProposalStatus,
)
from shequn.demand.proposals import sweep_proposals
from shequn.orders.models import Refund
from tests.conftest import build_chain
from tests.demand.test_proposals import join, make_c2b, paid, published
from tests.orders.test_sweeper_crash import kill_sweeper_once, sweeper

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def due_proposal(payers: int, min_units: int) -> Proposal:
    """A published proposal with ``payers`` paid one-unit pre-orders, past its deadline."""
    chain = build_chain()
    c2b = make_c2b(chain)
    proposal = published(chain, c2b, min_units=min_units)
    for n in range(payers):
        paid(proposal, join(c2b["group_a"], 100 + n), 1)
    Proposal.objects.filter(pk=proposal.pk).update(deadline=timeutil.now() - timedelta(seconds=1))
    return proposal


def assert_one_refund_per_preorder(payers: int) -> None:
    assert Refund.objects.count() == payers
    assert Refund.objects.values("order").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    refunded = PreOrder.objects.filter(status=PreOrderStatus.REFUNDED)
    assert refunded.count() == payers
    assert refunded.filter(refund__isnull=True).count() == 0
    assert sum(Refund.objects.values_list("amount_fen", flat=True)) == payers * 500


def test_kill_9_mid_sweep_then_restart_refunds_every_deposit_exactly_once() -> None:
    payers = 40
    due_proposal(payers, min_units=1000)

    killed_at = kill_sweeper_once(Refund.objects.count, at_least=8)
    assert 8 <= killed_at < payers, f"the kill must land mid-run ({killed_at} refunds)"
    assert Proposal.objects.get().status == ProposalStatus.FAILED  # decided before the kill

    restarted = sweeper()
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err
    assert f"demand.proposals: {payers - killed_at}" in out
    assert_one_refund_per_preorder(payers)


def test_two_sweepers_at_once_decide_once_and_refund_each_deposit_once() -> None:
    payers = 24
    due_proposal(payers, min_units=1000)

    def sweep(_: int) -> int:
        try:
            return sweep_proposals(batch=5)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        acted = sum(pool.map(sweep, range(2)))
    assert acted == 1 + payers
    assert_one_refund_per_preorder(payers)


@pytest.mark.parametrize(
    ("fault", "min_units"),
    [
        ("proposals.decide_before_commit", 1000),
        ("proposals.decide_before_commit", 3),
        ("proposals.refund_before_commit", 1000),
    ],
)
def test_a_crash_before_commit_leaves_nothing_half_done(fault: str, min_units: int) -> None:
    """The sweeper dies with the decision (or a refund) written but not committed: it is gone
    with the transaction, and the next sweep does it once."""
    payers = 5
    due_proposal(payers, min_units=min_units)
    crashed = sweeper(env={"SHEQUN_FAULT": fault})
    crashed.communicate(timeout=60)
    assert crashed.returncode == -signal.SIGKILL
    assert Refund.objects.count() == 0
    assert ProductionOrder.objects.count() == 0
    if fault == "proposals.decide_before_commit":
        assert Proposal.objects.get().status == ProposalStatus.OPEN
    restarted = sweeper()
    _, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    if min_units <= payers:
        production = ProductionOrder.objects.get()
        assert production.total_units == payers
        assert PreOrder.objects.filter(status=PreOrderStatus.CONVERTED).count() == payers
        assert Refund.objects.count() == 0
    else:
        assert_one_refund_per_preorder(payers)
