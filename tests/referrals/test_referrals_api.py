"""Referrals API: sharers listed and decided within the caller's stores (phones masked by
role), commission rules set by HQ with at most two levels, commissions on orders in scope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shequn.members.models import Member
from shequn.referrals.actions import apply_as_sharer
from shequn.referrals.models import CommissionRule, SharerStatus
from tests.conftest import Chain, client_for, make_sku, phone

pytestmark = pytest.mark.django_db


def post(chain: Chain, who: str, url: str, body: dict[str, Any]) -> Any:
    return client_for(getattr(chain, who)).post(url, json.dumps(body), "application/json")


def test_sharers_in_scope_and_decisions(chain: Chain) -> None:
    a = apply_as_sharer(
        member=Member.objects.create(chain=chain.hq, phone=phone(1), home_store=chain.store_a)
    )
    b = apply_as_sharer(
        member=Member.objects.create(chain=chain.hq, phone=phone(2), home_store=chain.store_b)
    )
    mine = client_for(chain.manager_a).get("/api/referrals/sharers").json()["items"]
    assert [s["id"] for s in mine] == [a.pk]
    assert "****" not in mine[0]["phone"]  # a store manager may see phones
    hq = client_for(chain.hq_operator).get("/api/referrals/sharers").json()["items"]
    assert {s["id"] for s in hq} == {a.pk, b.pk}
    assert all("****" in s["phone"] for s in hq)  # an HQ operator may not
    refused = post(chain, "manager_a", f"/api/referrals/sharers/{b.pk}/decision", {"approve": True})
    assert refused.status_code == 404
    done = post(chain, "manager_a", f"/api/referrals/sharers/{a.pk}/decision", {"approve": True})
    assert done.json()["status"] == SharerStatus.APPROVED
    again = post(chain, "manager_a", f"/api/referrals/sharers/{a.pk}/decision", {"approve": False})
    assert (again.status_code, again.json()["code"]) == (422, "already_decided")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"rates_bp": [1000, 300, 100]}, 422, "too_many_levels"),
        ({"rates_bp": [-5]}, 422, "invalid_rate"),
        ({"rates_bp": [6000, 6000]}, 422, "invalid_rate"),
        ({"rates_bp": []}, 422, None),
        ({"rates_bp": [100], "product_id": 10**9}, 404, None),
        ({"rates_bp": [100], "category_id": 10**9}, 404, None),
    ],
)
def test_bad_rules_get_the_error_shape(
    chain: Chain, body: dict[str, Any], status: int, code: str | None
) -> None:
    response = post(chain, "hq_operator", "/api/referrals/rules", body)
    assert response.status_code == status, response.content
    assert {"code", "message"} <= set(response.json())
    if code:
        assert response.json()["code"] == code
    assert not CommissionRule.objects.exists()


def test_rules_by_hq_only(chain: Chain) -> None:
    sku = make_sku(chain)
    made = post(
        chain,
        "hq_operator",
        "/api/referrals/rules",
        {"rates_bp": [800, 200], "product_id": sku.product_id},
    )
    assert made.status_code == 201, made.content
    assert (made.json()["level1_bp"], made.json()["level2_bp"]) == (800, 200)
    assert post(chain, "manager_a", "/api/referrals/rules", {"rates_bp": [100]}).status_code == 403
    assert len(client_for(chain.hq_operator).get("/api/referrals/rules").json()["items"]) == 1


def test_statements_and_leaderboard_in_scope(chain: Chain) -> None:
    from shequn.core.timeutil import local_today
    from shequn.referrals.actions import set_commission_rule
    from shequn.referrals.models import Sharer
    from tests.referrals.test_commission_lifecycle import (
        approved_sharer,
        bought_through,
        refund_in_full,
    )

    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 100, chain.store_b: 100})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    top = approved_sharer(chain, 1)
    second = approved_sharer(chain, 2)
    for n in range(3):
        bought_through(chain, sku, top, 10 + n)  # 7,980 fen each → 798
    refunded = bought_through(chain, sku, second, 20)
    refund_in_full(chain, refunded)
    foreign = Member.objects.create(chain=chain.hq, phone=phone(3), home_store=chain.store_b)
    foreign_sharer = apply_as_sharer(member=foreign)
    month = f"{local_today():%Y-%m}"

    manager = client_for(chain.manager_a)
    sharer_id = Sharer.objects.get(member=top).pk
    statement = manager.get(f"/api/referrals/sharers/{sharer_id}/statement?month={month}").json()
    assert (statement["orders"], statement["commission_fen"]) == (3, 3 * 798)
    assert len(statement["commissions"]) == 3
    for url in (
        f"/api/referrals/sharers/{foreign_sharer.pk}/statement?month={month}",
        f"/api/referrals/sharers/{10**9}/statement",
    ):
        missing = manager.get(url)
        assert missing.status_code == 404
        assert {"code", "message"} <= set(missing.json())
    bad = manager.get(f"/api/referrals/sharers/{sharer_id}/statement?month=2026-13")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_month")

    leaders = manager.get("/api/referrals/leaderboard").json()
    assert [(r["rank"], r["member_id"], r["orders"]) for r in leaders] == [
        (1, top.pk, 3),
        (2, second.pk, 1),
    ]
    assert leaders[0]["commission_fen"] == 3 * 798
    assert client_for(chain.manager_b).get("/api/referrals/leaderboard").json() == []

    from shequn.referrals.queries import monthly_statements

    (mine,) = monthly_statements(second)
    assert (mine.month, mine.orders, mine.accrued_fen, mine.clawed_back_fen, mine.net_fen) == (
        month,
        1,
        798,
        798,
        0,
    )


def test_hq_reads_and_changes_the_policy_bad_values_change_nothing(chain: Chain) -> None:
    hq = client_for(chain.hq_operator)
    assert hq.get("/api/referrals/settings").json()["attribution_days"] == 7
    changed = hq.patch(
        "/api/referrals/settings", json.dumps({"attribution_days": 3}), "application/json"
    )
    assert (changed.status_code, changed.json()["attribution_days"]) == (200, 3)
    for body in ({"freeze_days": 31}, {"min_withdrawal_fen": 0}, {"group_owner_bp": -1}):
        bad = hq.patch("/api/referrals/settings", json.dumps(body), "application/json")
        assert bad.status_code == 422, body
        assert {"code", "message"} <= set(bad.json())
    mode = hq.patch(
        "/api/referrals/settings", json.dumps({"binding_mode": "x"}), "application/json"
    )
    assert mode.status_code == 422
    denied = client_for(chain.manager_a).patch(
        "/api/referrals/settings", json.dumps({"freeze_days": 1}), "application/json"
    )
    assert denied.status_code == 403
    assert hq.get("/api/referrals/settings").json() == {
        "binding_mode": "none",
        "binding_days": 30,
        "attribution_days": 3,
        "freeze_days": 7,
        "min_withdrawal_fen": 1000,
        "group_owner_bp": 0,
    }
