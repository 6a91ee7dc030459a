"""Deadlines live in the database; this runs the idempotent sweeps that act on what is due.

Embedded default: `shequn serve` runs `run_due_sweeps` on a timer thread. Scale path: Celery
beat calls the same function (issue 3's Celery work). Either way a lost timer loses nothing:
the next sweep finds whatever is still due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

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


def start_sweeper_thread(interval_s: float = 30.0) -> threading.Event:
    """Run the sweeps every ``interval_s`` in a daemon thread; set the returned event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                done = run_due_sweeps()
                if any(done.values()):
                    logger.warning("sweeper: %s", done)
            except Exception:
                logger.exception("sweeper run failed; next run in %.0f s", interval_s)
            finally:
                close_old_connections()

    threading.Thread(target=loop, name="shequn-sweeper", daemon=True).start()
    return stop
