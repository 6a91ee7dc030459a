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
    gone = post(body, sign_member(10**12))  # signed, but for a member who is not there
    assert (gone.status_code, gone.json()["code"]) == (401, "not_authenticated")
    foreign = build_chain_b_campaign()
    for bad, status in (
        ({"store_id": 10**9}, 404),
        ({"store_id": 2**64}, 404),  # no column holds it: absent, not a server error
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


def test_a_sharer_reads_earnings_and_withdraws_by_token(chain: Chain) -> None:
    from shequn.referrals.actions import apply_as_sharer, decide_sharer
    from shequn.referrals.ledger import chain_account, sharer_account
    from shequn.referrals.ledger import post as post_ledger
    from shequn.referrals.models import AccountKind, LedgerTransaction

    member = member_no(chain, 1)
    token = sign_member(member.pk)
    client = Client()
    plain = client.get("/api/member/earnings", HTTP_X_MEMBER_TOKEN=token).json()
    assert (plain["status"], plain["available_fen"]) == ("none", 0)
    decide_sharer(acting=chain.manager_a, sharer=apply_as_sharer(member=member), approve=True)
    post_ledger(
        chain_id=chain.hq.pk,
        kind="adjustment",
        key="seed",
        legs=[
            (chain_account(chain.hq.pk, AccountKind.COMMISSION_EXPENSE), -3000),
            (sharer_account(member, AccountKind.AVAILABLE), 3000),
        ],
    )

    def withdraw(amount: object, key: str = "w1") -> Any:
        body = json.dumps({"amount_fen": amount, "request_key": key})
        return client.post(
            "/api/member/withdrawals", body, "application/json", HTTP_X_MEMBER_TOKEN=token
        )

    for amount, status in ((999, 422), (3001, 422), ("20", 422), (-5, 422)):
        refused = withdraw(amount, key=f"bad{amount}")
        assert refused.status_code == status, (amount, refused.content)
        assert {"code", "message"} <= set(refused.json())
    assert not LedgerTransaction.objects.filter(kind="withdraw").exists()
    done = withdraw(2000)
    assert done.status_code == 201, done.content
    assert (done.json()["available_fen"], done.json()["in_flight_fen"]) == (1000, 2000)
    again = withdraw(2000)  # the same request again: no second withdrawal
    assert again.json()["in_flight_fen"] == 2000
    assert LedgerTransaction.objects.filter(kind="withdraw").count() == 1
    assert Client().get("/api/member/earnings").status_code == 401


def test_an_idempotency_key_is_the_members_own(chain: Chain) -> None:
    """Member B sending member A's ``Idempotency-Key`` (and the same body) gets an order of
    their own, never A's stored response."""
    sku = make_sku(chain, price_fen=1200, stock={chain.store_a: 10})
    a, b = member_no(chain, 1), member_no(chain, 2)
    body = {
        "store_id": chain.store_a.pk,
        "lines": [{"sku_id": sku.pk, "quantity": 1}],
        "idempotency_key": "same-app-key",
    }

    def send(member_id: int) -> Any:
        return Client().post(
            URL,
            json.dumps(body),
            "application/json",
            HTTP_X_MEMBER_TOKEN=sign_member(member_id),
            HTTP_IDEMPOTENCY_KEY="shared-header-key",
        )

    first = send(a.pk)
    assert first.status_code == 201, first.content
    other = send(b.pk)
    assert other.status_code == 201, other.content
    assert other.json()["id"] != first.json()["id"]
    assert Order.objects.get(pk=other.json()["id"]).member_id == b.pk
    again = send(a.pk)  # A's own retry still replays A's order
    assert again.json()["id"] == first.json()["id"]
