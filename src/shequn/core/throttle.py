"""Rate limits that hold under concurrency: one guarded UPDATE per check.

A check-then-insert ("fewer than N rows in the last minute? then insert one") lets parallel
requests all see the same count and all pass: 20 parallel texts to one phone stored 8 codes
against a one-a-minute rule. Here each limit is one counter row, and the only way past it is
an UPDATE whose WHERE clause is the limit itself; the database serializes the writers on the
row, so exactly as many pass as the limit allows. Call ``take`` inside the transaction of the
thing being limited: if that transaction rolls back, the use is given back with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Case, F, Q, Value, When

from . import timeutil
from .models import ThrottleCounter


@dataclass(frozen=True)
class Limit:
    """At most ``per_window`` uses in a window of ``window`` (counted from its first use), and
    at least ``interval`` between two uses when set."""

    per_window: int
    window: timedelta
    interval: timedelta | None = None


def take(key: str, limit: Limit) -> bool:
    """Use one of ``key``'s allowance; False (and nothing changed) when none is left."""
    now = timeutil.now()
    ThrottleCounter.objects.bulk_create(
        [ThrottleCounter(key=key, window_start=now, count=0)], ignore_conflicts=True
    )
    window_over = Q(window_start__lte=now - limit.window)
    allowed = window_over | Q(count__lt=limit.per_window)
    if limit.interval is not None:
        allowed &= Q(last_at__isnull=True) | Q(last_at__lte=now - limit.interval)
    return bool(
        ThrottleCounter.objects.filter(allowed, key=key).update(
            count=Case(When(window_over, then=Value(1)), default=F("count") + 1),
            window_start=Case(When(window_over, then=Value(now)), default=F("window_start")),
            last_at=now,
        )
    )


def too_soon(key: str, limit: Limit) -> bool:
    """After a refused ``take``: was it the interval (rather than the window's count)?"""
    if limit.interval is None:
        return False
    last = ThrottleCounter.objects.filter(key=key).values_list("last_at", flat=True).first()
    return last is not None and last > timeutil.now() - limit.interval


def forget_idle(idle: timedelta) -> int:
    """Delete counters unused for longer than ``idle`` (longer than any window)."""
    deleted, _ = ThrottleCounter.objects.filter(last_at__lt=timeutil.now() - idle).delete()
    return deleted


def sweep_idle_counters(*, pause_s: float = 0.0, batch: int = 500) -> int:
    """The sweeper's housekeeping: counters idle for two days are past every window."""
    return forget_idle(timedelta(days=2))
