"""Coupon races with real threads (one connection each): a crowd claiming a limited coupon gets
exactly the total, one per member; a coupon tapped into several checkouts at once is used by one."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.models import Count

from shequn.core import timeutil
from shequn.core.errors import DomainError
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order
from shequn.promotions.actions import claim_coupon_for_member, create_coupon_template
from shequn.promotions.models import Coupon, CouponHolder
from tests.conftest import build_chain, make_sku, phone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_over_claim_race_hands_out_exactly_the_total_one_per_member() -> None:
    total, members, workers = (200, 600, 24) if connection.vendor == "postgresql" else (40, 120, 8)
    chain = build_chain()
    now = timeutil.now()
    template = create_coupon_template(
        acting=chain.hq_operator,
        name="限量满减券",
        kind="coupon",
        discount_fen=500,
        min_spend_fen=3000,
        total_quantity=total,
        per_member_limit=1,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(days=1),
        valid_days=3,
    )
    Member.objects.bulk_create(
        Member(chain=chain.hq, phone=phone(n), home_store=chain.store_a) for n in range(members)
    )
    ids = list(Member.objects.filter(chain=chain.hq).values_list("pk", flat=True))

    def claim(n: int) -> str:
        try:
            claim_coupon_for_member(
                member=Member.objects.get(pk=ids[n % members]), template_id=template.pk
            )
            return "claimed"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = Counter(pool.map(claim, range(2 * members)))  # everyone taps twice
    assert outcomes["claimed"] == total, outcomes
    assert set(outcomes) <= {"claimed", "coupon_sold_out", "coupon_member_limit"}
    template.refresh_from_db()
    assert template.issued == total == Coupon.objects.count()
    per_member = Coupon.objects.values("member").annotate(n=Count("id"))
    assert max(row["n"] for row in per_member) == 1
    assert sum(CouponHolder.objects.values_list("taken", flat=True)) == total


def test_one_coupon_tapped_into_many_checkouts_is_used_once() -> None:
    holders, tries, workers = (60, 5, 24) if connection.vendor == "postgresql" else (12, 4, 8)
    chain = build_chain()
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: holders * tries})
    now = timeutil.now()
    template = create_coupon_template(
        acting=chain.hq_operator,
        name="无门槛5元",
        kind="coupon",
        discount_fen=500,
        total_quantity=holders,
        per_member_limit=1,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(days=1),
        valid_days=3,
    )
    Member.objects.bulk_create(
        Member(chain=chain.hq, phone=phone(n), home_store=chain.store_a) for n in range(holders)
    )
    members = list(Member.objects.filter(chain=chain.hq))
    coupons = {m.pk: claim_coupon_for_member(member=m, template_id=template.pk).pk for m in members}

    def checkout(n: int) -> str:
        member = members[n % holders]
        try:
            place_order(
                member=member,
                store=chain.store_a,
                lines=[LineRequest(sku.pk, 1)],
                idempotency_key=f"k{n}",  # separate checkouts, not retries
                coupon_id=coupons[member.pk],
            )
            return "placed"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = Counter(pool.map(checkout, range(holders * tries)))
    assert outcomes == Counter({"placed": holders, "coupon_used": holders * (tries - 1)}), outcomes
    assert Order.objects.count() == holders
    assert set(Order.objects.values_list("total_fen", flat=True)) == {3490}
    assert Coupon.objects.filter(order__isnull=True).count() == 0
