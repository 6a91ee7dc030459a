"""Coupon member pages: the coupon centre hands out coupons within limits; the cart picks the
best coupon by itself, shows the instant discount and what is left to pay, and the order is
placed at exactly that price."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from shequn.orders.models import Order
from shequn.promotions.models import Coupon
from tests.conftest import Chain, make_group, make_sku, phone
from tests.promotions.test_coupons import template_for
from tests.shop.test_shop_pages import log_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(chain: Chain) -> tuple[Chain, Any, Client]:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 20})
    group = make_group(chain.manager_a, chain.store_a)
    client = Client()
    client.get(f"/m/g/{group.pk}/")
    log_in(client, phone(5), next_url="/m/coupons/")
    return chain, sku, client


def test_claim_from_the_coupon_centre(shopper: tuple[Chain, Any, Client]) -> None:
    chain, _, client = shopper
    template = template_for(chain)
    page = client.get("/m/coupons/").content.decode()
    assert f'data-template="{template.pk}"' in page
    assert "满 ¥50.00 可用" in page
    done = client.post(f"/m/coupons/{template.pk}/claim/", follow=True).content.decode()
    assert "已领取「满50减10」" in done
    assert 'data-coupon="' in done
    again = client.post(f"/m/coupons/{template.pk}/claim/", follow=True).content.decode()
    assert "已领取过该优惠券" in again
    assert Coupon.objects.count() == 1
    anonymous = Client().post(f"/m/coupons/{template.pk}/claim/")
    assert anonymous.status_code == 302
    assert "/m/login/" in anonymous["Location"]
    assert Coupon.objects.count() == 1


def test_the_cart_picks_the_best_coupon_and_checkout_pays_that(
    shopper: tuple[Chain, Any, Client],
) -> None:
    chain, sku, client = shopper
    small = template_for(chain, name="无门槛3元", discount_fen=300, min_spend_fen=0)
    big = template_for(chain, name="满50减10")
    template_for(chain, name="满200减50", discount_fen=5000, min_spend_fen=20000)
    template_for(
        chain,
        name="立减1元",
        kind="instant",
        discount_fen=100,
        min_spend_fen=0,
        valid_days=None,
        stacks_with_coupon=True,
    )
    for template in (small, big):
        client.post(f"/m/coupons/{template.pk}/claim/")
    out_of_reach = Coupon.objects.create(
        template=template_for(chain, name="满100减20", discount_fen=2000, min_spend_fen=10000),
        member=Coupon.objects.first().member,  # type: ignore[union-attr]
        claimed_at=small.starts_at,
        expires_at=small.ends_at,
    )
    client.post(f"/m/p/{sku.product_id}/", {"sku": sku.pk, "quantity": "2", "action": "buy"})
    cart = client.get("/m/cart/").content.decode()
    best = Coupon.objects.get(template=big)
    assert re.search(rf'<option value="{best.pk}" selected', cart)
    assert re.search(
        rf'<option value="{out_of_reach.pk}"\s+disabled>满100减20 \(未达到使用门槛', cart
    )
    assert "−¥10.00" in cart
    assert "−¥1.00" in cart
    assert re.search(r'id="cart-pay">¥68\.80<', cart)
    key = re.search(r'name="idempotency_key" value="(\w+)"', cart)[1]  # type: ignore[index]
    client.post("/m/checkout/", {"idempotency_key": key, "fulfilment": "pickup", "coupon": best.pk})
    order = Order.objects.get()
    assert (order.subtotal_fen, order.total_fen) == (7980, 6880)

    client.post(f"/m/p/{sku.product_id}/", {"sku": sku.pk, "quantity": "2", "action": "buy"})
    none = client.get("/m/cart/?coupon=none").content.decode()
    assert re.search(r'id="cart-pay">¥79\.80<', none)  # and the 立减金 was once per member
    assert "coupon-discount" not in none


def test_a_coupon_that_does_not_fit_is_refused_at_checkout(
    shopper: tuple[Chain, Any, Client],
) -> None:
    chain, sku, client = shopper
    big = template_for(chain)
    client.post(f"/m/coupons/{big.pk}/claim/")
    coupon = Coupon.objects.get()
    client.post(f"/m/p/{sku.product_id}/", {"sku": sku.pk, "quantity": "1", "action": "buy"})
    cart = client.get("/m/cart/").content.decode()
    assert "未达到使用门槛" in cart
    key = re.search(r'name="idempotency_key" value="(\w+)"', cart)[1]  # type: ignore[index]
    refused = client.post(
        "/m/checkout/",
        {"idempotency_key": key, "fulfilment": "pickup", "coupon": coupon.pk},
        HTTP_REFERER="/m/cart/",
        follow=True,
    ).content.decode()
    assert "未达到使用门槛" in refused
    assert not Order.objects.exists()
    for bad in ("abc", "-1", str(10**9)):
        client.post(
            "/m/checkout/",
            {"idempotency_key": key, "fulfilment": "pickup", "coupon": bad},
            HTTP_REFERER="/m/cart/",
        )
    assert not Order.objects.exists()
