"""The flash-sale race: real threads, one connection each.

PostgreSQL: 3,000 units, 10,000 concurrent attempts by 5,000 members (each tries twice, limit 1
per member, both times with the one coupon they hold) → exactly 3,000 sold, one order per member
at most, every coupon used by at most one order, stock never below zero.
SQLite (writers queue on one lock): 300 units, 1,000 attempts by 500 members.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.models import Count, F

from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.core.errors import DomainError
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order, OrderLine
from shequn.promotions.actions import create_coupon_template, create_flash_sale
from shequn.promotions.models import Coupon, FlashSaleBuyer
from tests.conftest import build_chain, make_sku, phone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def scale() -> tuple[int, int, int]:
    """(units, members, workers); every member tries twice."""
    return (3000, 5000, 32) if connection.vendor == "postgresql" else (300, 500, 12)


def test_flash_sale_race_sells_exactly_the_quota_within_member_limits() -> None:
    units, members, workers = scale()
    chain = build_chain()
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: units + units // 2})
    now = timeutil.now()
    sale = create_flash_sale(
        acting=chain.hq_operator,
        sku=sku,
        name="艾草贴 3000 盒秒杀",
        price_fen=990,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        per_member_limit=1,
        per_order_limit=1,
        chain_quota=units,
    )
    Member.objects.bulk_create(
        Member(chain=chain.hq, phone=phone(n), home_store=chain.store_a) for n in range(members)
    )
    member_ids = list(
        Member.objects.filter(chain=chain.hq).order_by("id").values_list("pk", flat=True)
    )
    template = create_coupon_template(
        acting=chain.hq_operator,
        name="秒杀加码 1 元",
        kind="coupon",
        discount_fen=100,
        total_quantity=members,
        per_member_limit=1,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(days=1),
        valid_days=1,
        applies_to_promotions=True,
    )
    Coupon.objects.bulk_create(
        Coupon(
            template=template,
            member_id=member_id,
            claimed_at=now,
            expires_at=now + timedelta(days=1),
        )
        for member_id in member_ids
    )
    coupons = dict(Coupon.objects.values_list("member_id", "pk"))

    def attempt(n: int) -> str:
        try:
            member = Member.objects.get(pk=member_ids[n % members])
            place_order(
                member=member,
                store=chain.store_a,
                lines=[LineRequest(sku.pk, 1)],
                idempotency_key=f"k{n}",  # a second try is a new request, not a retry
                flash_sale_id=sale.pk,
                coupon_id=coupons[member.pk],
            )
            return "placed"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = Counter(pool.map(attempt, range(2 * members)))

    assert outcomes["placed"] == units, outcomes
    assert set(outcomes) <= {"placed", "flash_sold_out", "flash_member_limit", "coupon_used"}, (
        outcomes
    )
    quota = sale.quotas.get()
    assert quota.sold == units
    item = StockItem.objects.get(store=chain.store_a, sku=sku)
    assert item.quantity_allocated == units <= item.quantity
    assert OrderLine.objects.filter(flash_quota=quota).count() == units
    per_member = Order.objects.values("member").annotate(n=Count("id"))
    assert max(row["n"] for row in per_member) == 1
    assert sum(FlashSaleBuyer.objects.values_list("bought", flat=True)) == units
    # single-use coupons held in the same race: one order each, and every order used its own
    used = Coupon.objects.filter(order__isnull=False)
    assert used.count() == units
    assert used.exclude(member_id=F("order__member_id")).count() == 0
    assert set(Order.objects.values_list("total_fen", flat=True)) == {990 - 100}
