"""Members place orders through the API with their signed token (``X-Member-Token``): the same
place_order, the same idempotency, flash sales included; no token, a forged one, or another
chain's store gets the error shape and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from shequn.groups.codes import sign_member
from shequn.orders.models import Order
from tests.conftest import Chain, make_sku
from tests.promotions.test_flash_sale import sale_for
from tests.promotions.test_group_buy import build_chain_b_campaign, member_no

pytestmark = pytest.mark.django_db
URL = "/api/member/orders"


def post(body: dict[str, Any], token: str | None) -> Any:
    headers = {"HTTP_X_MEMBER_TOKEN": token} if token else {}
    return Client().post(URL, json.dumps(body), "application/json", **headers)


def test_a_member_orders_with_their_token(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    sale = sale_for(chain, sku)
    member = member_no(chain, 1)
    token = sign_member(member.pk)
    body = {
        "store_id": chain.store_a.pk,
        "lines": [{"sku_id": sku.pk, "quantity": 1}],
        "idempotency_key": "app-1",
        "flash_sale_id": sale.pk,
    }
    first = post(body, token)
    assert first.status_code == 201, first.content
    assert (first.json()["total_fen"], first.json()["created"]) == (990, True)
    again = post(body, token)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert Order.objects.get().member_id == member.pk


def test_bad_tokens_and_bodies_write_nothing(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 10})
    member = member_no(chain, 1)
    token = sign_member(member.pk)
    body = {
        "store_id": chain.store_a.pk,
        "lines": [{"sku_id": sku.pk, "quantity": 1}],
        "idempotency_key": "app-2",
    }
    assert post(body, None).status_code == 401
    assert post(body, token + "x").status_code == 401
    assert post(body, "x" * 500).status_code == 401
    foreign = build_chain_b_campaign()
    for bad, status in (
        ({"store_id": 10**9}, 404),
        ({"lines": []}, 422),
        ({"lines": [{"sku_id": sku.pk, "quantity": 0}]}, 422),
        ({"lines": [{"sku_id": sku.pk, "quantity": "2"}]}, 422),
        ({"idempotency_key": ""}, 422),
        ({"group_buy_id": foreign.pk}, 404),
    ):
        refused = post({**body, **bad}, token)
        assert refused.status_code == status, (bad, refused.content)
        assert {"code", "message"} <= set(refused.json())
    assert not Order.objects.exists()
