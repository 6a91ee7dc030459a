"""Fault injection for crash tests: ``SHEQUN_FAULT=<point>`` makes the process SIGKILL itself
when it reaches that point, exactly like a power cut. Unset (always, in production), it is a
dictionary lookup and nothing else."""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("SHEQUN_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
