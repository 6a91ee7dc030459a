"""Group-join throughput: the real actions layer against a bare-SQL reference of the same shape.

`join_by_invitation` is the hot path (a till full of customers scanning one code). W threads make
A join attempts with distinct phones, round-robin over G groups of 500 seats, through the real
actions; then the same W threads make the same A joins with the raw DB-API driver in the same
transaction shape (INSERT the membership, guarded counter UPDATE, COMMIT), one connection per
thread. The machine is shared and noisy, so the number that matters is the ratio of the two,
taken in the same process and run. Afterwards no group may hold more than its capacity or
disagree with its active memberships ("overfilled" must be 0).

Each database runs in its own subprocess against its own throwaway database: the SQLite file
var/bench/group_join.sqlite3 and, if a server answers on 127.0.0.1:5432, PostgreSQL
``shequn_bench``. Never the dev or test database.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SQLITE_PATH = ROOT / "var" / "bench" / "group_join.sqlite3"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "shequn_bench"
WORKERS = 8
ATTEMPTS = 2000
GROUPS = 5
CAPACITY = 500  # GROUPS * CAPACITY >= ATTEMPTS: every attempt should get in
PASSWORD = "Bench-pass-2026!"  # noqa: S105 - throwaway staff in a throwaway database


def phone(n: int) -> str:
    return f"+86138{n:08d}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Run:
    wall_s: float
    latencies_s: list[float]
    outcomes: Counter[str]

    @property
    def joins_per_s(self) -> float:
        return self.outcomes["joined"] / self.wall_s

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[max(0, -(-99 * len(ordered) // 100) - 1)]  # nearest rank


def run_threads(
    attempt: Callable[[Any, int], str],
    open_handle: Callable[[], Any],
    close_handle: Callable[[Any], None],
) -> Run:
    """W threads pull attempt numbers from one shared counter; each thread has one handle."""
    lock = threading.Lock()
    numbers = iter(range(ATTEMPTS))

    def worker() -> tuple[list[float], Counter[str]]:
        latencies: list[float] = []
        outcomes: Counter[str] = Counter()
        handle = open_handle()
        try:
            while True:
                with lock:
                    n = next(numbers, None)
                if n is None:
                    return latencies, outcomes
                started = time.perf_counter()
                try:
                    outcome = attempt(handle, n)
                except Exception as exc:  # counted, not fatal: the leg fails on the outcome check
                    outcome = type(exc).__name__
                latencies.append(time.perf_counter() - started)
                outcomes[outcome] += 1
        finally:
            close_handle(handle)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = [future.result() for future in [pool.submit(worker) for _ in range(WORKERS)]]
    run = Run(time.perf_counter() - started, [], Counter())
    for latencies, outcomes in results:
        run.latencies_s.extend(latencies)
        run.outcomes.update(outcomes)
    return run


# --- actions side ----------------------------------------------------------------------------
def build_groups() -> list[str]:
    """A chain with one store, G groups and a cashier staff code per group, via the actions."""
    from shequn.groups import actions
    from shequn.groups.models import GroupTheme, InvitationKind
    from shequn.org import actions as org
    from shequn.org.models import NodeKind, OrgNode, Staff
    from shequn.org.roles import Role

    def staff(acting: Staff | None, node: OrgNode, role: str, username: str) -> Staff:
        return org.create_staff(
            acting=acting,
            node=node,
            role=role,
            username=username,
            password=PASSWORD,
            display_name=username,
        )

    hq = org.create_chain(name="基准连锁", code="bench-hq")
    admin = staff(None, hq, Role.HQ_ADMIN, "bench_admin")
    region = org.create_node(
        acting=admin, parent=hq, name="基准大区", kind=NodeKind.REGION, code="bench-region"
    )
    store = org.create_node(
        acting=admin, parent=region, name="基准店", kind=NodeKind.STORE, code="bench-store"
    )
    manager = staff(admin, store, Role.STORE_MANAGER, "bench_manager")
    cashier = staff(admin, store, Role.CASHIER, "bench_cashier")
    codes = []
    for i in range(GROUPS):
        group = actions.create_group(
            acting=manager,
            store=store,
            name=f"基准群{i + 1}",
            theme=GroupTheme.MOTHERS,
            capacity=CAPACITY,
        )
        invitation = actions.create_invitation(
            acting=cashier, kind=InvitationKind.STAFF, group=group
        )
        codes.append(actions.invitation_code(invitation))
    return codes


def run_actions(codes: list[str]) -> Run:
    from django.db import connections

    from shequn.core.errors import DomainError
    from shequn.groups.actions import join_by_invitation

    def attempt(_handle: None, n: int) -> str:
        try:
            join_by_invitation(code=codes[n % GROUPS], phone=phone(n))
        except DomainError as exc:
            return exc.code
        return "joined"

    return run_threads(attempt, lambda: None, lambda _handle: connections.close_all())


def count_overfilled() -> int:
    from shequn.groups.models import CustomerGroup, GroupMembership

    overfilled = 0
    for group in CustomerGroup.objects.all():
        active = GroupMembership.objects.filter(group=group, left_at__isnull=True).count()
        if group.member_count > group.capacity or group.member_count != active:
            overfilled += 1
    return overfilled


# --- reference side: the same transaction in bare SQL ------------------------------------------
INSERT = "INSERT INTO bench_ref_membership (group_id, member_phone) VALUES (%s, %s)"
CLAIM = (
    "UPDATE bench_ref_group SET member_count = member_count + 1"
    " WHERE id = %s AND member_count < capacity"
)
SEED = "INSERT INTO bench_ref_group (id, capacity) VALUES (%s, %s)"
# Foreign keys deferred to the commit, as Django declares them.
DDL = {
    "sqlite": [
        "CREATE TABLE bench_ref_group (id INTEGER PRIMARY KEY,"
        " member_count INTEGER NOT NULL DEFAULT 0, capacity INTEGER NOT NULL)",
        "CREATE TABLE bench_ref_membership (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " group_id INTEGER NOT NULL REFERENCES bench_ref_group (id) DEFERRABLE INITIALLY DEFERRED,"
        " member_phone VARCHAR(20) NOT NULL, UNIQUE (group_id, member_phone))",
    ],
    "postgresql": [
        "CREATE TABLE bench_ref_group (id bigint PRIMARY KEY,"
        " member_count integer NOT NULL DEFAULT 0, capacity integer NOT NULL)",
        "CREATE TABLE bench_ref_membership (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " group_id bigint NOT NULL REFERENCES bench_ref_group (id) DEFERRABLE INITIALLY DEFERRED,"
        " member_phone varchar(20) NOT NULL, UNIQUE (group_id, member_phone))",
    ],
}


def connect_raw(db: str) -> Any:
    if db == "sqlite":
        conn = sqlite3.connect(
            SQLITE_PATH, isolation_level=None, timeout=30, check_same_thread=False
        )
        # The pragmas Django's SQLite settings give every connection (shequn.settings.base).
        for pragma in ("busy_timeout = 30000", "synchronous = NORMAL", "foreign_keys = ON"):
            conn.execute(f"PRAGMA {pragma}")
        return conn
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/{PG_DB}", autocommit=True)  # explicit BEGIN below


def run_reference(db: str) -> Run:
    begin = "BEGIN IMMEDIATE" if db == "sqlite" else "BEGIN"
    param = "?" if db == "sqlite" else "%s"
    insert, claim = INSERT.replace("%s", param), CLAIM.replace("%s", param)
    conn = connect_raw(db)
    if db == "sqlite":
        conn.execute("PRAGMA journal_mode = WAL")
    for statement in DDL[db]:
        conn.execute(statement)
    for group_id in range(1, GROUPS + 1):
        conn.execute(SEED.replace("%s", param), (group_id, CAPACITY))
    conn.close()

    def attempt(handle: Any, n: int) -> str:
        group_id = n % GROUPS + 1
        handle.execute(begin)
        try:
            handle.execute(insert, (group_id, phone(n)))
            if handle.execute(claim, (group_id,)).rowcount == 0:
                handle.execute("ROLLBACK")
                return "group_full"
            handle.execute("COMMIT")
        except Exception:
            handle.execute("ROLLBACK")
            raise
        return "joined"

    return run_threads(attempt, lambda: connect_raw(db), lambda handle: handle.close())


# --- one database leg, in its own process ------------------------------------------------------
def run_leg(db: str) -> int:
    import django
    from django.core.management import call_command
    from django.db import connection, connections

    django.setup()
    assert connection.vendor == db, f"DATABASE_URL points at {connection.vendor}, not {db}"
    call_command("migrate", verbosity=0)
    codes = build_groups()
    connections.close_all()
    log(f"[{db}] {WORKERS} threads x {ATTEMPTS} joins into {GROUPS} groups: actions...")
    actions = run_actions(codes)
    overfilled = count_overfilled()
    connections.close_all()
    log(f"[{db}] actions: {actions.wall_s:.2f} s {dict(actions.outcomes)}; reference...")
    reference = run_reference(db)
    log(f"[{db}] reference: {reference.wall_s:.2f} s {dict(reference.outcomes)}")
    result = {
        "bench": "group_join",
        "db": db,
        "workers": WORKERS,
        "attempts": ATTEMPTS,
        "joins_per_s": round(actions.joins_per_s, 1),
        "reference_joins_per_s": round(reference.joins_per_s, 1),
        "ratio": round(actions.joins_per_s / reference.joins_per_s, 3),
        "overfilled": overfilled,
        "p99_ms": round(actions.p99_ms, 2),
        "reference_p99_ms": round(reference.p99_ms, 2),
    }
    print(json.dumps(result), flush=True)
    everyone_in = actions.outcomes["joined"] == reference.outcomes["joined"] == ATTEMPTS
    if overfilled or not everyone_in:
        log(f"[{db}] FAILED: overfilled={overfilled}, not every attempt joined")
        return 1
    return 0


def spawn_leg(db: str, url: str) -> int:
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="shequn.settings.dev")
    env["DEBUG"] = "0"  # dev settings default to DEBUG, which logs every query: not the hot path
    command = [sys.executable, str(Path(__file__).resolve()), "--leg", db]
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode  # noqa: S603


def postgres_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leg", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.leg:
        return run_leg(args.leg)

    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        SQLITE_PATH.with_name(SQLITE_PATH.name + suffix).unlink(missing_ok=True)
    status = spawn_leg("sqlite", f"sqlite:///{SQLITE_PATH}")

    if not postgres_answers():
        log("group_join: nothing answers on 127.0.0.1:5432, skipping the PostgreSQL leg")
        return status
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_DB}")
    return spawn_leg("postgresql", f"{PG_SERVER}/{PG_DB}") or status


if __name__ == "__main__":
    sys.exit(main())
