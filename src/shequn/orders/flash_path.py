"""The flash-sale fast path (PostgreSQL): a one-line flash order in one SQL statement.

A flash sale is the hottest write this platform has (seed 000: 3,000 boxes to 400 groups in an
hour, and we want it done in seconds). ``place_order``'s general path takes 11 round trips and
~2.3 ms of Python per order, so on a 2-core machine the interpreter, not the database, sets the
pace. For the common case — one line, the sale's SKU, no coupon — ``place_order`` hands over to
this module, which does the same work in one statement of data-modifying CTEs:

    member's counter (guarded upsert) → the quota (guarded UPDATE that also checks the sale is
    live) → the shelf (guarded UPDATE that also checks the SKU is on sale) → the order, its line
    and its audit row (INSERTs that run only if every claim before them took).

Outside a caller's transaction that statement is the whole transaction (one round trip; the
hot quota row is locked only inside PostgreSQL, never across a client round trip).

Every guard is the same as on the general path and the same CHECK constraints stand behind
them; an order placed here is indistinguishable from one placed there (same fingerprint, so
a retry finds it on either path). When the statement takes nothing, the precise reason is
found afterwards by the general path's readers — refusals may be slower, sales are not.

What is cached (per process): only what never changes after a sale is created (its SKU,
price, limits, quota rows), so a cancellation or a closed window is still decided by the
database, in the statement itself.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DataError, connection, connections, models, transaction
from psycopg.errors import DivisionByZero

from shequn.catalog.models import Product, Sku, StockItem
from shequn.core import timeutil
from shequn.core.audit import AuditEvent
from shequn.core.context import current_context
from shequn.core.errors import RuleViolation
from shequn.core.prepared import fetch_one_prepared
from shequn.members.models import Member
from shequn.org.models import OrgNode
from shequn.promotions.flash import SOLD_OUT_MESSAGE
from shequn.promotions.models import (
    FlashSale,
    FlashSaleBuyer,
    FlashSaleQuota,
    QuotaScope,
)

from .models import Order, OrderLine

STATIC_TTL_S = 60.0  # a sale's immutable facts; a miss costs one SELECT


@dataclass(frozen=True)
class SaleFacts:
    """What a sale was created with and never changes (there is no "edit sale" action)."""

    chain_id: int
    sku_id: int
    price_fen: int
    per_member_limit: int
    per_order_limit: int
    quota_by_store: dict[int | None, int]  # store id (None: the chain's row) → quota row id
    scope: str


_facts: dict[int, tuple[float, SaleFacts | None]] = {}


def sale_facts(sale_id: int) -> SaleFacts | None:
    hit = _facts.get(sale_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    sale = FlashSale.objects.filter(pk=sale_id).first()
    facts = None
    if sale is not None:
        facts = SaleFacts(
            chain_id=sale.chain_id,
            sku_id=sale.sku_id,
            price_fen=sale.price_fen,
            per_member_limit=sale.per_member_limit,
            per_order_limit=sale.per_order_limit,
            quota_by_store=dict(
                FlashSaleQuota.objects.filter(sale_id=sale_id).values_list("store_id", "pk")
            ),
            scope=sale.quota_scope,
        )
    _facts[sale_id] = (time.monotonic() + STATIC_TTL_S, facts)
    return facts


def forget_cached_facts() -> None:
    """Tests that rewrite a sale's rows by hand call this; actions never need to."""
    from shequn.promotions.coupons import forget_running_instant_discounts
    from shequn.promotions.flash import forget_sold_out

    _facts.clear()
    forget_sold_out()
    forget_running_instant_discounts()


# --- the statement ----------------------------------------------------------------------------
def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


_ORDER_FIELDS = _fields(Order)
_ORDER_COLUMNS = [f.attname for f in Order._meta.concrete_fields]
_AUDIT_FIELDS = [f for f in _fields(AuditEvent) if f.attname != "target_id"]


