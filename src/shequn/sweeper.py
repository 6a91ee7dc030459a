"""The timer that runs the deadline sweeps inside ``shequn serve`` (the embedded default).

The sweeps themselves are listed in ``flows.sweeps``; on the scale path Celery beat runs the
same list (``flows.tasks``). Deadlines live in the database, so a lost timer loses nothing: the
next run finds whatever is still due.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections

from shequn.flows.sweeps import SWEEPS, run_due_sweeps

__all__ = ["SWEEPS", "run_due_sweeps", "start_sweeper_thread"]

logger = logging.getLogger("shequn.sweeper")


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
