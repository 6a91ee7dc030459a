"""The flash-sale hot path: read what a sale offers at a store, then claim and release units.

Like ``catalog/stock.py`` these are fixed SQL statements run inside ``place_order``'s
transaction, after the order rows and just before the stock UPDATE, in a fixed order: the
member's counter (an upsert guarded by the per-member limit, not a hot row), then the quota row
(the hot row: ``sold + n <= quota``), then stock. The CHECK constraints back every guard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction

from shequn.catalog.models import StockItem
from shequn.catalog.stock import RESERVE_SQL as _RESERVE_SQL
from shequn.core import timeutil
from shequn.core.errors import NotFound, RuleViolation
from shequn.org.models import OrgNode

from .limits import claim_within_limit
from .models import FlashSale, FlashSaleBuyer, FlashSaleQuota, QuotaScope

_SALE = FlashSale._meta.db_table
_QUOTA = FlashSaleQuota._meta.db_table
_BUYER = FlashSaleBuyer._meta.db_table

_OFFER_SQL = (
    f"SELECT s.sku_id, s.price_fen, s.starts_at, s.ends_at, s.cancelled_at,"  # noqa: S608
    f" s.per_member_limit, s.per_order_limit, s.quota_scope, q.id, q.store_id, q.quota - q.sold"
    f" FROM {_SALE} s LEFT JOIN {_QUOTA} q ON q.sale_id = s.id"
    f" AND (q.store_id = %s OR q.store_id IS NULL)"
    f" WHERE s.id = %s AND s.chain_id = %s"
)
_CLAIM_QUOTA_SQL = f"UPDATE {_QUOTA} SET sold = sold + %s WHERE id = %s AND sold + %s <= quota"  # noqa: S608
# PostgreSQL: the quota and the shelf in one statement, so the hot quota row is locked for one
# round trip less (data-modifying CTEs share one snapshot; ``s`` runs only if ``q`` took units).
_STOCK = StockItem._meta.db_table
_CLAIM_QUOTA_AND_STOCK_SQL = (
    f"WITH q AS (UPDATE {_QUOTA} SET sold = sold + %s"  # noqa: S608
    f" WHERE id = %s AND sold + %s <= quota RETURNING 1),"
    f" s AS (UPDATE {_STOCK} SET quantity_allocated = quantity_allocated + %s"
    f" WHERE store_id = %s AND sku_id = %s AND quantity >= quantity_allocated + %s"
    f" AND EXISTS (SELECT 1 FROM q) RETURNING 1)"
    f" SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM s)"
)
_RELEASE_QUOTA_SQL = f"UPDATE {_QUOTA} SET sold = sold - %s WHERE id = %s AND sold >= %s"  # noqa: S608
_RELEASE_MEMBER_SQL = (
    f"UPDATE {_BUYER} SET bought = bought - %s"  # noqa: S608
    f" WHERE sale_id = (SELECT sale_id FROM {_QUOTA} WHERE id = %s) AND member_id = %s"
    f" AND bought >= %s"
)


# --- the sold-out memo ---------------------------------------------------------------------------
# Once a quota is gone, a popular sale keeps being asked for it (seed 000: 400 groups at once);
# each process remembers "sold out" for a moment and answers those requests without the sale's
# statement. Units given back in this process clear the memo at once (and again when that
# transaction commits); in another process a buyer may be told "sold out" for at most this long
# after units come back.
SOLD_OUT_MESSAGE = "秒杀名额已抢光"
SOLD_OUT_MEMO_S = 1.0
_sold_out_until: dict[int, float] = {}  # quota id → monotonic time the memo expires


def known_sold_out(quota_id: int) -> bool:
    until = _sold_out_until.get(quota_id)
    return until is not None and until > time.monotonic()


def note_sold_out(quota_id: int) -> None:
    _sold_out_until[quota_id] = time.monotonic() + SOLD_OUT_MEMO_S


def forget_sold_out(quota_id: int | None = None) -> None:
    """Forget one quota's memo (units came back), or every memo (tests)."""
    if quota_id is None:
        _sold_out_until.clear()
    else:
        _sold_out_until.pop(quota_id, None)


