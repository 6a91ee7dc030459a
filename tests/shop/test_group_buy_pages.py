"""Group-buy member pages through the Django test client: what a member sees, and what bad or
stale taps get (a message, and nothing written)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from shequn.orders.models import Order
from shequn.promotions.models import GroupBuy, GroupBuySeat
from tests.conftest import Chain, make_group, make_sku, phone
from tests.promotions.test_group_buy import build_chain_b_campaign, campaign_for, paid_in, seat_of
from tests.shop.test_shop_pages import log_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def tuan(chain: Chain) -> tuple[Chain, GroupBuy, Any]:
    sku = make_sku(chain, stock={chain.store_a: 20, chain.store_b: 20})
    group = make_group(chain.manager_a, chain.store_a, name="A店拼团群")
    return chain, campaign_for(chain, sku, team_size=2), group


def test_feed_campaign_and_team_pages(tuan: tuple[Chain, GroupBuy, Any]) -> None:
    chain, campaign, group = tuan
    team = seat_of(paid_in(chain, campaign, 1)).team
    client = Client()
    feed = client.get(f"/m/g/{group.pk}/").content.decode()
    assert f'data-group-buy="{campaign.pk}"' in feed
    page = client.get(f"/m/tuan/{campaign.pk}/").content.decode()
    assert "¥29.90" in page
    assert f'data-team="{team.pk}"' in page
    assert "还差 <b>1</b> 人" in page
    team_page = client.get(f"/m/teams/{team.pk}/").content.decode()
    assert 'id="join-team"' in team_page
    assert "13800000001" not in team_page  # others see only the last four digits
    assert "尾号0001" in team_page


def test_joining_needs_a_login_and_comes_back(tuan: tuple[Chain, GroupBuy, Any]) -> None:
    chain, campaign, _ = tuan
    team = seat_of(paid_in(chain, campaign, 1)).team
    client = Client()
    client.get(f"/m/teams/{team.pk}/")  # the share link sets the store
    response = client.post(
        f"/m/tuan/{campaign.pk}/join/",
        {"team": team.pk, "quantity": "1", "idempotency_key": "k1"},
        HTTP_REFERER=f"/m/teams/{team.pk}/",
    )
    assert response.status_code == 302
    assert "/m/login/" in response["Location"]
    assert Order.objects.count() == 1


def test_bad_and_stale_taps_get_a_message_and_write_nothing(
    tuan: tuple[Chain, GroupBuy, Any],
) -> None:
    chain, campaign, _ = tuan
    first = paid_in(chain, campaign, 1)
    team = seat_of(first).team
    paid_in(chain, campaign, 2, team=team)  # the team of 2 is full now
    client = Client()
    client.get(f"/m/teams/{team.pk}/")
    log_in(client, phone(77), next_url=f"/m/teams/{team.pk}/")
    before = (Order.objects.count(), GroupBuySeat.objects.count())
    for form, expected in (
        ({"team": team.pk, "quantity": "1", "idempotency_key": "a"}, "该团已满"),
        ({"quantity": "abc", "idempotency_key": "b"}, "数量"),
        ({"quantity": "9", "idempotency_key": "c"}, "每单限购"),
        ({"team": "x", "quantity": "1", "idempotency_key": "d"}, "无效"),
        ({"quantity": "1", "idempotency_key": ""}, "请求编号"),
    ):
        response = client.post(
            f"/m/tuan/{campaign.pk}/join/",
            form,
            HTTP_REFERER=f"/m/tuan/{campaign.pk}/",
            follow=True,
        )
        assert expected in response.content.decode(), form
    assert (Order.objects.count(), GroupBuySeat.objects.count()) == before
    page = client.get(f"/m/teams/{team.pk}/").content.decode()
    assert "该团已满员成团" in page
    assert 'id="join-team"' not in page


def test_another_chains_campaign_and_team_are_not_found(
    tuan: tuple[Chain, GroupBuy, Any],
) -> None:
    chain, campaign, group = tuan
    foreign = build_chain_b_campaign()
    client = Client()
    client.get(f"/m/g/{group.pk}/")
    assert client.get(f"/m/tuan/{foreign.pk}/").status_code == 404
    log_in(client, phone(78))
    response = client.post(
        f"/m/tuan/{foreign.pk}/join/", {"quantity": "1", "idempotency_key": "f"}, follow=True
    )
    assert "不存在" in response.content.decode()
    assert not Order.objects.exists()
    assert Client().get("/m/tuan/999999/").status_code == 404
