"""A sharer's links and posters: one short code (≤ 32 characters, a mini-program scene) per
product, coupon and group-buy; the poster PNG carries the store, title, price and the QR of
exactly that link; a click or scan makes the sharer the last touch for 7 days, stored on the
order with the code; old, unknown and suspended codes earn nothing."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from shequn.core import timeutil
from shequn.core.errors import NotFound, PermissionDenied
from shequn.orders.models import Order
from shequn.referrals.models import SHARE_CODE_MAX, ShareCode, Sharer, SharerStatus
from shequn.referrals.policy import set_referral_settings
from shequn.referrals.posters import QR_ORIGIN, QR_SCALE, SIZE, qr_matrix
from shequn.referrals.sharing import CODE_ALPHABET, share_code
from shequn.shop.session import SOURCE_KEY
from tests.conftest import Chain, make_group, make_sku, phone
from tests.promotions.test_coupons import template_for
from tests.promotions.test_group_buy import campaign_for
from tests.referrals.test_commission_lifecycle import approved_sharer, member
from tests.shop.test_shop_pages import log_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(chain: Chain) -> tuple[Chain, Any, Any]:
    sku = make_sku(chain, code="MOXA-1", price_fen=3990, stock={chain.store_a: 20})
    return chain, sku, approved_sharer(chain, 1)


def sharer_page(chain: Chain, sharer_phone: str) -> tuple[Client, str]:
    client = Client()
    client.get(f"/m/g/{make_group(chain.manager_a, chain.store_a).pk}/")  # in the store
    log_in(client, sharer_phone, next_url="/m/sharer/")
    return client, client.get("/m/sharer/").content.decode()


def codes_on(page: str) -> dict[str, str]:
    """kind:target → code, as the page shows them."""
    cards = re.findall(
        r'data-kind="(\w+)" data-target="(\d+)">.*?data-code="(\w+)"', page, flags=re.S
    )
    return {f"{kind}:{target}": code for kind, target, code in cards}


def test_the_sharer_page_has_one_short_code_per_product_coupon_and_group_buy(
    shop: tuple[Chain, Any, Any],
) -> None:
    chain, sku, sharer = shop
    campaign = campaign_for(chain, sku)
    coupon = template_for(chain)
    client, page = sharer_page(chain, sharer.phone)
    codes = codes_on(page)
    assert set(codes) == {
        f"product:{sku.product_id}",
        f"coupon:{coupon.pk}",
        f"group_buy:{campaign.pk}",
    }
    for code in codes.values():
        assert len(code) <= SHARE_CODE_MAX
        assert set(code) <= set(CODE_ALPHABET)
    assert "满 50 元可用" in page
    assert "3 人团" in page
    again = client.get("/m/sharer/").content.decode()
    assert codes_on(again) == codes  # the same codes on every visit
    assert ShareCode.objects.count() == 3


def test_the_poster_carries_the_qr_of_exactly_the_link(shop: tuple[Chain, Any, Any]) -> None:
    chain, sku, sharer = shop
    code = share_code(sharer=sharer, store=chain.store_a, kind="product", target_id=sku.product_id)
    response = Client().get(f"/m/s/{code.code}/poster.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    poster = Image.open(io.BytesIO(response.content)).convert("L")
    assert poster.size == SIZE
    matrix = qr_matrix(f"http://testserver/m/s/{code.code}/")
    x0, y0 = QR_ORIGIN
    half = QR_SCALE // 2
    read = [
        [
            poster.getpixel((x0 + c * QR_SCALE + half, y0 + r * QR_SCALE + half)) < 128
            for c in range(len(row))
        ]  # type: ignore[operator]
        for r, row in enumerate(matrix)
    ]
    assert read == matrix
    other = qr_matrix("http://testserver/m/s/someoneelse/")
    assert read != other
    assert Client().get("/m/s/nosuchcode2/poster.png").status_code == 404


def buy_after(client: Client, sku: Any, buyer_phone: str, key: str) -> Order:
    client.post(f"/m/p/{sku.product_id}/", {"sku": sku.pk, "quantity": "1", "action": "buy"})
    log_in(client, buyer_phone)
    client.post("/m/checkout/", {"idempotency_key": key, "fulfilment": "pickup"})
    return Order.objects.get(idempotency_key=key)


def test_a_click_attributes_the_order_last_touch_wins_within_seven_days(
    shop: tuple[Chain, Any, Any],
) -> None:
    chain, sku, first = shop
    second = approved_sharer(chain, 2)
    kind = {"kind": "product", "target_id": sku.product_id, "store": chain.store_a}
    first_code = share_code(sharer=first, **kind).code
    second_code = share_code(sharer=second, **kind).code
    buyer = member(chain, 10)

    client = Client()
    landed = client.get(f"/m/s/{first_code}/")
    assert landed.status_code == 302
    assert landed["Location"] == f"/m/p/{sku.product_id}/"
    client.get(f"/m/s/{second_code}/")  # a later click of another sharer's link
    order = buy_after(client, sku, buyer.phone, "k1")
    assert (order.sharer_id, order.content_ref) == (second.pk, f"share:{second_code}")

    stale = Client()
    stale.get(f"/m/s/{first_code}/")
    session = stale.session
    source = session[SOURCE_KEY]
    source["at"] = (timeutil.now() - timedelta(days=7, minutes=1)).isoformat()
    session[SOURCE_KEY] = source
    session.save()
    order = buy_after(stale, sku, member(chain, 11).phone, "k2")
    assert order.sharer_id is None  # outside the window: nobody

    set_referral_settings(acting=chain.hq_operator, attribution_days=2)  # HQ shortens it
    short = Client()
    short.get(f"/m/s/{first_code}/")
    session = short.session
    source = session[SOURCE_KEY]
    source["at"] = (timeutil.now() - timedelta(days=2, minutes=1)).isoformat()
    session[SOURCE_KEY] = source
    session.save()
    assert buy_after(short, sku, member(chain, 12).phone, "k4").sharer_id is None


def test_unknown_suspended_and_foreign_codes_earn_nothing(shop: tuple[Chain, Any, Any]) -> None:
    chain, sku, sharer = shop
    code = share_code(sharer=sharer, store=chain.store_a, kind="product", target_id=sku.product_id)
    assert Client().get("/m/s/zzzzzzzzzz/").status_code == 404
    assert Client().get("/m/s/not-a-code!/").status_code == 404
    Sharer.objects.filter(member=sharer).update(status=SharerStatus.SUSPENDED)
    client = Client()
    assert client.get(f"/m/s/{code.code}/").status_code == 302  # still opens the product
    order = buy_after(client, sku, member(chain, 13).phone, "k3")
    assert order.sharer_id is None
    with pytest.raises(PermissionDenied):
        share_code(sharer=sharer, store=chain.store_a, kind="product", target_id=sku.product_id)
    other = approved_sharer(chain, 3)
    with pytest.raises(NotFound):
        share_code(sharer=other, store=chain.store_a, kind="product", target_id=999_999)
    with pytest.raises(NotFound):
        share_code(sharer=other, store=chain.region_a, kind="product", target_id=sku.product_id)
    assert phone(1) == sharer.phone
