"""Group-buy API: HQ creates and cancels; bad numbers get the error shape and write nothing;
store staff see the teams of their own stores only, phones masked unless their role may see them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shequn.core import timeutil
from shequn.promotions.models import GroupBuy
from tests.conftest import Chain, client_for, make_sku
from tests.promotions.test_group_buy import campaign_for, paid_in, seat_of

pytestmark = pytest.mark.django_db
URL = "/api/promotions/group-buys"


def body(sku_id: int, **overrides: Any) -> dict[str, Any]:
    now = timeutil.now()
    data: dict[str, Any] = {
        "sku_id": sku_id,
        "name": "周五三人团",
        "price_fen": 2990,
        "team_size": 3,
        "team_minutes": 120,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=2)).isoformat(),
        "per_member_limit": 2,
        "per_order_limit": 1,
    }
    data.update(overrides)
    return data


def post(chain: Chain, data: Any, who: str = "hq_operator", url: str = URL) -> Any:
    return client_for(getattr(chain, who)).post(
        url, data=json.dumps(data), content_type="application/json"
    )


def test_create_read_cancel(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990)
    created = post(chain, body(sku.pk, unfilled_policy="auto_succeed", min_team_size=2))
    assert created.status_code == 201, created.content
    campaign = created.json()
    assert (campaign["price_fen"], campaign["list_price_fen"], campaign["team_size"]) == (
        2990,
        3990,
        3,
    )
    assert (campaign["unfilled_policy"], campaign["min_team_size"]) == ("auto_succeed", 2)
    listed = client_for(chain.manager_a).get(URL).json()
    assert [c["id"] for c in listed["items"]] == [campaign["id"]]
    cancel_url = f"{URL}/{campaign['id']}/cancel"
    assert post(chain, {}, url=cancel_url).json()["cancelled_at"] is not None
    again = post(chain, {}, url=cancel_url)
    assert (again.status_code, again.json()["code"]) == (422, "group_buy_cancelled")
    denied = post(chain, body(sku.pk), who="manager_a")
    assert denied.status_code == 403
    assert GroupBuy.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"price_fen": 29.9}, 422),
        ({"price_fen": "2990"}, 422),
        ({"price_fen": -1}, 422),
        ({"price_fen": 3990}, 422),
        ({"price_fen": 10**15}, 422),
        ({"team_size": 1}, 422),
        ({"team_size": 100_000}, 422),
        ({"team_minutes": 0}, 422),
        ({"per_member_limit": 0}, 422),
        ({"unfilled_policy": "virtual"}, 422),  # fabricated members are not an option
        ({"min_team_size": 2}, 422),  # a threshold without the auto-succeed policy
        ({"unfilled_policy": "auto_succeed", "min_team_size": 3}, 422),  # = team size
        ({"starts_at": "2026-11-24T10:00:00"}, 422),
        ({"ends_at": "2020-01-01T00:00:00+08:00"}, 422),
        ({"sku_id": 0}, 404),
    ],
)
def test_bad_numbers_are_refused(chain: Chain, overrides: dict[str, Any], status: int) -> None:
    sku = make_sku(chain, price_fen=3990)
    response = post(chain, {**body(sku.pk), **overrides})
    assert response.status_code == status, response.content
    assert {"code", "message"} <= set(response.json())
    assert not GroupBuy.objects.exists()


def test_teams_are_seen_within_the_callers_stores(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 10, chain.store_b: 10})
    campaign = campaign_for(chain, sku)
    team_a = seat_of(paid_in(chain, campaign, 1)).team
    team_b = seat_of(paid_in(chain, campaign, 2, store=chain.store_b)).team
    teams_url = f"{URL}/{campaign.pk}/teams"

    hq = client_for(chain.hq_operator).get(teams_url).json()
    assert {t["id"] for t in hq["items"]} == {team_a.pk, team_b.pk}
    mine = client_for(chain.manager_a).get(teams_url).json()
    assert [t["id"] for t in mine["items"]] == [team_a.pk]
    assert client_for(chain.manager_a).get(f"/api/promotions/teams/{team_b.pk}").status_code == 404
    elsewhere = client_for(chain.manager_a).get(teams_url, {"store_id": chain.store_b.pk})
    assert elsewhere.status_code == 404
    counts = client_for(chain.manager_a).get(f"{URL}/{campaign.pk}").json()
    assert counts["teams_forming"] == 1  # store B's team is not counted for store A
    assert client_for(chain.hq_operator).get(f"{URL}/{campaign.pk}").json()["teams_forming"] == 2

    detail = client_for(chain.cashier_a).get(f"/api/promotions/teams/{team_a.pk}").json()
    assert (detail["joined"], detail["size"], detail["status"]) == (1, 3, "forming")
    [seat] = detail["seats"]
    assert "****" in seat["member_phone"]
    assert "****" in detail["leader_phone"]
    full = client_for(chain.manager_a).get(f"/api/promotions/teams/{team_a.pk}").json()
    assert "****" not in full["leader_phone"]  # a store manager may see the member's phone
    forming = client_for(chain.hq_operator).get(teams_url, {"status": "succeeded"}).json()
    assert forming["items"] == []
