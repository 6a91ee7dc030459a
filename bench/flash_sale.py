"""Flash sale: one hot SKU, a chain-wide quota, twice as many buyers as units.

W threads make A attempts to buy one unit each (a distinct member and idempotency key per
attempt; per-member limit 1) through ``place_order(..., flash_sale_id=...)``: the member's
counter upsert, the quota's guarded UPDATE and the stock's guarded UPDATE, after the order,
line and audit rows. Then the same threads make the same attempts with plain psycopg 3 in the
minimal shape the issue names: BEGIN, INSERT the order, the guarded stock UPDATE, COMMIT.
Both legs run at 8 and at 64 workers; the ratio at each and the 64/8 throughput of the actions
leg are the numbers to watch. On PostgreSQL each worker count runs ROUNDS rounds, each on a
fresh sale with the legs in alternating order, and the line gives the medians (this machine's
speed drifts by ±15 % within a minute; its disk flushes, which the reference waits for and the
actions leg does not, have varied by 1.7× between days). Afterwards nothing may be oversold: the quota's ``sold`` equals the
flash lines written and never exceeds the quota, the stock's allocation equals the units sold.

PostgreSQL: shequn_bench_flash, dropped and recreated each run (skipped if nothing answers on
127.0.0.1:5432), at the issue's scale. SQLite (one writer at a time; the general path, there is
no fast path): var/bench/flash_sale.sqlite3 in its own process, 2,000 units and 4,000 attempts
at 8 workers; the reference is the same minimal transaction with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import (
    PG_SERVER,
    Run,
    log,
    median,
    phone,
    postgres_answers,
    recreate_database,
    run_threads,
)

ROOT = Path(__file__).resolve().parent.parent
PG_DB = "shequn_bench_flash"
UNITS = 20_000
ATTEMPTS = 40_000
WORKER_COUNTS = (8, 64)
ROUNDS = 3  # PostgreSQL: fresh sales, legs in alternating order, medians (the machine drifts)
SQLITE_PATH = ROOT / "var" / "bench" / "flash_sale.sqlite3"
SQLITE_UNITS, SQLITE_ATTEMPTS, SQLITE_WORKERS = 2_000, 4_000, 8
PASSWORD = "Bench-pass-2026!"  # noqa: S105 - throwaway staff in a throwaway database


def build_sale(workers: int) -> dict[str, Any]:
    """A fresh chain, store, SKU (UNITS on the shelf), ATTEMPTS members and a running sale."""
    from datetime import timedelta

    from shequn.catalog import actions as catalog
    from shequn.core import timeutil
    from shequn.members.models import Member
    from shequn.org import actions as org
    from shequn.org.models import NodeKind
    from shequn.org.roles import Role
    from shequn.promotions.actions import create_flash_sale

    tag = f"w{workers}"
    hq = org.create_chain(name=f"秒杀基准{tag}", code=f"flash-{tag}")
    admin = org.create_staff(
        acting=None,
        node=hq,
        role=Role.HQ_ADMIN,
        username=f"flash_admin_{tag}",
        password=PASSWORD,
        display_name="基准管理员",
    )
    store = org.create_node(
        acting=admin, parent=hq, name="秒杀店", kind=NodeKind.STORE, code=f"flash-store-{tag}"
    )
    product = catalog.create_product(
        acting=admin,
        supplier=catalog.create_supplier(acting=admin, name="艾草供应商"),
        name="艾草贴",
        pyramid_role="traffic",
    )
    sku = catalog.add_sku(acting=admin, product=product, code=f"MOXA-{tag}", price_fen=3990)
    catalog.adjust_stock(acting=admin, store=store, sku=sku, delta=UNITS, reason="receipt")
    now = timeutil.now()
    sale = create_flash_sale(
        acting=admin,
        sku=sku,
        name="3000 盒艾草贴秒杀",
        price_fen=990,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=2),
        per_member_limit=1,
        per_order_limit=1,
        chain_quota=UNITS,
    )
    Member.objects.bulk_create(
        (Member(chain=hq, phone=phone(n), home_store=store) for n in range(ATTEMPTS)),
        batch_size=2000,
    )
    members = list(Member.objects.filter(chain=hq).order_by("id"))
    return {"store": store, "sku": sku, "sale": sale, "members": members, "chain": hq}


def run_actions(world: dict[str, Any], workers: int) -> Run:
    from django.db import connections

    from shequn.core.errors import DomainError
    from shequn.orders.actions import LineRequest, place_order

    line = [LineRequest(world["sku"].pk, 1)]

    def attempt(_handle: None, n: int) -> str:
        try:
            place_order(
                member=world["members"][n],
                store=world["store"],
                lines=line,
                idempotency_key=f"k{n}",
                flash_sale_id=world["sale"].pk,
            )
        except DomainError as exc:
            return exc.code
        return "placed"

    return run_threads(
        attempt,
        lambda: None,
        lambda _handle: connections.close_all(),
        attempts=ATTEMPTS,
        workers=workers,
        success="placed",
    )


def oversold_actions(world: dict[str, Any]) -> int:
    from shequn.catalog.models import StockItem
    from shequn.orders.models import OrderLine

    quota = world["sale"].quotas.get()
    lines = OrderLine.objects.filter(flash_quota=quota).count()
    item = StockItem.objects.get(store=world["store"], sku=world["sku"])
    return int(quota.sold != lines or quota.sold > quota.quota) + int(
        item.quantity_allocated != lines or item.quantity_allocated > item.quantity
    )


# --- reference: the minimal transaction in bare SQL --------------------------------------------
REFERENCE_DDL = (
    "DROP TABLE IF EXISTS bench_flash_order, bench_flash_stock",
    "CREATE TABLE bench_flash_stock (id int PRIMARY KEY, quantity int NOT NULL,"
    " allocated int NOT NULL DEFAULT 0, CHECK (allocated <= quantity))",
    "CREATE TABLE bench_flash_order (id bigserial PRIMARY KEY, number varchar(32) UNIQUE NOT NULL,"
    " member_id int NOT NULL, store_id int NOT NULL, sku_id int NOT NULL, total_fen int NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())",
)
INSERT_ORDER = (
    "INSERT INTO bench_flash_order (number, member_id, store_id, sku_id, total_fen)"
    " VALUES (%s, %s, %s, %s, 990)"
)
CLAIM = (
    "UPDATE bench_flash_stock SET allocated = allocated + 1 WHERE id = 1 AND allocated < quantity"
)


def connect_raw() -> Any:
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/{PG_DB}", autocommit=True)


def run_reference(world: dict[str, Any], workers: int) -> tuple[Run, int]:
    with connect_raw() as conn:
        for statement in REFERENCE_DDL:
            conn.execute(statement)
        conn.execute("INSERT INTO bench_flash_stock VALUES (1, %s, 0)", (UNITS,))
    member_ids = [member.pk for member in world["members"]]
    store_id, sku_id = world["store"].pk, world["sku"].pk

    def attempt(conn: Any, n: int) -> str:
        conn.execute("BEGIN")
        conn.execute(INSERT_ORDER, (f"F{n:020d}", member_ids[n], store_id, sku_id))
        if conn.execute(CLAIM).rowcount == 0:
            conn.execute("ROLLBACK")
            return "sold_out"
        conn.execute("COMMIT")
        return "placed"

    run = run_threads(
        attempt,
        connect_raw,
        lambda conn: conn.close(),
        attempts=ATTEMPTS,
        workers=workers,
        success="placed",
    )
    with connect_raw() as conn:
        allocated, orders = conn.execute(
            "SELECT (SELECT allocated FROM bench_flash_stock), (SELECT count(*) FROM bench_flash_order)"
        ).fetchone()
    return run, int(allocated != orders or allocated > UNITS)


# --- the SQLite leg, in its own process ---------------------------------------------------------
SQLITE_DDL = (
    "CREATE TABLE bench_flash_stock (id integer PRIMARY KEY, quantity integer NOT NULL,"
    " allocated integer NOT NULL DEFAULT 0, CHECK (allocated <= quantity))",
    "CREATE TABLE bench_flash_order (id integer PRIMARY KEY AUTOINCREMENT,"
    " number varchar(32) UNIQUE NOT NULL, member_id integer NOT NULL, store_id integer NOT NULL,"
    " sku_id integer NOT NULL, total_fen integer NOT NULL,"
    " created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP)",
)


def connect_sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(SQLITE_PATH, isolation_level=None, check_same_thread=False)
    for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL"):
        conn.execute(f"PRAGMA {pragma}")  # what Django's SQLite settings give every connection
    return conn


def run_sqlite_reference(world: dict[str, Any]) -> tuple[Run, int]:
    conn = connect_sqlite()
    for statement in SQLITE_DDL:
        conn.execute(statement)
    conn.execute("INSERT INTO bench_flash_stock VALUES (1, ?, 0)", (SQLITE_UNITS,))
    conn.close()
    member_ids = [member.pk for member in world["members"]]
    store_id, sku_id = world["store"].pk, world["sku"].pk

    def attempt(conn: sqlite3.Connection, n: int) -> str:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            INSERT_ORDER.replace("%s", "?"), (f"F{n:020d}", member_ids[n], store_id, sku_id)
        )
        if conn.execute(CLAIM).rowcount == 0:
            conn.execute("ROLLBACK")
            return "sold_out"
        conn.execute("COMMIT")
        return "placed"

    run = run_threads(
        attempt,
        connect_sqlite,
        lambda conn: conn.close(),
        attempts=SQLITE_ATTEMPTS,
        workers=SQLITE_WORKERS,
        success="placed",
    )
    conn = connect_sqlite()
    allocated, orders = conn.execute(
        "SELECT (SELECT allocated FROM bench_flash_stock), (SELECT count(*) FROM bench_flash_order)"
    ).fetchone()
    conn.close()
    return run, int(allocated != orders or allocated > SQLITE_UNITS)


def run_sqlite_leg() -> int:
    global UNITS, ATTEMPTS
    import django
    from django.core.management import call_command
    from django.db import connections

    UNITS, ATTEMPTS = SQLITE_UNITS, SQLITE_ATTEMPTS
    django.setup()
    call_command("migrate", verbosity=0)
    world = build_sale(SQLITE_WORKERS)
    connections.close_all()
    log(f"[sqlite] flash sale: {UNITS} units, {ATTEMPTS} attempts, {SQLITE_WORKERS} threads")
    actions = run_actions(world, SQLITE_WORKERS)
    oversold = oversold_actions(world)
    connections.close_all()
    log(f"[sqlite] actions:   {actions.summary()}")
    reference, reference_oversold = run_sqlite_reference(world)
    log(f"[sqlite] reference: {reference.summary()}")
    line = {
        "bench": "flash_sale",
        "db": "sqlite",
        "workers": SQLITE_WORKERS,
        "units": UNITS,
        "attempts": ATTEMPTS,
        "orders_per_s": round(actions.per_s, 1),
        "reference_orders_per_s": round(reference.per_s, 1),
        "ratio": round(actions.per_s / reference.per_s, 3),
        "oversold": oversold + reference_oversold,
        "p99_ms": round(actions.percentile_ms(99), 2),
        "reference_p99_ms": round(reference.percentile_ms(99), 2),
    }
    print(json.dumps(line), flush=True)
    if line["oversold"] or actions.outcomes["placed"] != UNITS:
        log(f"flash_sale: FAILED invariant: {line}, outcomes {dict(actions.outcomes)}")
        return 1
    return 0


def spawn_sqlite_leg() -> int:
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        SQLITE_PATH.with_name(SQLITE_PATH.name + suffix).unlink(missing_ok=True)
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{SQLITE_PATH}",
        DJANGO_SETTINGS_MODULE="shequn.settings.dev",
        DEBUG="0",
    )
    command = [sys.executable, str(Path(__file__).resolve()), "--sqlite"]
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode  # noqa: S603


def run_round(workers: int, round_: int) -> dict[str, Any]:
    """Both legs on a fresh sale, the actions leg first in even rounds."""
    from django.db import connections

    world = build_sale(workers * 100 + round_)
    connections.close_all()
    log(f"[postgresql] round {round_ + 1}: {UNITS} units, {ATTEMPTS} attempts, {workers} threads")
    found: dict[str, Any] = {}
    for leg in ("actions", "reference") if round_ % 2 == 0 else ("reference", "actions"):
        if leg == "actions":
            actions = run_actions(world, workers)
            found["oversold"] = found.get("oversold", 0) + oversold_actions(world)
            connections.close_all()
            log(f"[postgresql] actions:   {actions.summary()}")
        else:
            reference, reference_oversold = run_reference(world, workers)
            found["oversold"] = found.get("oversold", 0) + reference_oversold
            log(f"[postgresql] reference: {reference.summary()}")
    found.update(
        per_s=actions.per_s,
        reference_per_s=reference.per_s,
        ratio=actions.per_s / reference.per_s,
        p99_ms=actions.percentile_ms(99),
        reference_p99_ms=reference.percentile_ms(99),
        outcomes=dict(actions.outcomes),
    )
    return found


def main() -> int:
    if sys.argv[1:2] == ["--sqlite"]:
        return run_sqlite_leg()
    status = spawn_sqlite_leg()
    if not postgres_answers("flash_sale", "skipping the PostgreSQL legs"):
        return status
    os.environ["DATABASE_URL"] = recreate_database(PG_DB)
    os.environ["DJANGO_SETTINGS_MODULE"] = "shequn.settings.dev"
    os.environ["DEBUG"] = "0"
    os.chdir(ROOT)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    per_s: dict[int, float] = {}
    for workers in WORKER_COUNTS:
        rounds = [run_round(workers, round_) for round_ in range(ROUNDS)]
        per_s[workers] = median([r["per_s"] for r in rounds])
        line: dict[str, Any] = {
            "bench": "flash_sale",
            "db": "postgresql",
            "workers": workers,
            "units": UNITS,
            "attempts": ATTEMPTS,
            "rounds": ROUNDS,
            "orders_per_s": round(per_s[workers], 1),
            "reference_orders_per_s": round(median([r["reference_per_s"] for r in rounds]), 1),
            "ratio": round(median([r["ratio"] for r in rounds]), 3),
            "oversold": sum(r["oversold"] for r in rounds),
            "p99_ms": round(median([r["p99_ms"] for r in rounds]), 2),
            "reference_p99_ms": round(median([r["reference_p99_ms"] for r in rounds]), 2),
            "ratio_by_round": [round(r["ratio"], 3) for r in rounds],
        }
        if workers != WORKER_COUNTS[0]:
            line["vs_8_workers"] = round(per_s[workers] / per_s[WORKER_COUNTS[0]], 3)
        print(json.dumps(line), flush=True)
        short = [r["outcomes"] for r in rounds if r["outcomes"].get("placed") != UNITS]
        if line["oversold"] or short:
            log(f"flash_sale: FAILED invariant: {line}, outcomes {short}")
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
