"""The loop every "act on what is owed" sweep shares: take a batch of due rows, act on each in
its own transaction, and stop when a batch came back short or nothing in it could be done.

A row that fails (an exception, or its action says it cannot act now) is remembered for this
run and skipped, so one broken row never blocks every later one — the next run tries it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger("shequn.sweeper")


def drain(
    due: Callable[[set[int], int], Sequence[tuple[int, int]]],
    act: Callable[[int, int], bool],
    *,
    what: str,
    batch: int,
    pause_s: float = 0.0,
) -> int:
    """Run ``act(row_id, other_id)`` on every row ``due(skip, batch)`` hands out (ids in
    ``skip`` excluded); returns how many ``act`` did."""
    done = 0
    broken: set[int] = set()
    while True:
        rows = due(broken, batch)
        progressed = 0
        for row_id, other_id in rows:
            try:
                if act(row_id, other_id):
                    progressed += 1
                else:
                    broken.add(row_id)
            except Exception:  # one broken row must not block every later one
                logger.exception("could not %s %s", what, row_id)
                broken.add(row_id)
            if pause_s:
                time.sleep(pause_s)  # go easy on a busy database
        done += progressed
        if len(rows) < batch or not progressed:
            return done
