"""Coupon-template API: HQ creates, lists, reads and stops templates; bad numbers and foreign
products get the error shape and write nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog import actions as catalog
from shequn.core import timeutil
from shequn.promotions.models import CouponTemplate
from tests.conftest import Chain, client_for, make_sku

pytestmark = pytest.mark.django_db
URL = "/api/promotions/coupon-templates"


def body(**overrides: Any) -> dict[str, Any]:
    now = timeutil.now()
    data: dict[str, Any] = {
        "name": "满50减10",
        "kind": "coupon",
        "discount_fen": 1000,
        "min_spend_fen": 5000,
        "total_quantity": 500,
        "per_member_limit": 1,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "valid_days": 7,
    }
    data.update(overrides)
    return data


def post(chain: Chain, data: Any, who: str = "hq_operator", url: str = URL) -> Any:
    return client_for(getattr(chain, who)).post(
        url, data=json.dumps(data), content_type="application/json"
    )


def test_create_list_read_cancel(chain: Chain) -> None:
    sku = make_sku(chain)
    category = catalog.get_or_create_category(acting=chain.admin, name="养生")
    created = post(chain, body(product_ids=[sku.product_id], category_ids=[category.pk]))
    assert created.status_code == 201, created.content
    template = created.json()
    assert (template["issued"], template["product_ids"], template["category_ids"]) == (
        0,
        [sku.product_id],
        [category.pk],
    )
    instant = post(
        chain,
        body(
            name="立减5元",
            kind="instant",
            discount_fen=500,
            min_spend_fen=0,
            valid_days=None,
            stacks_with_coupon=True,
        ),
    )
    assert instant.status_code == 201, instant.content
    listed = client_for(chain.manager_a).get(URL, {"kind": "instant"}).json()
    assert [t["name"] for t in listed["items"]] == ["立减5元"]
    cancel = post(chain, {}, url=f"{URL}/{template['id']}/cancel")
    assert cancel.json()["cancelled_at"] is not None
    again = post(chain, {}, url=f"{URL}/{template['id']}/cancel")
    assert (again.status_code, again.json()["code"]) == (422, "coupon_cancelled")
    assert post(chain, body(), who="manager_a").status_code == 403


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"discount_fen": 0}, 422),
        ({"discount_fen": -500}, 422),
        ({"discount_fen": 9.9}, 422),
        ({"discount_fen": 10**15}, 422),
        ({"min_spend_fen": 1000}, 422),
        ({"total_quantity": 0}, 422),
        ({"total_quantity": 10**12}, 422),
        ({"valid_days": None}, 422),
        ({"kind": "cashback"}, 422),
        ({"kind": "instant"}, 422),  # valid_days given for an instant discount
        ({"stacks_with_coupon": True}, 422),
        ({"ends_at": "2026-01-01T00:00:00"}, 422),
        ({"product_ids": [10**9]}, 404),
        ({"category_ids": [10**9]}, 404),
    ],
)
def test_bad_templates_are_refused(chain: Chain, overrides: dict[str, Any], status: int) -> None:
    response = post(chain, body(**overrides))
    assert response.status_code == status, response.content
    assert {"code", "message"} <= set(response.json())
    assert not CouponTemplate.objects.exists()
