"""Every deadline sweep, in the order they run: the one list the timer thread (``shequn serve``),
``shequn sweep`` and Celery beat (``flows.tasks``) all run. Deadlines live in the database and
each sweep is idempotent, so a lost or doubled run loses nothing and does nothing twice.

Here in flows, above every app it calls, so no app needs to import the list (ADR 0013).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shequn.core.throttle import sweep_idle_counters
from shequn.demand.actions import classify_pending
from shequn.demand.proposals import sweep_proposals
from shequn.groups.wecom_sync import sweep_wecom_resyncs
from shequn.orders.actions import sweep_expired_orders, sweep_unsubmitted_refunds
from shequn.promotions.actions import sweep_group_buy_teams
from shequn.promotions.calendar import materialize_schedules
from shequn.referrals.actions import release_due_commissions

logger = logging.getLogger("shequn.sweeper")

# Explicit list, no registry magic: each entry is (name, sweep returning how many it acted on).
SWEEPS: list[tuple[str, Callable[..., int]]] = [
    ("orders.payment_timeout", sweep_expired_orders),
    ("promotions.group_buy_teams", sweep_group_buy_teams),
    ("demand.proposals", sweep_proposals),
    ("promotions.weekly_calendar", materialize_schedules),
    ("referrals.commission_release", release_due_commissions),
    ("orders.refund_submission", sweep_unsubmitted_refunds),
    ("demand.classify_messages", classify_pending),
    ("groups.wecom_resync", sweep_wecom_resyncs),
    ("core.throttle_counters", sweep_idle_counters),
]


def run_due_sweeps(*, pause_s: float = 0.0, batch: int = 500) -> dict[str, int]:
    """Run every sweep; one that fails is logged and counted as -1, and never stops the others."""
    done: dict[str, int] = {}
    for name, sweep in SWEEPS:
        try:
            done[name] = sweep(pause_s=pause_s, batch=batch)
        except Exception:
            logger.exception("sweep %s failed", name)
            done[name] = -1
    return done
