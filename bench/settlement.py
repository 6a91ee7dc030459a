"""Commission booking for a month of a large chain: 200,000 paid orders, a two-level chain.

Setup (not timed): a chain with 20 products in two categories, three commission rules (the
default 10 % + 3 %, a category at 15 % + 5 %, one product at 8 % level 1 only), 200 level-1
parents each with 9 sharers below them (2,000 approved sharers, every one with a pending account),
20,000 buyers and 200,000 paid orders of one or two lines, each brought by one of the 1,800
sharers that have a parent — so every order pays two levels (except the product at 8 %, whose
level 2 is 0). The orders are written with COPY; the expected commission of every order is
worked out here in Python from the same numbers, independently of the code under test.

Timed, the actions leg: ``shequn.referrals.bulk.book_commissions`` — the rates, the fraud
signals, one ``accrue`` transaction and two postings per (order, sharer), the ``OrderCommission``
rows, the balances. Then it runs again and must change nothing.

Timed, the reference leg: bare SQL writing the same ledger rows (transactions and postings) with
``INSERT … SELECT`` from the orders and a ready table of per-product rates, into copies of the
real tables (``LIKE … INCLUDING ALL``, the same foreign keys); it runs before and after the
actions leg and the faster run counts (the machine is shared and noisy).

Checks: Σ commission booked equals the expected sum to the fen; every transaction sums to zero
and every account balance equals its postings ("balanced"); the rerun wrote nothing.

PostgreSQL only, on a throwaway database (shequn_bench_settlement, dropped and recreated each
run); skipped if nothing answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import (
    PG_SERVER,
    bench_chain,
    bench_staff,
    log,
    phone,
    postgres_answers,
    recreate_database,
)

ROOT = Path(__file__).resolve().parent.parent
PG_DB = "shequn_bench_settlement"
ORDERS = int(os.environ.get("BENCH_SETTLEMENT_ORDERS", "200000"))
PRODUCTS = 20
PARENTS = 200
CHILDREN_PER_PARENT = 9
BUYERS = 20_000
DEFAULT_RATES = (1000, 300)
CATEGORY_RATES = (1500, 500)  # products 0-4
PRODUCT_RATES = (800, 0)  # product 5
CATEGORY_PRODUCTS = range(5)
RULED_PRODUCT = 5


def rates_of(product: int) -> tuple[int, int]:
    if product == RULED_PRODUCT:
        return PRODUCT_RATES
    if product in CATEGORY_PRODUCTS:
        return CATEGORY_RATES
    return DEFAULT_RATES


def price_of(product: int) -> int:
    return 990 + 137 * product


def lines_of(n: int) -> list[tuple[int, int]]:
    """(product, quantity) of order n: one or two lines, spread over every product."""
    lines = [(n % PRODUCTS, 1 + n % 3)]
    if n % 4 == 0:
        lines.append(((n * 7 + 3) % PRODUCTS, 1))
    if len(lines) == 2 and lines[0][0] == lines[1][0]:
        lines.pop()
    return lines


def expected_commission(n: int) -> int:
    """What order n earns its two sharers, by the rules' own arithmetic: the exact blended rate
    (Σ rate × line total over the subtotal), times what was paid, rounded down once."""
    lines = [(product, quantity * price_of(product)) for product, quantity in lines_of(n)]
    subtotal = sum(total for _, total in lines)
    earned = 0
    for level in (0, 1):
        weight = sum(rates_of(product)[level] * total for product, total in lines)
        earned += subtotal * weight // (subtotal * 10_000)
    return earned


# --- setup ---------------------------------------------------------------------------------------
def build_world() -> dict[str, Any]:
    from shequn.catalog import actions as catalog
    from shequn.catalog.models import Product
    from shequn.members.models import Member
    from shequn.org import actions as org
    from shequn.org.models import NodeKind
    from shequn.org.roles import Role
    from shequn.referrals.actions import set_commission_rule
    from shequn.referrals.ledger import chain_account, sharer_account
    from shequn.referrals.models import AccountKind, Sharer, SharerStatus

    hq, admin = bench_chain()
    operator = bench_staff(hq, Role.HQ_OPERATOR, "bench_operator", acting=admin)
    store = org.create_node(
        acting=admin, parent=hq, name="基准店", kind=NodeKind.STORE, code="bench-store"
    )
    supplier = catalog.create_supplier(acting=admin, name="基准供应商")
    grain = catalog.get_or_create_category(acting=admin, name="粮油")
    skus: list[int] = []
    products: list[Product] = []
    for i in range(PRODUCTS):
        product = catalog.create_product(acting=admin, supplier=supplier, name=f"基准商品{i}")
        if i in CATEGORY_PRODUCTS:
            Product.objects.filter(pk=product.pk).update(category=grain)
        sku = catalog.add_sku(
            acting=admin, product=product, code=f"B-{i}", price_fen=price_of(i), spec="1件"
        )
        skus.append(sku.pk)
        products.append(product)
    set_commission_rule(acting=operator, rates_bp=list(DEFAULT_RATES))
    set_commission_rule(acting=operator, rates_bp=list(CATEGORY_RATES), category=grain)
    set_commission_rule(
        acting=operator, rates_bp=[PRODUCT_RATES[0]], product=products[RULED_PRODUCT]
    )
    sharer_count = PARENTS * (1 + CHILDREN_PER_PARENT)
    Member.objects.bulk_create(
        Member(chain=hq, phone=phone(n), home_store=store) for n in range(BUYERS + sharer_count)
    )
    by_phone = dict(Member.objects.filter(chain=hq).values_list("phone", "id"))
    buyers = [by_phone[phone(n)] for n in range(BUYERS)]
    people = [by_phone[phone(BUYERS + n)] for n in range(sharer_count)]
    parents = Sharer.objects.bulk_create(
        Sharer(member_id=m, chain=hq, status=SharerStatus.APPROVED) for m in people[:PARENTS]
    )
    children = Sharer.objects.bulk_create(
        Sharer(
            member_id=m,
            chain=hq,
            status=SharerStatus.APPROVED,
            parent=parents[i % PARENTS],
        )
        for i, m in enumerate(people[PARENTS:])
    )
    for sharer in [*parents, *children]:
        sharer_account(Member(pk=sharer.member_id, chain_id=hq.pk), AccountKind.PENDING)
    chain_account(hq.pk, AccountKind.COMMISSION_EXPENSE)
    return {
        "chain_id": hq.pk,
        "store_id": store.pk,
        "skus": skus,
        "buyers": buyers,
        "children": [c.member_id for c in children],
        "product_ids": [p.pk for p in products],
    }


def write_orders(world: dict[str, Any]) -> None:
    """200,000 paid orders and their lines, by COPY (the setup, not what is measured)."""
    import psycopg

    from shequn.core import timeutil

    now = timeutil.now()
    names = {i: f"基准商品{i}" for i in range(PRODUCTS)}
    with psycopg.connect(f"{PG_SERVER}/{PG_DB}") as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY orders_order (id, number, chain_id, store_id, member_id, status, fulfilment,"
            " delivery_address, subtotal_fen, total_fen, channel, sharer_id, content_ref,"
            " idempotency_key, request_fingerprint, payment_deadline, payment_channel, paid_at,"
            " close_reason, pickup_code, created_at) FROM STDIN"
        ) as copy:
            for n in range(ORDERS):
                total = sum(q * price_of(p) for p, q in lines_of(n))
                at = now - timedelta(days=20, seconds=n)
                copy.write_row(
                    (
                        n + 1,
                        f"S{n:012d}",
                        world["chain_id"],
                        world["store_id"],
                        world["buyers"][n % BUYERS],
                        "paid",
                        "pickup",
                        "",
                        total,
                        total,
                        "group_share",
                        world["children"][n % len(world["children"])],
                        "",
                        f"k{n}",
                        "f" * 64,
                        at + timedelta(minutes=15),
                        "jsapi",
                        at,
                        "",
                        "",
                        at,
                    )
                )
        with cur.copy(
            "COPY orders_orderline (order_id, sku_id, product_name, sku_spec, quantity,"
            " unit_price_fen, line_total_fen) FROM STDIN"
        ) as copy:
            for n in range(ORDERS):
                for product, quantity in lines_of(n):
                    price = price_of(product)
                    copy.write_row(
                        (
                            n + 1,
                            world["skus"][product],
                            names[product],
                            "1件",
                            quantity,
                            price,
                            quantity * price,
                        )
                    )
        cur.execute("SELECT setval('orders_order_id_seq', %s)", (ORDERS + 1,))
        cur.execute("ANALYZE")


# --- the reference: bare INSERT … SELECT of the same ledger rows ----------------------------------
REFERENCE_DDL = [
    "DROP TABLE IF EXISTS bench_ref_posting, bench_ref_txn, bench_ref_rate",
    "CREATE TABLE bench_ref_txn (LIKE referrals_ledgertransaction INCLUDING ALL)",
    "CREATE TABLE bench_ref_posting (LIKE referrals_posting INCLUDING ALL)",
    "ALTER TABLE bench_ref_txn ADD FOREIGN KEY (order_id) REFERENCES orders_order (id)"
    " DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE bench_ref_txn ADD FOREIGN KEY (member_id) REFERENCES members_member (id)"
    " DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE bench_ref_txn ADD FOREIGN KEY (chain_id) REFERENCES org_orgnode (id)"
    " DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE bench_ref_posting ADD FOREIGN KEY (transaction_id) REFERENCES bench_ref_txn (id)"
    " DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE bench_ref_posting ADD FOREIGN KEY (account_id) REFERENCES referrals_account (id)"
    " DEFERRABLE INITIALLY DEFERRED",
    "CREATE TABLE bench_ref_rate (product_id bigint PRIMARY KEY, l1 bigint, l2 bigint)",
]
REFERENCE_SQL = [
    """CREATE TEMP TABLE ref_due ON COMMIT DROP AS
       WITH rate AS (
           SELECT l.order_id, SUM(r.l1 * l.line_total_fen)::bigint AS w1,
                  SUM(r.l2 * l.line_total_fen)::bigint AS w2
           FROM orders_orderline l JOIN catalog_sku k ON k.id = l.sku_id
           JOIN bench_ref_rate r ON r.product_id = k.product_id GROUP BY l.order_id)
       SELECT o.id AS order_id, o.sharer_id AS member_id, o.number,
              (o.total_fen * (rate.w1 / o.subtotal_fen)
               + o.total_fen * (rate.w1 %% o.subtotal_fen) / o.subtotal_fen) / 10000 AS amount_fen
       FROM orders_order o JOIN rate ON rate.order_id = o.id
       WHERE o.chain_id = %(chain)s AND o.paid_at IS NOT NULL
       UNION ALL
       SELECT o.id, p.member_id, o.number,
              (o.total_fen * (rate.w2 / o.subtotal_fen)
               + o.total_fen * (rate.w2 %% o.subtotal_fen) / o.subtotal_fen) / 10000
       FROM orders_order o JOIN rate ON rate.order_id = o.id
       JOIN referrals_sharer s ON s.member_id = o.sharer_id
       JOIN referrals_sharer p ON p.id = s.parent_id
       WHERE o.chain_id = %(chain)s AND o.paid_at IS NOT NULL""",
    "DELETE FROM ref_due WHERE amount_fen <= 0",
    """INSERT INTO bench_ref_txn (chain_id, kind, key, memo, order_id, member_id, flagged,
           created_at)
       SELECT %(chain)s, 'accrue', 'accrue:order:' || order_id || ':sharer:' || member_id,
              '订单 ' || number || ' 佣金', order_id, member_id, false, now() FROM ref_due""",
    """INSERT INTO bench_ref_posting (transaction_id, account_id, amount_fen)
       SELECT t.id, a.id, d.amount_fen FROM ref_due d
       JOIN bench_ref_txn t ON t.order_id = d.order_id AND t.member_id = d.member_id
       JOIN referrals_account a ON a.member_id = d.member_id AND a.kind = 'pending'
       UNION ALL
       SELECT t.id, %(expense)s, -d.amount_fen FROM ref_due d
       JOIN bench_ref_txn t ON t.order_id = d.order_id AND t.member_id = d.member_id""",
]


def run_reference(world: dict[str, Any], expense_id: int) -> tuple[float, int]:
    """One reference run on fresh copies of the ledger tables: (seconds, Σ level-1+2 fen)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/{PG_DB}", autocommit=True) as conn:
        for statement in REFERENCE_DDL:
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_ref_rate VALUES (%s, %s, %s)",
                [(pk, *rates_of(i)) for i, pk in enumerate(world["product_ids"])],
            )
    params = {"chain": world["chain_id"], "expense": expense_id}
    with psycopg.connect(f"{PG_SERVER}/{PG_DB}") as conn:
        started = time.perf_counter()
        with conn.transaction():
            for statement in REFERENCE_SQL:
                conn.execute(statement, params)
        seconds = time.perf_counter() - started
        booked = conn.execute(
            "SELECT COALESCE(SUM(amount_fen), 0) FROM bench_ref_posting WHERE amount_fen > 0"
        ).fetchone()
    return seconds, int(booked[0]) if booked else 0


