"""Booking commissions for many paid orders at once, in sets (``book_commissions``).

At payment, ``actions.accrue_order_commissions`` books one order's commission as it happens.
This is the same booking for orders that did not get it then — orders imported from the tills
or an older system with their sharer, a chain that books nightly instead of on the hot path of
a flash sale, a catch-up after rules were set late — done as a handful of ``INSERT … SELECT``
statements per chunk of orders instead of a dozen queries per order, so a month of a large
chain (200,000 orders) books in seconds (``bench/settlement.py``).

It writes exactly what the per-order path writes, under the same idempotency keys (so neither
path ever books an order twice, and a rerun books nothing): one ``accrue`` transaction per
(order, sharer) with its two postings (commission expense → the sharer's pending account), the
``OrderCommission`` row (held, with the same reasons, when a fraud signal fires), the accounts'
balances, and — for orders already handed over — the date the freeze ends. The rules are the
per-order path's: the newest rule for the product, else category, else product role, else the
chain's default, blended over the order's lines; level 2 only for an approved parent who is
neither the buyer nor the sharer; the amount is ``floor(rate × (paid − refunded))``.
``tests/referrals/test_bulk_booking.py`` holds both paths to the same results.

Portable SQL (SQLite and PostgreSQL): the working set of one chunk goes through a temporary
table, and every statement runs inside one transaction per chunk that first locks the chain's
commission-expense account — the row every booking updates — so a chunk and a payment's own
booking never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, OuterRef, Subquery

from shequn.core import timeutil
from shequn.core.faults import crash_point
from shequn.members.models import IdentityChannel
from shequn.orders.models import Order, OrderStatus, RefundStatus

# The thresholds live with the per-order rules; importing them keeps one set of numbers.
from .actions import (
    REFUND_RATIO_HOLD,
    REFUND_RATIO_MIN_ORDERS,
    SAME_ADDRESS_ORDERS,
)
from .ledger import chain_account
from .models import (
    Account,
    AccountKind,
    CommissionStatus,
    OrderCommission,
    RuleKind,
    SharerStatus,
    TransactionKind,
)
from .policy import freeze_period

CHUNK = 20_000  # orders per transaction: a crash loses at most one chunk's work, never half


@dataclass
class BookingResult:
    orders_seen: int = 0
    commissions: int = 0  # OrderCommission rows written
    held: int = 0
    booked_fen: int = 0


_DUE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS referrals_due (
    order_id BIGINT NOT NULL,
    member_id BIGINT NOT NULL,
    level SMALLINT NOT NULL,
    rate_weight BIGINT NOT NULL,
    rate_per BIGINT NOT NULL,
    base_fen BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    hold_reason VARCHAR(100) NOT NULL,
    number VARCHAR(32) NOT NULL,
    txn_key VARCHAR(120) NOT NULL
)"""

