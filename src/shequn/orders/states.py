"""The order state machine: one table, applied only as conditional UPDATEs.

A transition is ``UPDATE … SET status = to WHERE id = ? AND status = from``: of two racing
writers exactly one wins, and a transition the table does not allow is refused before any SQL.
"""

from __future__ import annotations

from typing import Any

from shequn.core.errors import RuleViolation

from .models import Order, OrderStatus

S = OrderStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CLOSED}),
    S.PAID: frozenset({S.FULFILLED, S.REFUNDED}),
    S.FULFILLED: frozenset({S.REFUNDED}),
    S.CLOSED: frozenset(),
    S.REFUNDED: frozenset(),
}


def check_transition(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise RuleViolation(
            f"订单不能从「{S(current).label}」变为「{S(target).label}」", code="illegal_transition"
        )


def transition(
    order_id: int,
    current: str,
    target: str,
    *,
    only_if: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move the order from ``current`` to ``target``; False if another writer moved it first
    (or, with ``only_if``, if the row no longer matches those extra conditions)."""
    check_transition(current, target)
    updated = Order.objects.filter(pk=order_id, status=current, **(only_if or {})).update(
        status=target, **fields
    )
    return updated == 1