@cache  # built on first use (the connection knows how to quote), then kept
def _statement() -> str:
    order_cols = ", ".join(connection.ops.quote_name(str(f.column)) for f in _ORDER_FIELDS)
    audit_cols = ", ".join(connection.ops.quote_name(str(f.column)) for f in _AUDIT_FIELDS)
    buyer, quota, sale = _table(FlashSaleBuyer), _table(FlashSaleQuota), _table(FlashSale)
    stock, sku, product, order = _table(StockItem), _table(Sku), _table(Product), _table(Order)
    holders = ", ".join([f"%(o{i})s" for i in range(len(_ORDER_FIELDS))])
    audit_holders = ", ".join([f"%(a{i})s" for i in range(len(_AUDIT_FIELDS))])
    live = "cancelled_at IS NULL AND starts_at <= %(now)s::timestamptz AND ends_at > %(now)s::timestamptz"
    # ``info``, ``prior``, ``item`` and ``shelf`` read the snapshot: nothing is written for a
    # request that is a retry or that the sale or the shelf refuses anyway (sold out, closed,
    # off sale) — and the reply says why. Then the member's counter, the order, its line and
    # its audit row; the two hot rows (the quota, then the shelf) are claimed last, so they
    # stay locked only for their own UPDATEs and the commit, not while the order's indexes
    # are written. Those two UPDATEs touch one table each: a buyer queued behind the row
    # re-checks only that row when it gets it (a join would be re-run for every buyer in the
    # queue: 471 → 648 orders/s at 8 workers). Whether the sale is live is read once, in
    # ``info``; a cancellation that commits meanwhile stops the next buyer, as documented
    # ("orders already placed stand").
    return (
        f"WITH info AS (SELECT q.quota - q.sold AS units_left, s.cancelled_at, s.starts_at,"  # noqa: S608
        f" s.ends_at FROM {quota} q JOIN {sale} s ON s.id = q.sale_id WHERE q.id = %(quota)s::bigint),"
        f" prior AS (SELECT id FROM {order}"
        f" WHERE member_id = %(member)s::bigint AND idempotency_key = %(key)s::varchar),"
        f" item AS (SELECT p.name, g.spec FROM {sku} g JOIN {product} p ON p.id = g.product_id"
        f" WHERE g.id = %(sku)s::bigint AND g.is_active AND p.is_active),"
        f" shelf AS (SELECT quantity - quantity_allocated AS left_ FROM {stock}"
        f" WHERE store_id = %(store)s::bigint AND sku_id = %(sku)s::bigint),"
        f" m AS (INSERT INTO {buyer} (sale_id, member_id, bought)"
        f" SELECT %(sale)s::bigint, %(member)s::bigint, %(n)s::integer WHERE NOT EXISTS (SELECT 1 FROM prior)"
        f" AND EXISTS (SELECT 1 FROM info WHERE units_left >= %(n)s::integer AND {live})"
        f" AND EXISTS (SELECT 1 FROM item) AND EXISTS (SELECT 1 FROM shelf WHERE left_ >= %(n)s::integer)"
        f" ON CONFLICT (sale_id, member_id) DO UPDATE SET bought = {buyer}.bought"
        f" + excluded.bought WHERE {buyer}.bought + excluded.bought <= %(limit)s::integer RETURNING 1),"
        f" o AS (INSERT INTO {order} ({order_cols}) SELECT {holders}"
        f" WHERE EXISTS (SELECT 1 FROM m)"
        f" ON CONFLICT (member_id, idempotency_key) DO NOTHING RETURNING id),"
        f" l AS (INSERT INTO {_table(OrderLine)} (order_id, sku_id, product_name, sku_spec,"
        f" quantity, unit_price_fen, line_total_fen, flash_quota_id)"
        f" SELECT o.id, %(sku)s::bigint, item.name, item.spec, %(n)s::integer, %(price)s::integer,"
        f" %(line_total)s::integer, %(quota)s::bigint FROM o, item RETURNING 1),"
        f" a AS (INSERT INTO {_table(AuditEvent)} ({audit_cols}, target_id)"
        f" SELECT {audit_holders}, o.id::text FROM o RETURNING 1),"
        f" q AS (UPDATE {quota} SET sold = sold + %(n)s::integer"
        f" WHERE id = %(quota)s::bigint AND sold + %(n)s::integer <= quota"
        f" AND EXISTS (SELECT 1 FROM l) AND EXISTS (SELECT 1 FROM a) RETURNING 1),"
        f" k AS (UPDATE {stock} SET quantity_allocated = quantity_allocated + %(n)s::integer"
        f" WHERE store_id = %(store)s::bigint AND sku_id = %(sku)s::bigint"
        f" AND quantity >= quantity_allocated + %(n)s::integer AND EXISTS (SELECT 1 FROM q) RETURNING 1)"
        f" SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM k), (SELECT id FROM o),"
        f" (SELECT id FROM prior), (SELECT units_left FROM info),"
        f" (SELECT cancelled_at FROM info), (SELECT starts_at FROM info),"
        f" (SELECT ends_at FROM info), (SELECT count(*) FROM item), (SELECT left_ FROM shelf),"
        # All or nothing without a transaction of our own: if the counter moved but a later
        # step took nothing (someone took the last units between our read and our write, or
        # the same key's order was placed meanwhile), divide by zero so the statement fails
        # and PostgreSQL undoes every part of it.
        f" CASE WHEN (SELECT count(*) FROM m) = 0 THEN 0 ELSE 1 / (SELECT count(*) FROM k) END,"
        # Asynchronous commit for this statement's own transaction only: see the setting
        # FLASH_ORDER_ASYNC_COMMIT for what it risks and buys.
        f" CASE WHEN %(async)s::boolean THEN set_config('synchronous_commit', 'off', true) END"
    )


