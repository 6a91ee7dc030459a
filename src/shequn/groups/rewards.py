"""Cashier recruitment reward tiers (seed 002, 步步高): the one place the numbers live."""

from __future__ import annotations

FIRST_TIER_MEMBERS = 100
FIRST_TIER_FEN = 50  # ¥0.50 for each of a group's first 100 members
LATER_FEN = 100  # ¥1.00 for each member once the group is past 100 ("100人以上的社群")


def recruitment_reward_fen(member_ordinal: int) -> int:
    """Reward for the member who became the group's ``member_ordinal``-th current member."""
    if member_ordinal < 1:
        raise ValueError("ordinal starts at 1")
    return FIRST_TIER_FEN if member_ordinal <= FIRST_TIER_MEMBERS else LATER_FEN
