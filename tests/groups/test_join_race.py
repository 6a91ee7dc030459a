"""600 customers scan the same cashier code at once into a 500-seat group.

Real threads, one database connection each, against the real database (SQLite file or
PostgreSQL): exactly 500 get in, nobody twice, and the rewards are exactly the tiered sum.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.db.models import Sum

from shequn.core.errors import DomainError
from shequn.groups import actions
from shequn.groups.models import CustomerGroup, GroupMembership, RecruitmentReward
from shequn.groups.rewards import recruitment_reward_fen
from tests.conftest import build_chain, make_group, phone, staff_code, vouched

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

ATTEMPTS = 600
CAPACITY = 500


def _workers() -> int:
    return 32 if connection.vendor == "postgresql" else 12


def test_600_concurrent_joins_fill_500_exactly() -> None:
    chain = build_chain()
    group = make_group(chain.manager_a, chain.store_a, capacity=CAPACITY)
    code = actions.invitation_code(staff_code(chain.cashier_a, group))

    def attempt(n: int) -> str:
        try:
            # Every 10th customer scans twice: duplicates must be refused, never double-counted.
            actions.join_by_invitation(code=code, proof=vouched(code, phone(n % 550)))
            return "joined"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        outcomes = Counter(pool.map(attempt, range(ATTEMPTS)))

    assert outcomes["joined"] == CAPACITY, outcomes
    assert set(outcomes) <= {"joined", "group_full", "already_member"}, outcomes
    group = CustomerGroup.objects.get(pk=group.pk)
    assert group.member_count == CAPACITY
    active = GroupMembership.objects.filter(group=group, left_at__isnull=True)
    assert active.count() == CAPACITY
    assert active.values("member").distinct().count() == CAPACITY
    rewards = RecruitmentReward.objects.filter(group=group)
    assert sorted(rewards.values_list("member_ordinal", flat=True)) == list(range(1, CAPACITY + 1))
    expected = sum(recruitment_reward_fen(i) for i in range(1, CAPACITY + 1))
    assert expected == 100 * 50 + 400 * 100
    assert rewards.aggregate(total=Sum("amount_fen"))["total"] == expected


def test_concurrent_store_code_joins_fall_through_to_groups_with_room() -> None:
    """A store code picks the fullest group with room; when it fills under a race the join moves
    on to the next group instead of failing: 20 customers, 4 groups of 5 → all 20 get in."""
    chain = build_chain()
    groups = [
        make_group(chain.manager_a, chain.store_a, name=f"群{i}", capacity=5) for i in range(4)
    ]
    code = actions.invitation_code(
        actions.create_invitation(acting=chain.manager_a, kind="store", store=chain.store_a)
    )

    def attempt(n: int) -> str:
        try:
            actions.join_by_invitation(code=code, proof=vouched(code, phone(1000 + n)))
            return "joined"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        outcomes = Counter(pool.map(attempt, range(20)))
    assert outcomes == Counter({"joined": 20}), outcomes
    counts = sorted(
        CustomerGroup.objects.filter(pk__in=[g.pk for g in groups]).values_list(
            "member_count", flat=True
        )
    )
    assert counts == [5, 5, 5, 5]