# Admission: at most this many of a process's threads run the statement at once; the rest
# wait here, not in PostgreSQL's lock queue for the hot quota row. A waiter there is woken,
# re-reads the row and queues again for every order ahead of it, and with 64 waiters that
# convoy costs more than the orders themselves; here a waiter costs nothing until it is let in.
@cache  # one per process, sized by the settings on first use
def _admitted() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(settings.FLASH_STATEMENT_CONCURRENCY)


@cache
def _placed_before_sql() -> str:
    return (
        f"SELECT EXISTS (SELECT 1 FROM {_table(Order)}"  # noqa: S608
        " WHERE member_id = %(member)s::bigint AND idempotency_key = %(key)s::varchar)"
    )


def placed_before(member_id: int, key: str) -> bool:
    """Whether this member's key already placed an order (a retry), in one prepared lookup."""
    return bool(_execute_prepared(_placed_before_sql(), {"member": member_id, "key": key})[0])


def _execute_prepared(sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    # Binary results: the sale's three times come back as 8 bytes each, not as text that
    # psycopg parses on every order.
    row = fetch_one_prepared(sql, params, binary=True)
    if row is None:  # a SELECT without FROM always yields one row
        raise RuntimeError("the flash statement returned no row")
    return row


def _complete(fields: list[models.Field[Any, Any]], values: dict[str, Any]) -> list[Any]:
    """Every field's value in field order: the given one, or the field's default."""
    return [
        values[field.attname] if field.attname in values else field.get_default()
        for field in fields
    ]


# Fields whose values go to psycopg as they are when they already have the field's own Python
# type (an aware datetime for a DateTimeField; a choices member as its text): for them
# ``get_db_prep_save`` returns the value itself, and calling it for ~40 columns cost ~0.1 ms
# per order. Any other field (JSON, IP address …) or value is prepared by Django.
_AS_IS: dict[type[models.Field[Any, Any]], type] = {
    models.AutoField: int,
    models.BigAutoField: int,
    models.BooleanField: bool,
    models.CharField: str,
    models.DateTimeField: datetime,
    models.ForeignKey: int,
    models.IntegerField: int,
    models.PositiveIntegerField: int,
}


def _prepared(fields: list[models.Field[Any, Any]], values: list[Any]) -> list[Any]:
    # The wrapper itself, not the ``connection`` proxy: each field asks it several things,
    # and every question through the proxy is a thread-local lookup.
    wrapper = connections[DEFAULT_DB_ALIAS]
    prepared = []
    for field, value in zip(fields, values, strict=True):
        own = _AS_IS.get(type(field))
        naive = type(value) is datetime and value.tzinfo is None
        if own is not None and (value is None or type(value) is own) and not naive:
            prepared.append(value)
            continue
        if own is str and isinstance(value, str):  # a choices member: psycopg writes names
            prepared.append(str.__str__(value))
            continue
        prepared.append(field.get_db_prep_save(value, wrapper))
    return prepared


def place_flash_order(
    *,
    facts: SaleFacts,
    sale_id: int,
    quota_id: int,
    member: Member,
    store: OrgNode,
    quantity: int,
    order_values: dict[str, Any],
    now: datetime,
) -> Order | Refusal:
    """Place the order in one statement. Returns the order, or the refusal: the request is a
    ``retry`` of an order; or what refused it (``member``: the sale, its quota or the
    member's limit; ``stock``: the shelf or the SKU) with the sale as the statement saw it —
    nothing was written; or ``race``: a claim lost a race after the counter moved (or the
    same key's order was placed meanwhile), and the statement undid itself."""
    price = facts.price_fen
    ctx = current_context()
    audit = {
        "occurred_at": now,
        "actor_id": None,
        "actor_label": "",
        "action": "orders.placed",
        "target_type": Order._meta.label_lower,
        "scope_path": store.path,
        "ip": ctx.ip,
        "channel": ctx.channel,
        "details": {
            "member": member.pk,
            "total_fen": order_values["total_fen"],
            "channel": order_values["channel"],
        },
    }
    params: dict[str, Any] = {
        "quota": quota_id,
        "member": member.pk,
        "key": order_values["idempotency_key"],
        "sale": sale_id,
        "n": quantity,
        "now": now,
        "limit": facts.per_member_limit,
        "store": store.pk,
        "sku": facts.sku_id,
        "price": price,
        "line_total": price * quantity,
    }
    order_row = _complete(_ORDER_FIELDS, order_values)
    for i, value in enumerate(_prepared(_ORDER_FIELDS, order_row)):
        params[f"o{i}"] = value
    for i, value in enumerate(_prepared(_AUDIT_FIELDS, _complete(_AUDIT_FIELDS, audit))):
        params[f"a{i}"] = value
    # Outside a transaction the statement is its own transaction: one round trip, and the hot
    # rows stay locked only while PostgreSQL finishes it — never while this thread waits for
    # the interpreter to send a COMMIT. Inside one (a caller's atomic block, tests) it runs
    # in a savepoint so a refusal undoes only itself.
    inside = connection.in_atomic_block
    params["async"] = not inside and settings.FLASH_ORDER_ASYNC_COMMIT
    scope = transaction.atomic() if inside else nullcontext()
    try:
        with _admitted(), scope:
            row = _execute_prepared(_statement(), params)
    except DataError as exc:
        if isinstance(exc.__cause__, DivisionByZero):  # a claim lost a race: all undone
            return Refusal("race", None)
        raise
    took_member, took_stock, order_id, prior = row[:4]
    if prior is not None:
        return Refusal("retry", None)
    seen = Snapshot(*row[4:8])
    if not took_member:
        items, shelf_left = row[8:10]
        shelf_short = not items or shelf_left is None or shelf_left < quantity
        if shelf_short and seen.live(now) and (seen.units_left or 0) >= quantity:
            return Refusal("stock", seen)
        return Refusal("member", seen)
    if not (took_stock and order_id):  # cannot happen: the statement undoes itself instead
        raise RuntimeError(f"flash order {order_id}: half placed")
    # All fields in order: Django's quick way to build an instance (as a row just read).
    return Order.from_db(DEFAULT_DB_ALIAS, _ORDER_COLUMNS, [order_id, *order_row])


@dataclass(frozen=True)
class Snapshot:
    """The sale as the statement saw it, to say why it took nothing."""

    units_left: int | None
    cancelled_at: datetime | None
    starts_at: datetime | None
    ends_at: datetime | None

    def live(self, now: datetime) -> bool:
        return (
            self.cancelled_at is None
            and self.starts_at is not None
            and self.ends_at is not None
            and self.starts_at <= now < self.ends_at
        )


@dataclass(frozen=True)
class Refusal:
    step: str  # retry, member (the sale, its quota or the member's limit), stock, race
    snapshot: Snapshot | None


def explain_refusal(
    refusal: Refusal, facts: SaleFacts, now: datetime, quantity: int
) -> RuleViolation:
    """The member-facing error for a claim that took nothing, worded as the general path's (a
    parity test holds the two to the same answer for every case)."""
    seen = refusal.snapshot
    if refusal.step == "member" and seen is not None:
        if seen.cancelled_at is not None:
            return RuleViolation("该秒杀活动已取消", code="flash_cancelled")
        if seen.starts_at is not None and now < seen.starts_at:
            return RuleViolation(
                f"秒杀尚未开始, 开始时间 {timeutil.format_local(seen.starts_at)}",
                code="flash_not_started",
            )
        if seen.ends_at is not None and now >= seen.ends_at:
            return RuleViolation("秒杀已结束", code="flash_ended")
        if (seen.units_left or 0) >= quantity:  # units enough: the member's limit refused
            return RuleViolation(
                f"每人限购 {facts.per_member_limit} 件, 你已达到上限", code="flash_member_limit"
            )
    return RuleViolation(SOLD_OUT_MESSAGE, code="flash_sold_out")


def quota_for(facts: SaleFacts, store: OrgNode) -> int | None:
    return facts.quota_by_store.get(None if facts.scope == QuotaScope.CHAIN else store.pk)
