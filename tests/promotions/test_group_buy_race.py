"""Group-buy races and crashes, with real threads (one connection each) and a real sweeper process.

- The Nth seat: many payers who all clicked the same team pay at once → exactly ``size`` seats in
  it, the rest re-routed (never over-filled, every payer seated exactly once).
- Two sweepers at once, and a sweeper killed with SIGKILL mid-run and started again: every payer
  of a failed team gets exactly one refund.
"""

from __future__ import annotations

import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.models import Count, Q, Sum

from shequn.core import timeutil
from shequn.orders.models import Order, Refund
from shequn.promotions.actions import sweep_group_buy_teams
from shequn.promotions.models import GroupBuySeat, GroupBuyTeam, SeatStatus, TeamStatus
from tests.conftest import build_chain, make_sku
from tests.orders.test_pickup import pay
from tests.orders.test_sweeper_crash import kill_sweeper_once, sweeper
from tests.promotions.test_group_buy import campaign_for, order_in, paid_in, seat_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_the_nth_seat_goes_to_exactly_one_payer_and_the_rest_are_rerouted() -> None:
    size, payers, workers = (10, 80, 16) if connection.vendor == "postgresql" else (5, 24, 6)
    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: payers + 10})
    campaign = campaign_for(chain, sku, team_size=size, per_member_limit=1, per_order_limit=1)
    team = seat_of(paid_in(chain, campaign, 0)).team
    assert team is not None
    orders = [order_in(chain, campaign, n, team=team) for n in range(1, payers + 1)]

    def settle(order: Order) -> str:
        try:
            return pay(order, f"T{order.number}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = Counter(pool.map(settle, orders))
    assert outcomes == Counter({"paid": payers}), outcomes

    team.refresh_from_db()
    assert (team.joined, team.status) == (size, TeamStatus.SUCCEEDED)
    seats = GroupBuySeat.objects.filter(order__in=orders)
    assert seats.filter(team=team).count() == size - 1  # the leader holds the first seat
    assert seats.exclude(status=SeatStatus.SEATED).count() == 0  # every payer has a seat
    teams = GroupBuyTeam.objects.filter(campaign=campaign).annotate(
        seated=Count("seats", filter=Q(seats__status=SeatStatus.SEATED))
    )
    for each in teams:
        assert each.joined == each.seated <= each.size, (each.pk, each.joined, each.seated)
    assert teams.aggregate(total=Sum("joined"))["total"] == payers + 1
    # re-routing fills the fullest teams first: at most one team is left forming
    assert teams.filter(status=TeamStatus.FORMING).count() <= 1


def failed_teams(teams: int, payers_per_team: int) -> int:
    """``teams`` teams of 3 at store A, each with ``payers_per_team`` paid seats, all past their
    deadline. Returns the number of paid seats (each owed one refund)."""
    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: teams * payers_per_team + 5})
    campaign = campaign_for(chain, sku, per_member_limit=1, per_order_limit=1)
    n = 0
    for _ in range(teams):
        team = seat_of(paid_in(chain, campaign, n)).team
        n += 1
        for _ in range(payers_per_team - 1):
            paid_in(chain, campaign, n, team=team)
            n += 1
    GroupBuyTeam.objects.update(deadline=timeutil.now() - timedelta(seconds=1))
    return n


def assert_one_refund_per_seat(seats: int) -> None:
    assert Refund.objects.count() == seats
    assert (
        Refund.objects.values("order").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    )  # never two for one order
    opened = GroupBuySeat.objects.filter(status=SeatStatus.REFUND_OPENED)
    assert opened.count() == seats
    assert opened.filter(refund__isnull=True).count() == 0
    assert GroupBuyTeam.objects.exclude(status=TeamStatus.FAILED).count() == 0


def test_two_sweepers_at_once_open_each_refund_once() -> None:
    seats = failed_teams(teams=12, payers_per_team=2)

    def sweep(_: int) -> int:
        try:
            return sweep_group_buy_teams(batch=5)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        acted = sum(pool.map(sweep, range(2)))
    assert acted == 12 + seats  # each team decided once, each refund opened once
    assert_one_refund_per_seat(seats)


def test_kill_9_mid_sweep_then_restart_refunds_every_payer_exactly_once() -> None:
    seats = failed_teams(teams=20, payers_per_team=2)

    killed_at = kill_sweeper_once(Refund.objects.count, at_least=8)
    assert 8 <= killed_at < seats, f"the kill must land mid-run ({killed_at} refunds)"

    restarted = sweeper()
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err
    assert f"promotions.group_buy_teams: {seats - killed_at}" in out
    assert_one_refund_per_seat(seats)


def test_crash_after_writing_a_refund_before_commit_leaves_nothing_half_done() -> None:
    """The sweeper dies between opening a refund and committing it: that refund is gone with
    the transaction, the seat is still owed, and the next sweep opens it once."""
    seats = failed_teams(teams=3, payers_per_team=2)
    crashed = sweeper(env={"SHEQUN_FAULT": "group_buy.refund_before_commit"})
    crashed.communicate(timeout=60)
    assert crashed.returncode == -signal.SIGKILL
    assert Refund.objects.count() == 0
    assert GroupBuySeat.objects.filter(status=SeatStatus.REFUND_DUE).count() == seats
    restarted = sweeper()
    _, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    assert_one_refund_per_seat(seats)