# One chunk's commissions: per product the rule that applies (the per-order path's order of
# precedence, newest first), per order the blended rate and what it paid net of refunds, per
# sharer their last 30 days' refund ratio, then one row per (order, level) still to book.
# Integer arithmetic throughout (PostgreSQL's SUM of bigints is numeric: cast back); the exact
# rate is weight / per basis points and the amount is computed in the two parts
# ``commission.commission_for`` uses, so both paths round down to the same fen.
_FILL_DUE = """
WITH product_rule AS (
    SELECT p.id AS product_id, COALESCE(
        (SELECT r.id FROM referrals_commissionrule r
          WHERE r.chain_id = %(chain)s AND r.product_id = p.id ORDER BY r.id DESC LIMIT 1),
        (SELECT r.id FROM referrals_commissionrule r
          WHERE r.chain_id = %(chain)s AND r.category_id = p.category_id
          ORDER BY r.id DESC LIMIT 1),
        (SELECT r.id FROM referrals_commissionrule r
          WHERE r.chain_id = %(chain)s AND r.pyramid_role <> ''
            AND r.pyramid_role = p.pyramid_role ORDER BY r.id DESC LIMIT 1),
        (SELECT r.id FROM referrals_commissionrule r
          WHERE r.chain_id = %(chain)s AND r.product_id IS NULL AND r.category_id IS NULL
            AND r.pyramid_role = '' ORDER BY r.id DESC LIMIT 1)
    ) AS rule_id
    FROM catalog_product p WHERE p.chain_id = %(chain)s
),
candidate AS (
    SELECT o.id, o.number, o.member_id, o.sharer_id, o.subtotal_fen, o.delivery_address,
           o.created_at, o.status, o.total_fen - COALESCE((
               SELECT SUM(rf.amount_fen) FROM orders_refund rf
               JOIN orders_payment pay ON pay.id = rf.payment_id
               WHERE rf.order_id = o.id AND pay.refund_required = %(no)s
                 AND rf.status = %(refund_succeeded)s), 0) AS net_fen,
           s.parent_id
    FROM orders_order o
    JOIN referrals_sharer s ON s.member_id = o.sharer_id AND s.status = %(approved)s
    WHERE o.chain_id = %(chain)s AND o.id BETWEEN %(lo)s AND %(hi)s
      AND o.paid_at IS NOT NULL AND o.sharer_id <> o.member_id
      AND NOT EXISTS (SELECT 1 FROM referrals_ordercommission c WHERE c.order_id = o.id)
),
line_weight AS (
    SELECT l.order_id,
           CASE WHEN r.kind = %(fixed)s
                THEN CASE WHEN r.level1_bp * l.quantity < l.line_total_fen
                          THEN r.level1_bp * l.quantity ELSE l.line_total_fen END
                ELSE 0 END AS fixed1,
           CASE WHEN r.kind = %(fixed)s THEN r.level2_bp * l.quantity ELSE 0 END AS fixed2,
           CASE WHEN r.kind = %(fixed)s THEN 0
                ELSE CAST(r.level1_bp AS BIGINT) * l.line_total_fen END AS percent1,
           CASE WHEN r.kind = %(fixed)s THEN 0
                ELSE CAST(r.level2_bp AS BIGINT) * l.line_total_fen END AS percent2,
           l.line_total_fen
    FROM orders_orderline l
    JOIN candidate c ON c.id = l.order_id
    JOIN catalog_sku k ON k.id = l.sku_id
    JOIN product_rule pr ON pr.product_id = k.product_id
    JOIN referrals_commissionrule r ON r.id = pr.rule_id
),
order_rate AS (
    SELECT order_id,
           CAST(SUM(percent1 + fixed1 * 10000) AS BIGINT) AS w1,
           CAST(SUM(percent2 + 10000 * (CASE WHEN fixed2 < line_total_fen - fixed1
                                             THEN fixed2 ELSE line_total_fen - fixed1 END))
                AS BIGINT) AS w2
    FROM line_weight
    GROUP BY order_id
),
sharer_refunds AS (
    SELECT o.sharer_id,
           COUNT(*) AS orders,
           SUM(CASE WHEN o.status = %(refunded)s THEN 1 ELSE 0 END) AS refunded
    FROM orders_order o
    WHERE o.chain_id = %(chain)s AND o.paid_at IS NOT NULL AND o.created_at >= %(month_ago)s
      AND o.sharer_id IN (SELECT DISTINCT sharer_id FROM candidate)
    GROUP BY o.sharer_id
),
rated AS (
    SELECT c.*, orr.w1, orr.w2,
           CASE WHEN c.subtotal_fen > 0 THEN c.subtotal_fen ELSE 1 END AS per,
           CASE
             WHEN EXISTS (
               SELECT 1 FROM orders_payment pay JOIN members_channelidentity ci
                 ON ci.value = pay.payer_openid AND ci.channel = %(openid)s
                AND ci.member_id = c.sharer_id
               WHERE pay.order_id = c.id)
             THEN '付款人是推客本人(同一微信)'
             WHEN c.delivery_address <> '' AND (
               SELECT COUNT(DISTINCT o2.member_id) FROM orders_order o2
               WHERE o2.sharer_id = c.sharer_id AND o2.delivery_address = c.delivery_address
                 AND o2.created_at >= %(week_ago)s AND o2.member_id <> c.member_id
             ) >= %(same_address)s
             THEN '一周内 ' || (1 + (
               SELECT COUNT(DISTINCT o2.member_id) FROM orders_order o2
               WHERE o2.sharer_id = c.sharer_id AND o2.delivery_address = c.delivery_address
                 AND o2.created_at >= %(week_ago)s AND o2.member_id <> c.member_id
             )) || ' 位顾客使用同一收货地址'
             WHEN sr.orders - (CASE WHEN c.created_at >= %(month_ago)s THEN 1 ELSE 0 END)
                  >= %(refund_min)s
              AND 100 * (sr.refunded - (CASE WHEN c.created_at >= %(month_ago)s
                                               AND c.status = %(refunded)s THEN 1 ELSE 0 END))
                  >= %(refund_pct)s * (sr.orders - (CASE WHEN c.created_at >= %(month_ago)s
                                                         THEN 1 ELSE 0 END))
             THEN '近 30 天退款率 ' || (100 * (sr.refunded - (
                    CASE WHEN c.created_at >= %(month_ago)s AND c.status = %(refunded)s THEN 1 ELSE 0 END))
                  / (sr.orders - (CASE WHEN c.created_at >= %(month_ago)s THEN 1 ELSE 0 END)))
                  || '%%'
             ELSE ''
           END AS hold_reason
    FROM candidate c
    JOIN order_rate orr ON orr.order_id = c.id
    LEFT JOIN sharer_refunds sr ON sr.sharer_id = c.sharer_id
)
INSERT INTO referrals_due
    (order_id, member_id, level, rate_weight, rate_per, base_fen, amount_fen, hold_reason,
     number, txn_key)
SELECT id, sharer_id, 1, w1, per, net_fen,
       (paid * (w1 / per) + paid * (w1 %% per) / per) / 10000,
       hold_reason, number, 'accrue:order:' || id || ':sharer:' || sharer_id
FROM (SELECT rated.*, CASE WHEN net_fen > 0 THEN net_fen ELSE 0 END AS paid FROM rated) r1
UNION ALL
SELECT r.id, ps.member_id, 2, r.w2, r.per, r.net_fen,
       (r.paid * (r.w2 / r.per) + r.paid * (r.w2 %% r.per) / r.per) / 10000,
       r.hold_reason, r.number, 'accrue:order:' || r.id || ':sharer:' || ps.member_id
FROM (SELECT rated.*, CASE WHEN net_fen > 0 THEN net_fen ELSE 0 END AS paid FROM rated) r
JOIN referrals_sharer ps ON ps.id = r.parent_id AND ps.status = %(approved)s
WHERE r.w2 > 0 AND ps.member_id <> r.member_id AND ps.member_id <> r.sharer_id
"""