# --- checks --------------------------------------------------------------------------------------
def ledger_balanced() -> bool:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM (SELECT transaction_id FROM referrals_posting"
            " GROUP BY transaction_id HAVING SUM(amount_fen) <> 0) unbalanced"
        )
        unbalanced = cur.fetchone()[0]
        cur.execute(
            "SELECT COUNT(*) FROM referrals_account a WHERE a.balance_fen <> COALESCE("
            " (SELECT SUM(p.amount_fen) FROM referrals_posting p WHERE p.account_id = a.id), 0)"
        )
        drifted = cur.fetchone()[0]
    return unbalanced == 0 and drifted == 0


def main() -> int:
    if not postgres_answers("settlement", "skipping (PostgreSQL only)"):
        return 0
    os.environ["DATABASE_URL"] = recreate_database(PG_DB)
    os.environ["DJANGO_SETTINGS_MODULE"] = "shequn.settings.dev"
    os.environ["DEBUG"] = "0"
    os.chdir(ROOT)

    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    assert connection.vendor == "postgresql", f"DATABASE_URL points at {connection.vendor}"
    from shequn.referrals.bulk import book_commissions
    from shequn.referrals.ledger import chain_account
    from shequn.referrals.models import AccountKind, OrderCommission, Posting

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    world = build_world()
    write_orders(world)
    expected = sum(expected_commission(n) for n in range(ORDERS))
    log(f"[settlement] set up {ORDERS} paid orders in {time.perf_counter() - started:.1f} s")
    expense = chain_account(world["chain_id"], AccountKind.COMMISSION_EXPENSE)

    reference_s, reference_fen = run_reference(world, expense.pk)
    log(f"[settlement] reference: {reference_s:.2f} s, {reference_fen} fen")

    started = time.perf_counter()
    booked = book_commissions(chain_id=world["chain_id"])
    actions_s = time.perf_counter() - started
    log(
        f"[settlement] actions:   {actions_s:.2f} s, {booked.commissions} commissions,"
        f" {booked.booked_fen} fen, {booked.held} held"
    )
    postings = Posting.objects.count()
    started = time.perf_counter()
    again = book_commissions(chain_id=world["chain_id"])
    rerun_s = time.perf_counter() - started
    rerun_changed = again.commissions != 0 or Posting.objects.count() != postings
    log(f"[settlement] rerun:     {rerun_s:.2f} s, {again.commissions} commissions")

    second_s, _ = run_reference(world, expense.pk)
    reference_s = min(reference_s, second_s)
    log(f"[settlement] reference again: {second_s:.2f} s")

    total = OrderCommission.objects.count()
    exact = booked.booked_fen == expected == reference_fen
    balanced = ledger_balanced()
    result = {
        "bench": "settlement",
        "db": "postgresql",
        "orders": ORDERS,
        "commissions": total,
        "seconds": round(actions_s, 2),
        "orders_per_s": round(ORDERS / actions_s),
        "reference_orders_per_s": round(ORDERS / reference_s),
        "ratio": round(reference_s / actions_s, 3),
        "rerun_seconds": round(rerun_s, 2),
        "rerun_changed_anything": rerun_changed,
        "commission_fen": booked.booked_fen,
        "expected_fen": expected,
        "exact": exact,
        "balanced": balanced,
    }
    print(json.dumps(result), flush=True)
    return 0 if exact and balanced and not rerun_changed else 1


if __name__ == "__main__":
    sys.exit(main())
