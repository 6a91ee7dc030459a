"""Order placement throughput: `place_order` against a bare-SQL reference of the same transaction.

W threads place A one-line orders (one unit each, a distinct member and idempotency key per
attempt, SKUs round-robin over S SKUs stocked with plenty of units at one store) through
`shequn.orders.actions.place_order`, the checkout's hot path. Then the same threads make the same
orders with plain psycopg 3 on tables this benchmark creates as copies of the real ones (same
columns, constraints, indexes and deferred foreign keys), in the transaction shape of the real
write: BEGIN, INSERT the order (RETURNING id), INSERT its line, INSERT the audit row, the guarded
``quantity_allocated + 1 <= quantity`` stock UPDATE, COMMIT; one connection per thread.

What this measures is the cost of the layers (ORM, validation, pricing, idempotency, audit helper)
over the database's own work, so the number that matters is the ratio, taken in the same process
and run (the machine is shared and noisy). The reference leg is short, so it runs 3 times and the
median run counts. Afterwards every stock row must hold exactly as many allocated units as lines
were written for its SKU ("oversold" counts the rows that do not, and must be 0).

PostgreSQL only, on a throwaway database (shequn_bench_orders, dropped and recreated each run);
skipped if nothing answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import (
    PG_SERVER,
    Run,
    bench_chain,
    log,
    phone,
    postgres_answers,
    recreate_database,
    run_threads,
)

if TYPE_CHECKING:
    from shequn.members.models import Member

ROOT = Path(__file__).resolve().parent.parent
PG_DB = "shequn_bench_orders"
WORKERS = 8
ATTEMPTS = 4000
SKUS = 50
STOCK = 100_000  # units per SKU at the store: SKUS * STOCK >> ATTEMPTS, every order should fit
MEMBERS = 4000  # one member per attempt
REFERENCE_REPEATS = 3


# --- actions side ------------------------------------------------------------------------------
@dataclass
class World:
    store_id: int
    store_path: str
    chain_id: int
    sku_ids: list[int]  # in id order
    members: list[Member]  # members[n] places attempt n


def build_world() -> World:
    """A chain with one store, S SKUs stocked there through the real actions, and M members."""
    from shequn.catalog import actions as catalog
    from shequn.catalog.models import MovementReason, PyramidRole
    from shequn.members.models import Member
    from shequn.org import actions as org
    from shequn.org.models import NodeKind

    hq, admin = bench_chain()
    region = org.create_node(
        acting=admin, parent=hq, name="基准大区", kind=NodeKind.REGION, code="bench-region"
    )
    store = org.create_node(
        acting=admin, parent=region, name="基准店", kind=NodeKind.STORE, code="bench-store"
    )
    supplier = catalog.create_supplier(acting=admin, name="基准供应商")
    sku_ids = []
    for i in range(SKUS):
        product = catalog.create_product(
            acting=admin,
            supplier=supplier,
            name=f"基准商品{i}",
            pyramid_role=PyramidRole.TRAFFIC,
        )
        sku = catalog.add_sku(
            acting=admin, product=product, code=f"BENCH-{i}", price_fen=990 + i, spec="1件"
        )
        catalog.adjust_stock(
            acting=admin, store=store, sku=sku, delta=STOCK, reason=MovementReason.RECEIPT
        )
        sku_ids.append(sku.pk)
    Member.objects.bulk_create(
        Member(chain=hq, phone=phone(n), home_store=store) for n in range(MEMBERS)
    )
    by_phone = {member.phone: member for member in Member.objects.filter(chain=hq)}
    members = [by_phone[phone(n)] for n in range(MEMBERS)]
    return World(store.pk, store.path, hq.pk, sorted(sku_ids), members)


def run_actions(world: World) -> Run:
    from django.db import connections

    from shequn.core.errors import DomainError
    from shequn.orders.actions import LineRequest, place_order
    from shequn.org.models import OrgNode

    store = OrgNode.objects.get(pk=world.store_id)
    lines = [[LineRequest(sku_id, 1)] for sku_id in world.sku_ids]

    def attempt(_handle: None, n: int) -> str:
        try:
            placed = place_order(
                member=world.members[n],
                store=store,
                lines=lines[n % SKUS],
                idempotency_key=f"k{n}",
            )
        except DomainError as exc:
            return exc.code
        return "placed" if placed.created else "replayed"

    return run_threads(
        attempt,
        lambda: None,
        lambda _handle: connections.close_all(),
        attempts=ATTEMPTS,
        workers=WORKERS,
        success="placed",
    )


def count_oversold_actions(world: World) -> tuple[int, int]:
    """(stock rows whose allocation disagrees with the order lines, orders written)."""
    from django.db.models import Sum

    from shequn.catalog.models import StockItem
    from shequn.orders.models import Order, OrderLine

    ordered = dict(
        OrderLine.objects.filter(order__store_id=world.store_id)
        .values_list("sku_id")
        .annotate(units=Sum("quantity"))
        .values_list("sku_id", "units")
    )
    oversold = sum(
        item.quantity_allocated != ordered.get(item.sku_id, 0)
        or item.quantity_allocated > item.quantity
        for item in StockItem.objects.filter(store_id=world.store_id)
    )
    return oversold, Order.objects.filter(store_id=world.store_id).count()


# --- reference side: the same transaction in bare SQL --------------------------------------------
# Copies of the real tables (columns, NOT NULLs, CHECKs, identity, every index and unique
# constraint: LIKE ... INCLUDING ALL) with the real deferred foreign keys added back, so the
# reference pays the same index and constraint upkeep and tracks schema changes. A new NOT NULL
# column without a database default makes the reference INSERTs below fail: add it to them.
REFERENCE_TABLES = {  # reference table: (the real table, [(column, referenced table)])
    "bench_ref_stock": (
        "catalog_stockitem",
        [("store_id", "org_orgnode"), ("sku_id", "catalog_sku")],
    ),
    "bench_ref_order": (
        "orders_order",
        [
            ("chain_id", "org_orgnode"),
            ("store_id", "org_orgnode"),
            ("member_id", "members_member"),
            ("sharer_id", "members_member"),
            ("source_group_id", "groups_customergroup"),
        ],
    ),
    "bench_ref_orderline": (
        "orders_orderline",
        [("order_id", "bench_ref_order"), ("sku_id", "catalog_sku")],
    ),
    "bench_ref_audit": ("core_auditevent", [("actor_id", "auth_user")]),
}


def reference_ddl() -> list[str]:
    statements = [f"DROP TABLE IF EXISTS {', '.join(REFERENCE_TABLES)}"]
    for table, (real, foreign_keys) in REFERENCE_TABLES.items():
        statements.append(f"CREATE TABLE {table} (LIKE {real} INCLUDING ALL)")
        statements.extend(
            f"ALTER TABLE {table} ADD FOREIGN KEY ({column}) REFERENCES {parent} (id)"
            " DEFERRABLE INITIALLY DEFERRED"
            for column, parent in foreign_keys
        )
    return statements


SEED = (
    "INSERT INTO bench_ref_stock (store_id, sku_id, quantity, quantity_allocated)"
    " SELECT %s, id, %s, 0 FROM catalog_sku WHERE id = ANY(%s)"
)
INSERT_ORDER = (
    "INSERT INTO bench_ref_order (number, status, fulfilment, delivery_address, subtotal_fen,"
    " total_fen, channel, content_ref, idempotency_key, request_fingerprint, payment_deadline,"
    " close_reason, pickup_code, payment_channel, created_at, chain_id, member_id, store_id)"
    " VALUES (%s, 'pending_payment', 'pickup', '', %s, %s, 'organic', '', %s, %s,"
    " now() + interval '15 minutes', '', '', '', now(), %s, %s, %s) RETURNING id"
)
INSERT_LINE = (
    "INSERT INTO bench_ref_orderline (order_id, sku_id, product_name, sku_spec, quantity,"
    " unit_price_fen, line_total_fen) VALUES (%s, %s, %s, %s, 1, %s, %s)"
)
INSERT_AUDIT = (
    "INSERT INTO bench_ref_audit (occurred_at, actor_label, action, target_type, target_id,"
    " scope_path, channel, details)"
    " VALUES (now(), '', 'orders.placed', 'orders.order', %s, %s, 'system', %s)"
)
RESERVE = (  # the guarded stock UPDATE, as in shequn.orders.actions.place_order
    "UPDATE bench_ref_stock SET quantity_allocated = quantity_allocated + 1"
    " WHERE store_id = %s AND sku_id = %s AND quantity >= quantity_allocated + 1"
)
VERIFY = (  # stock rows whose allocation disagrees with the lines written for their SKU
    "SELECT count(*) FROM bench_ref_stock s LEFT JOIN (SELECT sku_id, sum(quantity) AS units"
    " FROM bench_ref_orderline GROUP BY sku_id) l ON l.sku_id = s.sku_id"
    " WHERE s.quantity_allocated <> coalesce(l.units, 0) OR s.quantity_allocated > s.quantity"
)
FINGERPRINT = "f" * 64  # the real one is a sha256 hex digest of the request


def connect_raw() -> Any:
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/{PG_DB}", autocommit=True)  # explicit BEGIN below


def run_reference(world: World) -> tuple[Run, int]:
    """One reference run on freshly created tables: (the run, oversold stock rows)."""
    with connect_raw() as conn:
        for statement in reference_ddl():
            conn.execute(statement)
        conn.execute(SEED, (world.store_id, STOCK, world.sku_ids))
        skus = {
            sku_id: (name, spec, price)
            for sku_id, name, spec, price in conn.execute(
                "SELECT s.id, p.name, s.spec, s.price_fen FROM catalog_sku s"
                " JOIN catalog_product p ON p.id = s.product_id WHERE s.id = ANY(%s)",
                (world.sku_ids,),
            )
        }
    member_ids = [member.pk for member in world.members]
    day = time.strftime("%y%m%d")

    def attempt(conn: Any, n: int) -> str:
        sku_id = world.sku_ids[n % SKUS]
        name, spec, price = skus[sku_id]
        member_id = member_ids[n]
        conn.execute("BEGIN")
        try:
            order_row = (f"{day}{n:012d}", price, price, f"k{n}", FINGERPRINT)
            ids = (world.chain_id, member_id, world.store_id)
            order_id = conn.execute(INSERT_ORDER, order_row + ids).fetchone()[0]
            conn.execute(INSERT_LINE, (order_id, sku_id, name, spec, price, price))
            details = {"member": member_id, "total_fen": price, "channel": "organic"}
            conn.execute(INSERT_AUDIT, (str(order_id), world.store_path, json.dumps(details)))
            if conn.execute(RESERVE, (world.store_id, sku_id)).rowcount == 0:
                conn.execute("ROLLBACK")
                return "out_of_stock"
            conn.execute("COMMIT")
        except Exception:
            with contextlib.suppress(Exception):  # the error that matters is the first one
                conn.execute("ROLLBACK")
            raise
        return "placed"

    run = run_threads(
        attempt,
        connect_raw,
        lambda conn: conn.close(),
        attempts=ATTEMPTS,
        workers=WORKERS,
        success="placed",
    )
    with connect_raw() as conn:
        oversold = conn.execute(VERIFY).fetchone()[0]
    return run, oversold


# --- the run ---------------------------------------------------------------------------------------
def main() -> int:
    if not postgres_answers("orders", "skipping (PostgreSQL only)"):
        return 0
    os.environ["DATABASE_URL"] = recreate_database(PG_DB)
    os.environ["DJANGO_SETTINGS_MODULE"] = "shequn.settings.dev"
    os.environ["DEBUG"] = "0"  # the dev settings default to DEBUG, which logs every query
    os.chdir(ROOT)  # the settings put var/ under the working directory

    import django
    from django.core.management import call_command
    from django.db import connection, connections

    django.setup()
    assert connection.vendor == "postgresql", f"DATABASE_URL points at {connection.vendor}"
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    world = build_world()
    connections.close_all()
    log(f"[postgresql] set up in {time.perf_counter() - started:.1f} s")
    log(
        f"[postgresql] {WORKERS} threads, {ATTEMPTS} one-unit orders"
        f" round-robin over {SKUS} SKUs of {STOCK} units"
    )
    actions = run_actions(world)
    oversold, orders_written = count_oversold_actions(world)
    connections.close_all()
    log(f"[postgresql] actions:   {actions.summary()}")
    references = []
    for i in range(REFERENCE_REPEATS):
        reference, reference_oversold = run_reference(world)
        oversold += reference_oversold
        references.append(reference)
        log(f"[postgresql] reference {i + 1}/{REFERENCE_REPEATS}: {reference.summary()}")
    reference = sorted(references, key=lambda run: run.per_s)[len(references) // 2]
    result = {
        "bench": "orders",
        "db": "postgresql",
        "workers": WORKERS,
        "attempts": ATTEMPTS,
        "orders_per_s": round(actions.per_s, 1),
        "reference_orders_per_s": round(reference.per_s, 1),
        "ratio": round(actions.per_s / reference.per_s, 3),
        "p99_ms": round(actions.percentile_ms(99), 2),
        "reference_p99_ms": round(reference.percentile_ms(99), 2),
        "oversold": oversold,
    }
    print(json.dumps(result), flush=True)
    placed_everywhere = all(run.outcomes["placed"] == ATTEMPTS for run in [actions, *references])
    if oversold or orders_written != ATTEMPTS or not placed_everywhere:
        log(
            f"[postgresql] FAILED: oversold={oversold}, orders written={orders_written},"
            " or not every attempt placed an order"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
