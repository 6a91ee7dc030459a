"""Inputs that once answered 500 (found by fuzzing the schema) now get the error shape: page
sizes and offsets are bounded on every list, dates are held to a supported range, ids past a
64-bit column are simply not found, and a flood of query parameters is a 400."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from shequn.api import api
from shequn.core.pagination import MAX_PAGE_SIZE
from tests.conftest import client_for
from tests.world import World

HUGE = 2**63


def paginated_paths() -> list[str]:
    schema = api.get_openapi_schema(path_prefix="/api/")
    paths = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        names = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
        if {"limit", "offset"} <= names:
            paths.append(path)
    return sorted(paths)


PAGINATED = paginated_paths()


def fill(path: str, world: World) -> str:
    ids = {
        "{group_id}": world.group_a.pk,
        "{node_id}": world.chain.store_a.pk,
        "{sale_id}": world.foreign_sale.pk,
        "{proposal_id}": world.proposal_b.pk,
        "{topic_id}": world.foreign_topic.pk,
        "{group_buy_id}": world.foreign_group_buy.pk,
        "{sharer_id}": world.sharer_b.pk,
    }
    for name, value in ids.items():
        path = path.replace(name, str(value))
    assert "{" not in path, f"add an id for {path}"
    return path


def assert_error(response: Any, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) >= {"code", "message"}


def test_every_list_is_paginated() -> None:
    assert len(PAGINATED) >= 17


@pytest.mark.parametrize("path", PAGINATED)
def test_page_size_and_offset_are_bounded(world: World, path: str) -> None:
    client = client_for(world.chain.admin)
    url = fill(path, world)
    for params in (
        {"limit": HUGE},
        {"offset": HUGE},
        {"limit": 1_000_000},
        {"limit": 0},
        {"offset": -1},
    ):
        assert_error(client.get(url, params), 422)
    ok = client.get(url, {"limit": MAX_PAGE_SIZE, "offset": 10**9})
    assert ok.status_code in (200, 404), ok.content[:300]


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"])
def test_calendar_weeks_outside_the_supported_range(world: World, day: str) -> None:
    client = client_for(world.chain.admin)
    response = client.get("/api/promotions/calendar", {"week_of": day})
    assert_error(response, 422)
    assert response.json()["code"] == "date_out_of_range"
    page = client.get("/promotions/calendar/", {"week": day})
    assert page.status_code == 422
    assert "2000-01-01" in page.content.decode()
    assert client.get("/api/promotions/calendar", {"week_of": "2099-12-31"}).status_code == 200


@pytest.mark.parametrize("month", ["9999-12", "0001-01", "2100-01"])
def test_months_outside_the_supported_range(world: World, month: str) -> None:
    client = client_for(world.chain.admin)
    assert_error(client.get("/api/referrals/leaderboard", {"month": month}), 422)
    statement = f"/api/referrals/sharers/{world.sharer_b.pk}/statement"
    assert_error(client.get(statement, {"month": month}), 422)
    assert client.get("/referrals/", {"month": month}).status_code == 422
    assert client.get("/referrals/export.xlsx", {"month": month}).status_code == 422


def test_ids_past_a_64_bit_column(world: World) -> None:
    client = client_for(world.chain.admin)
    assert client.get("/messages/", {"group": "9" * 25}).status_code == 200
    assert_error(client.get(f"/api/groups/{'9' * 25}"), 404)
    assert_error(client.get("/api/groups", {"store_id": "9" * 25}), 404)
    assert client.get("/groups/", {"store": "9" * 25}).status_code == 404


def test_more_than_a_thousand_query_parameters(world: World) -> None:
    client = client_for(world.chain.admin)
    query = "&".join(f"p{n}=1" for n in range(1_200))
    assert_error(client.get(f"/api/groups?{query}"), 400)
    assert client.get(f"/groups/?{query}").status_code == 400
    public = Client().get(f"/api/join/x?{query}")  # never reads its query: the code decides
    assert_error(public, 422)
