"""Group-join throughput: the real actions layer against a bare-SQL reference of the same shape.

W threads make A join attempts (distinct phones, round-robin over G groups of 500 seats) through
`join_by_invitation`, the till's hot path; then the same threads make the same joins with the raw
DB-API driver in the same transaction shape: INSERT the membership, guarded counter UPDATE,
COMMIT, one connection per thread. The machine is shared and noisy, so what matters is the ratio,
taken in the same process and run. No group may end over capacity or disagree with its active
memberships ("overfilled" must be 0). Each database runs in its own subprocess on a throwaway
database: var/bench/group_join.sqlite3 and, if 127.0.0.1:5432 answers, PostgreSQL shequn_bench.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import PG_SERVER, Run, log, phone, postgres_answers, recreate_database, run_threads

ROOT = Path(__file__).resolve().parent.parent
SQLITE_PATH = ROOT / "var" / "bench" / "group_join.sqlite3"
PG_DB = "shequn_bench"
WORKERS = 8
ATTEMPTS = 2000
GROUPS = 5
CAPACITY = 500  # GROUPS * CAPACITY >= ATTEMPTS: every attempt should get in
PASSWORD = "Bench-pass-2026!"  # noqa: S105 - throwaway staff in a throwaway database


# --- actions side ------------------------------------------------------------------------------
def build_groups() -> list[str]:
    """HQ, a region, a store, its manager and cashier, G groups and a staff code per group."""
    from shequn.groups import actions
    from shequn.groups.models import GroupTheme, InvitationKind
    from shequn.org import actions as org
    from shequn.org.models import NodeKind, OrgNode, Staff
    from shequn.org.roles import Role

    def staff(acting: Staff | None, node: OrgNode, role: str, name: str) -> Staff:
        account = {"username": name, "password": PASSWORD, "display_name": name}
        return org.create_staff(acting=acting, node=node, role=role, **account)

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
            name=f"基准群{i}",
            theme=GroupTheme.MOTHERS,
            capacity=CAPACITY,
        )
        invite = actions.create_invitation(acting=cashier, kind=InvitationKind.STAFF, group=group)
        codes.append(actions.invitation_code(invite))
    return codes


def run_actions(codes: list[str]) -> Run:
    from django.db import connections

    from shequn.core.errors import DomainError
    from shequn.groups.actions import join_by_invitation, resolve_invitation
    from shequn.members.actions import PhoneProof

    # The till's join after the phone is proven (the SMS step is not what this measures).
    chain_id = resolve_invitation(codes[0]).store.chain_id

    def attempt(_handle: None, n: int) -> str:
        try:
            join_by_invitation(code=codes[n % GROUPS], proof=PhoneProof.vouched(chain_id, phone(n)))
        except DomainError as exc:
            return exc.code
        return "joined"

    return run_threads(
        attempt,
        lambda: None,
        lambda _handle: connections.close_all(),
        attempts=ATTEMPTS,
        workers=WORKERS,
        success="joined",
    )


def count_overfilled() -> int:
    from shequn.groups.models import CustomerGroup, GroupMembership

    overfilled = 0
    for group in CustomerGroup.objects.all():
        active = GroupMembership.objects.filter(group=group, left_at__isnull=True).count()
        overfilled += group.member_count > group.capacity or group.member_count != active
    return overfilled


# --- reference side: the same transaction in bare SQL --------------------------------------------
SEED = "INSERT INTO bench_ref_group (id, capacity) VALUES (%s, %s)"
INSERT = "INSERT INTO bench_ref_membership (group_id, member_phone) VALUES (%s, %s)"
CLAIM = (  # the guarded counter UPDATE, as in shequn.groups.actions.join_group
    "UPDATE bench_ref_group SET member_count = member_count + 1"
    " WHERE id = %s AND member_count < capacity"
)
DDL = [  # the foreign key is checked at commit, as Django declares them
    "CREATE TABLE bench_ref_group (id integer PRIMARY KEY,"
    " member_count integer NOT NULL DEFAULT 0, capacity integer NOT NULL)",
    "CREATE TABLE bench_ref_membership (id {auto}, group_id integer NOT NULL"
    " REFERENCES bench_ref_group (id) DEFERRABLE INITIALLY DEFERRED,"
    " member_phone varchar(20) NOT NULL, UNIQUE (group_id, member_phone))",
]
AUTO_PK = {  # Django's BigAutoField on each database
    "sqlite": "integer PRIMARY KEY AUTOINCREMENT",
    "postgresql": "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
}


def connect_raw(db: str) -> Any:
    if db == "sqlite":
        conn = sqlite3.connect(SQLITE_PATH, isolation_level=None, check_same_thread=False)
        # WAL plus the pragmas Django's SQLite settings give every connection (settings/base.py).
        for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/{PG_DB}", autocommit=True)  # explicit BEGIN below


def run_reference(db: str) -> Run:
    begin = "BEGIN IMMEDIATE" if db == "sqlite" else "BEGIN"
    seed, insert, claim = (
        sql.replace("%s", "?" if db == "sqlite" else "%s") for sql in (SEED, INSERT, CLAIM)
    )
    conn = connect_raw(db)
    for statement in DDL:
        conn.execute(statement.format(auto=AUTO_PK[db]))
    for group_id in range(1, GROUPS + 1):
        conn.execute(seed, (group_id, CAPACITY))
    conn.close()

    def attempt(conn: Any, n: int) -> str:
        group_id = n % GROUPS + 1
        conn.execute(begin)
        try:
            conn.execute(insert, (group_id, phone(n)))
            if conn.execute(claim, (group_id,)).rowcount == 0:
                conn.execute("ROLLBACK")
                return "group_full"
            conn.execute("COMMIT")
        except Exception:
            with contextlib.suppress(Exception):  # the error that matters is the first one
                conn.execute("ROLLBACK")
            raise
        return "joined"

    return run_threads(
        attempt,
        lambda: connect_raw(db),
        lambda conn: conn.close(),
        attempts=ATTEMPTS,
        workers=WORKERS,
        success="joined",
    )


# --- one database leg per process ----------------------------------------------------------------
def run_leg(db: str) -> int:
    import django
    from django.core.management import call_command
    from django.db import connection, connections

    django.setup()
    assert connection.vendor == db, f"DATABASE_URL points at {connection.vendor}, not {db}"
    call_command("migrate", verbosity=0)
    codes = build_groups()
    connections.close_all()
    log(f"[{db}] {WORKERS} threads, {ATTEMPTS} joins into {GROUPS} groups of {CAPACITY}")
    actions = run_actions(codes)
    overfilled = count_overfilled()
    connections.close_all()
    log(f"[{db}] actions:   {actions.summary()}")
    reference = run_reference(db)
    log(f"[{db}] reference: {reference.summary()}")
    result = {
        "bench": "group_join",
        "db": db,
        "workers": WORKERS,
        "attempts": ATTEMPTS,
        "joins_per_s": round(actions.per_s, 1),
        "reference_joins_per_s": round(reference.per_s, 1),
        "ratio": round(actions.per_s / reference.per_s, 3),
        "overfilled": overfilled,
        "p99_ms": round(actions.percentile_ms(99), 2),
        "reference_p99_ms": round(reference.percentile_ms(99), 2),
    }
    print(json.dumps(result), flush=True)
    if overfilled or not actions.outcomes["joined"] == reference.outcomes["joined"] == ATTEMPTS:
        log(f"[{db}] FAILED: overfilled={overfilled}, or not every attempt joined")
        return 1
    return 0


def spawn_leg(db: str, url: str) -> int:
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="shequn.settings.dev")
    env["DEBUG"] = "0"  # the dev settings default to DEBUG, which keeps a log of every query
    command = [sys.executable, str(Path(__file__).resolve()), "--leg", db]
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode  # noqa: S603


def main() -> int:
    if sys.argv[1:2] == ["--leg"]:
        return run_leg(sys.argv[2])
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        SQLITE_PATH.with_name(SQLITE_PATH.name + suffix).unlink(missing_ok=True)
    status = spawn_leg("sqlite", f"sqlite:///{SQLITE_PATH}")
    if not postgres_answers("group_join", "skipping the PostgreSQL leg"):
        return status
    return spawn_leg("postgresql", recreate_database(PG_DB)) or status


if __name__ == "__main__":
    sys.exit(main())