_WRITE = [
    # nothing to book on an order that earned nothing (no rule, or refunded in full)
    "DELETE FROM referrals_due WHERE amount_fen <= 0",
    # booked already under the same key (by a direct ``commission.accrue``): never twice
    """DELETE FROM referrals_due WHERE EXISTS
       (SELECT 1 FROM referrals_ledgertransaction t WHERE t.key = referrals_due.txn_key)""",
    # every sharer booked to has a pending account (made on first use, as the per-order path)
    """INSERT INTO referrals_account (chain_id, kind, member_id, balance_fen, may_go_negative)
       SELECT DISTINCT %(chain)s, %(pending)s, d.member_id, 0, %(no)s FROM referrals_due d
       WHERE NOT EXISTS (SELECT 1 FROM referrals_account a WHERE a.chain_id = %(chain)s
                           AND a.kind = %(pending)s AND a.member_id = d.member_id)""",
    """INSERT INTO referrals_ledgertransaction
           (chain_id, kind, key, memo, order_id, member_id, flagged, created_at)
       SELECT %(chain)s, %(accrue)s, d.txn_key, '订单 ' || d.number || ' 佣金', d.order_id,
              d.member_id, %(no)s, %(now)s
       FROM referrals_due d""",
    """INSERT INTO referrals_posting (transaction_id, account_id, amount_fen)
       SELECT t.id, a.id, d.amount_fen FROM referrals_due d
       JOIN referrals_ledgertransaction t ON t.key = d.txn_key
       JOIN referrals_account a ON a.chain_id = %(chain)s AND a.kind = %(pending)s
                               AND a.member_id = d.member_id
       UNION ALL
       SELECT t.id, %(expense)s, -d.amount_fen FROM referrals_due d
       JOIN referrals_ledgertransaction t ON t.key = d.txn_key""",
    """UPDATE referrals_account SET balance_fen = referrals_account.balance_fen + s.total
       FROM (SELECT member_id, SUM(amount_fen) AS total FROM referrals_due
             GROUP BY member_id) s
       WHERE referrals_account.chain_id = %(chain)s AND referrals_account.kind = %(pending)s
         AND referrals_account.member_id = s.member_id""",
    """UPDATE referrals_account SET balance_fen = balance_fen - (
           SELECT COALESCE(SUM(amount_fen), 0) FROM referrals_due)
       WHERE id = %(expense)s""",
    """INSERT INTO referrals_ordercommission (order_id, member_id, level, rate_bp, rate_weight,
           rate_per, base_fen, accrued_fen, status, hold_reason, created_at)
       SELECT d.order_id, d.member_id, d.level, d.rate_weight / d.rate_per, d.rate_weight,
              d.rate_per, d.base_fen, d.amount_fen,
              CASE WHEN d.hold_reason = '' THEN %(pending_status)s ELSE %(held)s END,
              d.hold_reason, %(now)s
       FROM referrals_due d""",
]


