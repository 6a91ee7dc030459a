"""Product cards API: push within scope, refuse bad input with the error shape, write nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shequn.shop.models import GroupPost
from tests.conftest import client_for
from tests.world import World

pytestmark = pytest.mark.django_db


def post(world: World, body: Any, who: str = "manager_a") -> Any:
    client = client_for(getattr(world.chain, who))
    return client.post("/api/shop/cards", data=json.dumps(body), content_type="application/json")


def test_push_and_list_in_scope(world: World) -> None:
    before = GroupPost.objects.count()
    response = post(world, {"product_id": world.sku.product_id, "group_ids": [world.group_a.pk]})
    assert response.status_code == 201
    [card] = response.json()
    assert card["group_id"] == world.group_a.pk
    assert card["link"].startswith(f"/m/p/{world.sku.product_id}/?g={world.group_a.pk}&")
    assert GroupPost.objects.count() == before + 1
    listed = client_for(world.chain.manager_a).get("/api/shop/cards").json()
    assert [c["group_id"] for c in listed["items"]] == [world.group_a.pk]  # not B's card


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"product_id": 0, "group_ids": [1]}, 404),
        ({"product_id": "x", "group_ids": [1]}, 422),
        ({"group_ids": [1]}, 422),
        ({"product_id": 1.5, "group_ids": [1]}, 422),
        ("product", 400),  # not a JSON object
        ({"product_id": 1, "group_ids": []}, 422),
        ({"product_id": 1, "group_ids": [-1]}, 404),
        ({"product_id": 1, "group_ids": "1"}, 422),
        ({"product_id": 1, "group_ids": [1], "headline": "长" * 101}, 422),
    ],
)
def test_bad_input_is_refused_with_the_shape(world: World, body: Any, status: int) -> None:
    if isinstance(body, dict) and body.get("product_id") == 1:
        body = {**body, "product_id": world.sku.product_id}
    before = GroupPost.objects.count()
    response = post(world, body)
    assert response.status_code == status, response.content
    assert {"code", "message"} <= set(response.json())
    assert GroupPost.objects.count() == before


def test_foreign_chain_product_and_cashier_are_refused(world: World) -> None:
    before = GroupPost.objects.count()
    foreign = post(world, {"product_id": world.foreign_product.pk, "group_ids": [world.group_a.pk]})
    assert foreign.status_code == 404
    cashier = post(
        world,
        {"product_id": world.sku.product_id, "group_ids": [world.group_a.pk]},
        who="cashier_a",
    )
    assert cashier.status_code == 403
    assert GroupPost.objects.count() == before
