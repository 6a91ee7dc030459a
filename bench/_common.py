"""What every benchmark shares: the thread harness, latency percentiles, logging.

Benchmarks run as scripts (`bench/run.py` starts each in its own process), so they import this
module by its plain name.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def median(values: list[float]) -> float:
    """The middle of a benchmark's rounds (the machine drifts; one round can be an outlier)."""
    import statistics

    return float(statistics.median(values))


def postgres_answers(bench: str, skipping: str) -> bool:
    """Whether a PostgreSQL server listens on loopback; if not, say what is skipped."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        log(f"{bench}: nothing answers on 127.0.0.1:5432, {skipping}")
        return False
    return True


def recreate_database(name: str) -> str:
    """Drop and create the throwaway database ``name``; returns its URL."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    return f"{PG_SERVER}/{name}"


def phone(n: int) -> str:
    return f"+86138{n:08d}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Run:
    """One leg: wall time, per-attempt latencies and outcome counts; ``success`` names the
    outcome that counts towards throughput."""

    wall_s: float
    latencies_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    success: str = "ok"

    @property
    def per_s(self) -> float:
        return self.outcomes[self.success] / self.wall_s

    def percentile_ms(self, q: int) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[max(0, -(-q * len(ordered) // 100) - 1)]  # nearest rank

    def summary(self) -> str:
        p50, p99 = self.percentile_ms(50), self.percentile_ms(99)
        return (
            f"{self.wall_s:.2f} s, {self.per_s:.0f} {self.success}/s,"
            f" p50 {p50:.2f} ms, p99 {p99:.2f} ms, {dict(self.outcomes)}"
        )


def run_threads(
    attempt: Callable[[Any, int], str],
    connect: Callable[[], Any],
    close: Callable[[Any], None],
    *,
    attempts: int,
    workers: int,
    success: str,
) -> Run:
    """``workers`` threads pull attempt numbers from one shared counter; one connection each."""
    lock = threading.Lock()
    numbers = iter(range(attempts))
    parts: list[Run] = []

    def worker() -> None:
        mine = Run(0.0, success=success)
        try:
            handle = connect()
            try:
                while True:
                    with lock:
                        n = next(numbers, None)
                    if n is None:
                        return
                    started = time.perf_counter()
                    try:
                        outcome = attempt(handle, n)
                    except Exception as exc:  # counted; the leg fails if not every attempt succeeds
                        outcome = type(exc).__name__
                    mine.latencies_s.append(time.perf_counter() - started)
                    mine.outcomes[outcome] += 1
            finally:
                close(handle)
        finally:
            with lock:
                parts.append(mine)

    threads = [threading.Thread(target=worker, name=f"bench-{i}") for i in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    latencies = [latency for part in parts for latency in part.latencies_s]
    outcomes = sum((part.outcomes for part in parts), Counter())
    return Run(wall_s, latencies, outcomes, success=success)


PASSWORD = "Bench-pass-2026!"  # noqa: S105 - throwaway staff in throwaway databases


def bench_staff(node: Any, role: str, username: str, acting: Any = None) -> Any:
    """A staff account in a benchmark's throwaway chain (Django must be set up)."""
    from shequn.org import actions as org

    return org.create_staff(
        acting=acting,
        node=node,
        role=role,
        username=username,
        password=PASSWORD,
        display_name=username,
    )


def bench_chain(code: str = "bench-hq", name: str = "基准连锁") -> tuple[Any, Any]:
    """A chain and its HQ admin, through the real actions: (hq node, admin staff)."""
    from shequn.org import actions as org
    from shequn.org.roles import Role

    hq = org.create_chain(name=name, code=code)
    return hq, bench_staff(hq, Role.HQ_ADMIN, "bench_admin")