@dataclass(frozen=True)
class FlashOffer:
    sale_id: int
    sku_id: int
    price_fen: int
    per_member_limit: int
    per_order_limit: int
    quota_id: int


def flash_offer(*, sale_id: int, store: OrgNode, chain_id: int, now: datetime) -> FlashOffer:
    """What the sale offers at ``store`` right now, or the precise reason it offers nothing."""
    with connection.cursor() as cursor:
        cursor.execute(_OFFER_SQL, [store.pk, sale_id, chain_id])
        rows = cursor.fetchall()
    if not rows:
        raise NotFound("秒杀活动不存在", code="unknown_flash_sale")
    sku_id, price, starts, ends, cancelled, per_member, per_order, scope, _, _, _ = rows[0]
    starts, ends = _aware(starts), _aware(ends)
    if cancelled is not None:
        raise RuleViolation("该秒杀活动已取消", code="flash_cancelled")
    if now < starts:
        raise RuleViolation(
            f"秒杀尚未开始, 开始时间 {timeutil.format_local(starts)}", code="flash_not_started"
        )
    if now >= ends:
        raise RuleViolation("秒杀已结束", code="flash_ended")
    wanted = None if scope == QuotaScope.CHAIN else store.pk
    quota = next((row for row in rows if row[8] is not None and row[9] == wanted), None)
    if quota is None:
        raise RuleViolation(f"{store.name}不参加该秒杀", code="flash_not_here")
    if quota[10] <= 0:  # sold out: say so before writing anything (the guarded UPDATE decides)
        raise RuleViolation(SOLD_OUT_MESSAGE, code="flash_sold_out")
    return FlashOffer(sale_id, sku_id, price, per_member, per_order, quota[8])


def _aware(moment: datetime | str) -> datetime:
    """SQLite hands raw SQL timestamps back as text; PostgreSQL as aware datetimes."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def claim_flash(
    offer: FlashOffer, *, member_id: int, quantity: int, store_id: int | None = None
) -> str | None:
    """Take ``quantity`` units for the member: None when taken, else why not (the caller's
    transaction must then roll back: a counter may already have moved). With ``store_id`` the
    shelf's units are reserved too (the order's only line), in the same statement on PostgreSQL.
    """
    if not claim_within_limit(
        FlashSaleBuyer,
        owner="sale_id",
        counter="bought",
        owner_id=offer.sale_id,
        member_id=member_id,
        quantity=quantity,
        limit=offer.per_member_limit,
    ):
        return "flash_member_limit"
    with connection.cursor() as cursor:
        if store_id is not None and connection.vendor == "postgresql":
            cursor.execute(
                _CLAIM_QUOTA_AND_STOCK_SQL,
                [quantity, offer.quota_id, quantity, quantity, store_id, offer.sku_id, quantity],
            )
            quota_taken, stock_taken = cursor.fetchone()
            if not quota_taken:
                return "flash_sold_out"
            return None if stock_taken else "out_of_stock"
        cursor.execute(_CLAIM_QUOTA_SQL, [quantity, offer.quota_id, quantity])
        if cursor.rowcount != 1:
            return "flash_sold_out"
        if store_id is not None:
            cursor.execute(_RESERVE_SQL, [quantity, store_id, offer.sku_id, quantity])
            if cursor.rowcount != 1:
                return "out_of_stock"
    return None


def release_flash(*, quota_id: int, member_id: int, quantity: int) -> bool:
    """Give units back (an order closed unpaid, or refunded before pickup), exactly once per
    call site's own exactly-once transition. False if the counters no longer add up."""
    # Now, for what this transaction does next, and after commit, in case a buyer in between
    # saw the quota still empty and noted it again.
    forget_sold_out(quota_id)
    transaction.on_commit(lambda: forget_sold_out(quota_id))
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_QUOTA_SQL, [quantity, quota_id, quantity])
        quota_ok = cursor.rowcount == 1
        cursor.execute(_RELEASE_MEMBER_SQL, [quantity, quota_id, member_id, quantity])
        return bool(quota_ok and cursor.rowcount == 1)
