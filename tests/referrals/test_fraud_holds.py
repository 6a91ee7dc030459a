"""Fraud signals hold a commission for a person: the sharer paid for it with their own WeChat,
many customers ship to one address, or most of the sharer's recent orders were refunded. A held
commission is not released by the sweep; released by a person it is, rejected it is clawed back
in full."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.core import timeutil
from shequn.core.errors import DomainError, PermissionDenied
from shequn.members.models import ChannelIdentity, IdentityChannel, Member
from shequn.orders.actions import (
    LineRequest,
    PaymentReport,
    place_order,
    record_payment,
    verify_pickup,
)
from shequn.orders.models import Order, OrderStatus
from shequn.referrals.actions import (
    release_due_commissions,
    review_commission,
    set_commission_rule,
)
from shequn.referrals.models import CommissionStatus, OrderCommission
from tests.conftest import Chain, make_sku
from tests.referrals.test_commission_lifecycle import approved_sharer, held, member

pytestmark = pytest.mark.django_db


def paid_through(
    chain: Chain, sku: Any, sharer: Member, buyer: Member, key: str, **extra: Any
) -> Order:
    payer = extra.pop("payer_openid", "")
    order = place_order(
        member=buyer,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key=key,
        sharer=sharer,
        **extra,
    ).order
    record_payment(
        PaymentReport(
            notification_id=f"EV-{order.number}",
            out_trade_no=order.number,
            transaction_id=f"T{order.number}",
            amount_fen=order.total_fen,
            mchid="m",
            appid="a",
            succeeded_at=timeutil.now(),
            payer_openid=payer,
        ),
        expected_mchid="m",
        expected_appid="a",
    )
    order.refresh_from_db()
    return order


@pytest.fixture
def shop(chain: Chain) -> tuple[Chain, Any, Member]:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 100})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    return chain, sku, approved_sharer(chain, 1)


def test_a_sharer_paying_for_their_own_order_is_held_then_decided(
    shop: tuple[Chain, Any, Member],
) -> None:
    chain, sku, sharer = shop
    ChannelIdentity.objects.create(
        chain=chain.hq, member=sharer, channel=IdentityChannel.WECHAT_OPENID, value="o-sharer"
    )
    order = paid_through(chain, sku, sharer, member(chain, 10), "a", payer_openid="o-sharer")
    row = OrderCommission.objects.get(order=order)
    assert (row.status, row.hold_reason) == (CommissionStatus.HELD, "付款人是推客本人(同一微信)")
    verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=order.pickup_code)
    later = timeutil.now() + timedelta(days=8)
    assert release_due_commissions(now=later) == 0  # held: the sweep leaves it
    with pytest.raises(PermissionDenied):
        review_commission(acting=chain.manager_a, row=row, release=True)
    review_commission(acting=chain.hq_operator, row=row, release=True)
    assert release_due_commissions(now=later) == 1
    assert held(sharer) == {"pending": 0, "available": 399}


def test_a_rejected_commission_is_clawed_back_once(shop: tuple[Chain, Any, Member]) -> None:
    chain, sku, sharer = shop
    ChannelIdentity.objects.create(
        chain=chain.hq, member=sharer, channel=IdentityChannel.WECHAT_OPENID, value="o-sharer"
    )
    order = paid_through(chain, sku, sharer, member(chain, 10), "a", payer_openid="o-sharer")
    row = OrderCommission.objects.get(order=order)
    review_commission(acting=chain.hq_operator, row=row, release=False)
    assert held(sharer) == {"pending": 0, "available": 0}
    with pytest.raises(DomainError) as twice:
        review_commission(acting=chain.hq_operator, row=row, release=True)
    assert twice.value.code == "not_held"
    assert OrderCommission.objects.get(pk=row.pk).status == CommissionStatus.REJECTED


def test_many_customers_at_one_address_are_held(shop: tuple[Chain, Any, Member]) -> None:
    chain, sku, sharer = shop
    address = {"fulfilment": "delivery", "delivery_address": "长沙市岳麓区某小区 1 栋 101"}
    statuses = [
        OrderCommission.objects.get(
            order=paid_through(chain, sku, sharer, member(chain, 10 + n), f"k{n}", **address)
        ).status
        for n in range(5)
    ]
    assert statuses == ["pending", "pending", "pending", "held", "held"]


def test_a_sharer_whose_orders_are_mostly_refunded_is_held(
    shop: tuple[Chain, Any, Member],
) -> None:
    chain, sku, sharer = shop
    for n in range(5):
        order = paid_through(chain, sku, sharer, member(chain, 10 + n), f"k{n}")
        if n < 3:
            Order.objects.filter(pk=order.pk).update(status=OrderStatus.REFUNDED)
    latest = paid_through(chain, sku, sharer, member(chain, 20), "latest")
    row = OrderCommission.objects.get(order=latest)
    assert (row.status, row.hold_reason) == (CommissionStatus.HELD, "近 30 天退款率 60%")