def book_commissions(
    *,
    chain_id: int,
    now: datetime | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> BookingResult:
    """Book the commission of every paid, attributed order of the chain that has none yet.
    Idempotent: a second run (or a run after a crash) books only what is still missing.
    ``progress(done, total)`` is told about each chunk (the CLI's progress bar)."""
    now = now or timeutil.now()
    result = BookingResult()
    ids = list(
        Order.objects.filter(chain_id=chain_id, paid_at__isnull=False, sharer__isnull=False)
        .order_by("id")
        .values_list("id", flat=True)
    )
    expense = chain_account(chain_id, AccountKind.COMMISSION_EXPENSE)
    params: dict[str, Any] = {
        "chain": chain_id,
        "now": _db_time(now),
        "week_ago": _db_time(now - timedelta(days=7)),
        "month_ago": _db_time(now - timedelta(days=30)),
        "approved": SharerStatus.APPROVED.value,
        "refunded": OrderStatus.REFUNDED.value,
        "refund_succeeded": RefundStatus.SUCCEEDED.value,
        "openid": IdentityChannel.WECHAT_OPENID.value,
        "same_address": SAME_ADDRESS_ORDERS,
        "refund_min": REFUND_RATIO_MIN_ORDERS,
        "refund_pct": round(REFUND_RATIO_HOLD * 100),
        "pending": AccountKind.PENDING.value,
        "accrue": TransactionKind.ACCRUE.value,
        "expense": expense.pk,
        "pending_status": CommissionStatus.PENDING.value,
        "held": CommissionStatus.HELD.value,
        "fixed": RuleKind.FIXED.value,
        "no": False,
    }
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with transaction.atomic(), connection.cursor() as cursor:
            Account.objects.select_for_update().filter(pk=expense.pk).exists()
            if connection.vendor == "postgresql":
                # The planner's cost guess for the correlated fraud checks is high enough to
                # switch on JIT compilation, which takes longer (~1.3 s) than the whole chunk.
                cursor.execute("SET LOCAL jit = off")
            cursor.execute(_DUE_TABLE)
            cursor.execute("DELETE FROM referrals_due")
            cursor.execute(_FILL_DUE, {**params, "lo": part[0], "hi": part[-1]})
            for statement in _WRITE:
                cursor.execute(statement, params)
            cursor.execute(
                "SELECT COUNT(*), COALESCE(SUM(amount_fen), 0),"
                " COALESCE(SUM(CASE WHEN hold_reason <> '' THEN 1 ELSE 0 END), 0)"
                " FROM referrals_due"
            )
            count, fen, held = cursor.fetchone()
            _start_freeze_of_handed_over(part[0], part[-1], freeze_period(chain_id))
            cursor.execute("DELETE FROM referrals_due")
        crash_point("commissions.after_chunk")
        result.orders_seen += len(part)
        result.commissions += int(count)
        result.booked_fen += int(fen)
        result.held += int(held)
        if progress is not None:
            progress(result.orders_seen, len(ids))
    return result


def _db_time(moment: datetime) -> object:
    """A datetime as the backend stores it (SQLite: naive UTC text) for raw SQL."""
    return connection.ops.adapt_datetimefield_value(moment)


def _start_freeze_of_handed_over(lo: int, hi: int, freeze: timedelta) -> None:
    """Orders handed over before their commission was booked: the freeze runs from handover
    (what ``actions.start_freeze`` does at the pickup counter)."""
    ends = ExpressionWrapper(F("fulfilled_at") + freeze, output_field=DateTimeField())
    OrderCommission.objects.filter(
        order__id__range=(lo, hi),
        unfreeze_at__isnull=True,
        order__fulfilled_at__isnull=False,
    ).update(
        unfreeze_at=Subquery(
            Order.objects.filter(pk=OuterRef("order_id")).annotate(ends=ends).values("ends")[:1]
        )
    )
