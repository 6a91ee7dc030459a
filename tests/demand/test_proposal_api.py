"""Reverse customization through the API and the pages: who may draft, publish and receive,
what bad input gets (4xx with the error shape, nothing written), and who sees what."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from shequn.core import timeutil
from shequn.demand.models import ProductionLine, Proposal, ProposalStatus
from shequn.demand.proposals import sweep_proposals
from tests.conftest import Chain, client_for
from tests.demand.test_proposals import c2b, paid, published  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def body(c2b: dict[str, Any], **overrides: Any) -> dict[str, Any]:  # noqa: F811
    return {
        "topic_id": c2b["topic"].pk,
        "title": "艾草暖宫贴 旅行装",
        "spec": "3贴/盒",
        "target_price_fen": 1990,
        "deposit_fen": 500,
        "min_units": 5,
        "deadline": (timeutil.now() + timedelta(days=3)).isoformat(),
        **overrides,
    }


def post(client: Client, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(url, json.dumps(data or {}), "application/json")


def test_supplier_drafts_hq_publishes_through_the_api(
    chain: Chain,
    c2b: dict[str, Any],  # noqa: F811
) -> None:
    supplier, hq = client_for(chain.supplier), client_for(chain.hq_operator)
    made = post(supplier, "/api/demand/proposals", body(c2b))
    assert made.status_code == 201, made.content
    proposal = made.json()
    assert (proposal["status"], proposal["supplier_id"]) == ("draft", c2b["maker"].pk)
    refused = post(supplier, f"/api/demand/proposals/{proposal['id']}/publish")
    assert refused.status_code == 403
    done = post(hq, f"/api/demand/proposals/{proposal['id']}/publish")
    assert done.status_code == 200
    assert done.json()["status"] == "open"
    assert sorted(done.json()["group_ids"]) == sorted([c2b["group_a"].pk, c2b["group_b"].pk])
    listed = supplier.get("/api/demand/proposals").json()
    assert [p["id"] for p in listed["items"]] == [proposal["id"]]
    assert client_for(chain.manager_a).get("/api/demand/proposals").json()["items"] == []
    assert (
        client_for(chain.manager_a).get(f"/api/demand/proposals/{proposal['id']}").status_code
        == 404
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"deposit_fen": 2500},
        {"target_price_fen": -1},
        {"target_price_fen": 10**10},
        {"min_units": 0},
        {"deadline": "2020-01-01T00:00:00+08:00"},
        {"title": ""},
        {"topic_id": 999999},
    ],
)
def test_bad_drafts_get_4xx_with_the_error_shape_and_write_nothing(
    chain: Chain,
    c2b: dict[str, Any],  # noqa: F811
    bad: dict[str, Any],
) -> None:
    answer = post(client_for(chain.supplier), "/api/demand/proposals", body(c2b, **bad))
    assert answer.status_code in (404, 422), answer.content
    assert {"code", "message"} <= set(answer.json())
    assert Proposal.objects.count() == 0


def test_only_the_stores_own_deliveries_are_received(
    chain: Chain,
    c2b: dict[str, Any],  # noqa: F811
) -> None:
    proposal = published(chain, c2b, min_units=2)
    paid(proposal, c2b["people"][0], 1)
    paid(proposal, c2b["people"][2], 1)
    Proposal.objects.filter(pk=proposal.pk).update(deadline=timeutil.now() - timedelta(seconds=1))
    sweep_proposals()
    line_a = ProductionLine.objects.get(store=chain.store_a)
    foreign = post(client_for(chain.manager_b), f"/api/demand/deliveries/{line_a.pk}/receive")
    assert foreign.status_code == 404
    own = post(client_for(chain.manager_a), f"/api/demand/deliveries/{line_a.pk}/receive")
    assert own.status_code == 200
    assert own.json()["received_at"]
    again = post(client_for(chain.manager_a), f"/api/demand/deliveries/{line_a.pk}/receive")
    assert again.status_code == 409
    page = client_for(chain.manager_b).get("/proposals/").content.decode()
    assert f'data-delivery="{line_a.pk}"' not in page
    assert 'data-delivery="' in page  # store B's own line is there
    got = client_for(chain.hq_operator).get(f"/api/demand/proposals/{proposal.pk}").json()
    assert got["status"] == ProposalStatus.SUCCEEDED
    assert sum(line["quantity"] for line in got["production_lines"]) == 2


def test_pages_draft_publish_and_show_members_the_offer(
    chain: Chain,
    c2b: dict[str, Any],  # noqa: F811
) -> None:
    supplier = client_for(chain.supplier)
    board = supplier.get("/demand/").content.decode()
    assert f'data-propose="{c2b["topic"].pk}"' in board
    assert "data-propose" not in client_for(chain.manager_a).get("/demand/").content.decode()
    deadline = timeutil.to_local(timeutil.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    form = {
        "title": "艾草暖宫贴 旅行装",
        "spec": "3贴/盒",
        "target_price": "19.90",
        "deposit": "5",
        "min_units": "5",
        "per_member_limit": "3",
        "deadline": deadline,
    }
    answer = supplier.post(f"/demand/topics/{c2b['topic'].pk}/propose/", form)
    assert answer.status_code == 302
    proposal = Proposal.objects.get()
    assert (proposal.target_price_fen, proposal.deposit_fen) == (1990, 500)
    assert timeutil.to_local(proposal.deadline).strftime("%Y-%m-%dT%H:%M") == deadline
    hq = client_for(chain.hq_operator)
    assert hq.post(f"/proposals/{proposal.pk}/", {"action": "publish"}).status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.OPEN
    feed = Client().get(f"/m/g/{c2b['group_a'].pk}/").content.decode()
    assert f'data-proposal="{proposal.pk}"' in feed
    offer = Client().get(f"/m/c2b/{proposal.pk}/").content.decode()
    assert "¥5.00" in offer
    assert "¥19.90" in offer
    bad = dict(form, deposit="30")
    refused = supplier.post(f"/demand/topics/{c2b['topic'].pk}/propose/", bad)
    assert refused.status_code == 302  # back to the form with the reason
    assert Proposal.objects.count() == 1
