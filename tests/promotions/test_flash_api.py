"""Flash-sale API: HQ creates and cancels; bad numbers get the error shape and write nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shequn.core import timeutil
from shequn.promotions.models import FlashSale
from tests.conftest import Chain, client_for, make_sku

pytestmark = pytest.mark.django_db


def body(chain: Chain, sku_id: int, **overrides: Any) -> dict[str, Any]:
    now = timeutil.now()
    data: dict[str, Any] = {
        "sku_id": sku_id,
        "name": "周三秒杀",
        "price_fen": 990,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "per_member_limit": 2,
        "per_order_limit": 1,
        "store_quotas": [{"store_id": chain.store_a.pk, "quota": 30}],
    }
    data.update(overrides)
    return data


def post(
    chain: Chain, data: Any, who: str = "hq_operator", url: str = "/api/promotions/flash-sales"
) -> Any:
    return client_for(getattr(chain, who)).post(
        url, data=json.dumps(data), content_type="application/json"
    )


def test_create_read_cancel(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990)
    created = post(chain, body(chain, sku.pk))
    assert created.status_code == 201, created.content
    sale = created.json()
    assert sale["quotas"] == [{"store_id": chain.store_a.pk, "quota": 30, "sold": 0}]
    assert (sale["price_fen"], sale["list_price_fen"]) == (990, 3990)
    listed = client_for(chain.manager_a).get("/api/promotions/flash-sales").json()
    assert [s["id"] for s in listed["items"]] == [sale["id"]]  # store staff may look
    cancel_url = f"/api/promotions/flash-sales/{sale['id']}/cancel"
    assert post(chain, {}, url=cancel_url).json()["cancelled_at"] is not None
    again = post(chain, {}, url=cancel_url)
    assert (again.status_code, again.json()["code"]) == (422, "flash_cancelled")


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"price_fen": 9.9}, 422),
        ({"price_fen": "990"}, 422),
        ({"price_fen": -1}, 422),
        ({"price_fen": 3990}, 422),
        ({"price_fen": 10**15}, 422),
        ({"per_member_limit": 0}, 422),
        ({"store_quotas": [{"store_id": 1, "quota": -5}]}, 422),
        ({"starts_at": "2026-11-24T10:00:00"}, 422),  # no time zone
        ({"ends_at": "yesterday"}, 422),
        ({"store_quotas": []}, 422),
        ({"sku_id": 0}, 404),
    ],
)
def test_bad_numbers_are_refused(chain: Chain, overrides: dict[str, Any], status: int) -> None:
    sku = make_sku(chain, price_fen=3990)
    response = post(chain, {**body(chain, sku.pk), **overrides})
    assert response.status_code == status, response.content
    assert {"code", "message"} <= set(response.json())
    assert not FlashSale.objects.exists()


def test_store_staff_cannot_create(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990)
    assert post(chain, body(chain, sku.pk), who="manager_a").status_code == 403
    assert not FlashSale.objects.exists()
