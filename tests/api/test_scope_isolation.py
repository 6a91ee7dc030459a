"""For every API endpoint: staff of store A asking for store B's objects get nothing of B.

The endpoints are enumerated from the OpenAPI schema, so a new endpoint is probed the moment it
exists. Path parameters are filled with B's ids; list endpoints are called plain and with B's
ids in every filter; writes carry B's ids in their bodies. A write endpoint without a probe
body, or a path parameter this test does not know, fails the test: add it here, scoped.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from shequn.api import api
from shequn.org.models import Staff
from tests.conftest import client_for
from tests.world import B_MARKERS, World

# The signed code or member token is the authority on these; no staff scope applies.
PUBLIC = {
    ("GET", "/api/join/{code}"),
    ("POST", "/api/join/sms"),
    ("POST", "/api/join"),
    ("POST", "/api/join/leave"),
    ("POST", "/api/member/orders"),  # the member's own token; place_order checks the store
    ("GET", "/api/member/earnings"),  # the member's own ledger
    ("POST", "/api/member/withdrawals"),
}
LIST_FILTERS = ("store_id", "group_id", "node_id", "sku_id")


def path_ids(world: World) -> dict[str, int]:
    return {
        "node_id": world.chain.store_b.pk,
        "staff_id": world.chain.manager_b.pk,
        "member_id": world.member_b.pk,
        "group_id": world.group_b.pk,
        "membership_id": world.membership_b.pk,
        "invitation_id": world.invitation_b.pk,
        "order_id": world.order_b.pk,
        "product_id": world.foreign_product.pk,
        "sku_id": world.foreign_sku.pk,
        "sale_id": world.foreign_sale.pk,
        "group_buy_id": world.foreign_group_buy.pk,
        "team_id": world.team_b.pk,
        "template_id": world.foreign_coupon.pk,
        "schedule_id": world.foreign_schedule.pk,
        "sharer_id": world.sharer_b.pk,
        "case_id": world.case_b.pk,
        "topic_id": world.foreign_topic.pk,
        "proposal_id": world.proposal_b.pk,
        "line_id": world.delivery_b.pk,
    }


def write_bodies(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    """A valid body per write endpoint, aimed at store B wherever it names an object."""
    b = world.chain.store_b.pk
    return {
        ("POST", "/api/auth/tokens"): {"name": "probe"},
        ("POST", "/api/org/nodes"): {
            "parent_id": b,
            "name": "探针",
            "kind": "store",
            "code": "probe-1",
        },
        ("POST", "/api/org/staff"): {
            "node_id": b,
            "role": "cashier",
            "username": "probe_user",
            "password": "Probe-pass-2026",
            "display_name": "探针",
        },
        ("POST", "/api/org/staff/{staff_id}/deactivate"): {},
        ("POST", "/api/org/staff/{staff_id}/activate"): {},
        ("POST", "/api/members"): {"store_id": b, "phone": "13700000000"},
        ("PATCH", "/api/members/{member_id}"): {"name": "改名"},
        ("POST", "/api/members/{member_id}/consents"): {"purpose": "marketing", "granted": True},
        ("POST", "/api/members/{member_id}/identities"): {"channel": "member_card", "value": "C1"},
        ("POST", "/api/groups"): {"store_id": b, "name": "探针群", "theme": "vip"},
        ("PATCH", "/api/groups/{group_id}"): {"name": "改名"},
        ("POST", "/api/groups/{group_id}/members"): {"phone": "13700000001"},
        ("PATCH", "/api/groups/{group_id}/members/{membership_id}"): {"role": "committee"},
        ("POST", "/api/groups/{group_id}/members/{membership_id}/remove"): {},
        ("POST", "/api/invitations"): {"kind": "staff", "group_id": world.group_b.pk},
        ("POST", "/api/invitations/{invitation_id}/revoke"): {},
        ("POST", "/api/catalog/suppliers"): {"name": "探针供应商"},
        ("POST", "/api/catalog/products"): {
            "supplier_id": world.foreign_product.supplier_id,
            "name": "探针商品",
        },
        ("POST", "/api/catalog/products/{product_id}/skus"): {"code": "P-1", "price_fen": 100},
        ("PUT", "/api/catalog/skus/{sku_id}/tiers"): {"tiers": []},
        ("POST", "/api/catalog/stock/adjust"): {
            "store_id": b,
            "sku_id": world.sku.pk,
            "delta": 5,
            "reason": "receipt",
        },
        ("POST", "/api/catalog/stock/transfer"): {
            "from_store_id": b,
            "to_store_id": world.chain.store_a.pk,
            "sku_id": world.sku.pk,
            "quantity": 1,
        },
        ("POST", "/api/orders/{order_id}/cancel"): {},
        ("POST", "/api/orders/pickup"): {"store_id": b, "code": "12345678"},
        ("POST", "/api/orders/{order_id}/refunds"): {"amount_fen": 1, "reason": "探针"},
        ("POST", "/api/promotions/flash-sales"): {
            "sku_id": world.sku.pk,
            "name": "探针秒杀",
            "price_fen": 1,
            "starts_at": "2026-11-24T10:00:00+08:00",
            "ends_at": "2026-11-24T23:00:00+08:00",
            "per_member_limit": 1,
            "per_order_limit": 1,
            "store_quotas": [{"store_id": b, "quota": 1}],
        },
        ("POST", "/api/promotions/flash-sales/{sale_id}/cancel"): {},
        ("POST", "/api/promotions/group-buys"): {
            "sku_id": world.foreign_sku.pk,
            "name": "探针拼团",
            "price_fen": 1,
            "team_size": 2,
            "team_minutes": 30,
            "starts_at": "2026-11-24T10:00:00+08:00",
            "ends_at": "2026-11-24T23:00:00+08:00",
            "per_member_limit": 1,
            "per_order_limit": 1,
        },
        ("POST", "/api/promotions/group-buys/{group_buy_id}/cancel"): {},
        ("POST", "/api/promotions/coupon-templates"): {
            "name": "探针券",
            "kind": "coupon",
            "discount_fen": 100,
            "total_quantity": 5,
            "per_member_limit": 1,
            "starts_at": "2026-11-24T10:00:00+08:00",
            "ends_at": "2026-11-30T23:00:00+08:00",
            "valid_days": 3,
            "product_ids": [world.foreign_product.pk],
        },
        ("POST", "/api/promotions/coupon-templates/{template_id}/cancel"): {},
        ("POST", "/api/promotions/schedules"): {
            "name": "探针周期",
            "kind": "flash_sale",
            "sku_id": world.sku.pk,
            "price_fen": 1,
            "weekdays": [1],
            "start_time": "10:00",
            "duration_minutes": 60,
            "per_member_limit": 1,
            "per_order_limit": 1,
            "chain_quota": 5,
            "group_ids": [world.group_b.pk],
        },
        ("POST", "/api/promotions/schedules/{schedule_id}/stop"): {},
        ("POST", "/api/referrals/sharers/{sharer_id}/decision"): {"approve": False},
        ("PATCH", "/api/referrals/settings"): {"freeze_days": 3},
        ("POST", "/api/demand/moderation/{case_id}/decision"): {"action": "remove"},
        ("PATCH", "/api/demand/topics/{topic_id}"): {"title": "探针"},
        ("POST", "/api/demand/proposals"): {
            "topic_id": world.foreign_topic.pk,
            "title": "探针",
            "spec": "1",
            "target_price_fen": 100,
            "deposit_fen": 10,
            "min_units": 1,
            "deadline": (timezone.now() + timedelta(days=2)).isoformat(),
        },
        ("POST", "/api/demand/proposals/{proposal_id}/publish"): {},
        ("POST", "/api/demand/proposals/{proposal_id}/cancel"): {"reason": "探针"},
        ("POST", "/api/demand/deliveries/{line_id}/receive"): {},
        ("POST", "/api/referrals/rules"): {
            "rates_bp": [100],
            "product_id": world.foreign_product.pk,
        },
        ("POST", "/api/shop/cards"): {
            "product_id": world.sku.product_id,
            "group_ids": [world.group_b.pk],
        },
    }


def operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return sorted(
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    )


def snapshot() -> dict[str, int]:
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label
        in {
            "org",
            "members",
            "groups",
            "auth",
            "catalog",
            "orders",
            "shop",
            "promotions",
            "referrals",
            "demand",
        }
    }


def assert_nothing_of_b(response: Any, where: str) -> None:
    text = response.content.decode("utf-8", errors="replace")
    if response.get("Content-Type", "").startswith("application/json"):
        text = json.dumps(json.loads(text), ensure_ascii=False)  # \u escapes would hide a leak
    for marker in B_MARKERS:
        assert marker not in text, f"{where} leaked {marker!r}"


def call(
    client: Client, method: str, url: str, body: dict[str, Any] | None = None, **query: Any
) -> Any:
    if method == "GET":
        return client.get(url, query)
    return getattr(client, method.lower())(
        url, data=json.dumps(body or {}), content_type="application/json"
    )


@pytest.mark.parametrize("who", ["manager_a", "region_manager_a", "operator_a", "cashier_a"])
def test_store_a_staff_get_nothing_of_store_b(world: World, who: str) -> None:
    staff: Staff = getattr(world.chain, who)
    client = client_for(staff)
    ids = path_ids(world)
    filter_ids = {**ids, "store_id": world.chain.store_b.pk}
    bodies = write_bodies(world)
    probed = 0
    for method, template in operations():
        if (method, template) in PUBLIC:
            continue
        params = re.findall(r"{(\w+)}", template)
        unknown = [p for p in params if p not in ids]
        assert not unknown, f"{method} {template}: unknown path parameter {unknown}; add a B id"
        url = template.format(**{p: ids[p] for p in params})
        where = f"{who} {method} {url}"
        if method == "GET":
            response = call(client, method, url)
            if params:
                assert response.status_code == 404, where
            else:
                assert response.status_code in (200, 403), where
                assert_nothing_of_b(response, where)
                for name in LIST_FILTERS:
                    filtered = call(client, method, url, **{name: filter_ids[name]})
                    assert filtered.status_code in (200, 403, 404), f"{where}?{name}"
                    assert_nothing_of_b(filtered, f"{where}?{name}")
            assert_nothing_of_b(response, where)
        else:
            assert (method, template) in bodies, f"{method} {template}: add a probe body here"
            before = snapshot()
            response = call(client, method, url, bodies[(method, template)])
            assert_nothing_of_b(response, where)
            if template == "/api/auth/tokens":  # acts on the caller only
                assert response.status_code == 201, where
                continue
            assert response.status_code in (403, 404), f"{where} → {response.status_code}"
            assert snapshot() == before, f"{where} wrote something"
            body = response.json()
            assert set(body) >= {"code", "message"}, where
        probed += 1
    assert probed >= 25


def test_cross_store_membership_in_own_group_path_is_refused(world: World) -> None:
    client = client_for(world.chain.manager_a)
    url = f"/api/groups/{world.group_a.pk}/members/{world.membership_b.pk}"
    response = client.patch(url, data={"role": "committee"}, content_type="application/json")
    assert response.status_code == 404
    world.membership_b.refresh_from_db()
    assert world.membership_b.role == "member"


def test_every_non_public_endpoint_requires_login(world: World) -> None:
    client = Client()
    ids = path_ids(world)
    for method, template in operations():
        if (method, template) in PUBLIC:
            continue
        url = template.format(**{p: ids[p] for p in re.findall(r"{(\w+)}", template)})
        response = call(client, method, url, {})
        assert response.status_code == 401, f"{method} {url}"
        assert response.json()["code"] == "not_authenticated"


def test_hq_sees_both_stores(world: World) -> None:
    client = client_for(world.chain.admin)
    names = {g["name"] for g in client.get("/api/groups").json()["items"]}
    assert names == {"A店宝妈群", "B店专属群"}


def test_phones_masked_for_roles_without_pii(world: World) -> None:
    manager = client_for(world.chain.manager_a).get(f"/api/members/{world.member_a.pk}").json()
    operator = client_for(world.chain.operator_a).get(f"/api/members/{world.member_a.pk}").json()
    assert manager["phone"] == "13900001111"
    assert operator["phone"] == "139****1111"
    listed = client_for(world.chain.operator_a).get(f"/api/groups/{world.group_a.pk}/members")
    assert listed.json()["items"][0]["member_phone"] == "139****1111"
