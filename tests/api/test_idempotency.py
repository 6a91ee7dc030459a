"""Idempotency-Key on API writes: one effect per key, replays identical, misuse refused."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test import Client

from shequn.core.models import IdempotencyRecord
from shequn.groups import actions as group_actions
from shequn.groups.models import CustomerGroup, GroupMembership
from shequn.org.actions import issue_api_token
from tests.conftest import client_for, texted_code
from tests.world import World, build_world


def post(client: Client, url: str, body: dict[str, object], key: str, **extra: str) -> object:
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
        **extra,
    )


def test_same_key_same_body_one_effect_same_response(world: World) -> None:
    client = client_for(world.chain.manager_a)
    body = {"store_id": world.chain.store_a.pk, "name": "新VIP群", "theme": "vip"}
    first = post(client, "/api/groups", body, "key-1")
    second = post(client, "/api/groups", body, "key-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first["Idempotent-Replayed"] == "false"
    assert second["Idempotent-Replayed"] == "true"
    assert CustomerGroup.objects.filter(name="新VIP群").count() == 1


def test_same_key_other_body_is_422_and_writes_nothing(world: World) -> None:
    client = client_for(world.chain.manager_a)
    post(
        client,
        "/api/groups",
        {"store_id": world.chain.store_a.pk, "name": "甲", "theme": "vip"},
        "k",
    )
    other = post(
        client,
        "/api/groups",
        {"store_id": world.chain.store_a.pk, "name": "乙", "theme": "vip"},
        "k",
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert not CustomerGroup.objects.filter(name="乙").exists()


def test_keys_are_per_caller(world: World) -> None:
    body = {"store_id": world.chain.store_a.pk, "name": "共享键", "theme": "vip"}
    post(client_for(world.chain.manager_a), "/api/groups", body, "shared")
    other_caller = post(client_for(world.chain.operator_a), "/api/groups", body, "shared")
    assert other_caller.status_code == 201
    assert other_caller["Idempotent-Replayed"] == "false"


def test_refusals_are_replayed_too(world: World) -> None:
    client = client_for(world.chain.manager_a)
    body = {"store_id": world.chain.store_b.pk, "name": "越权", "theme": "vip"}
    first = post(client, "/api/groups", body, "k-404")
    again = post(client, "/api/groups", body, "k-404")
    assert first.status_code == again.status_code == 404
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("bad_key", ["", "has space", "x" * 256, "中文键"])
def test_malformed_key_is_400(world: World, bad_key: str) -> None:
    client = client_for(world.chain.manager_a)
    body = {"store_id": world.chain.store_a.pk, "name": "坏键群", "theme": "vip"}
    response = client.post(
        "/api/groups",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Idempotency-Key": bad_key},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert not CustomerGroup.objects.filter(name="坏键群").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_20_concurrent_same_key_requests_one_effect() -> None:
    world = build_world()
    token = issue_api_token(user=world.chain.manager_a.user, name="race").secret
    code = group_actions.invitation_code(world.invitation_a)
    sent = post(Client(), "/api/join/sms", {"code": code, "phone": "13712345678"}, "sms-key")
    assert sent.status_code == 202
    body = {
        "code": code,
        "phone": "13712345678",
        "sms_code": texted_code("13712345678"),
        "name": "并发",
    }
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    group_body = {"store_id": world.chain.store_a.pk, "name": "并发建群", "theme": "hobby"}

    def send(kind: str) -> tuple[int, str]:
        try:
            client = Client()
            if kind == "join":
                response = post(client, "/api/join", body, "same-join-key")
            else:
                response = post(client, "/api/groups", group_body, "same-group-key", **auth)
            return response.status_code, response.content.decode()
        finally:
            connections.close_all()

    workers = 20 if connection.vendor == "postgresql" else 10
    with ThreadPoolExecutor(max_workers=workers) as pool:
        joins = list(pool.map(send, ["join"] * 20))
        groups = list(pool.map(send, ["group"] * 20))

    for results in (joins, groups):
        assert Counter(status for status, _ in results) == Counter({201: 20}), results[:3]
        assert len({content for _, content in results}) == 1  # every caller got the same answer
    assert GroupMembership.objects.filter(member__phone="+8613712345678").count() == 1
    assert CustomerGroup.objects.filter(name="并发建群").count() == 1
    assert IdempotencyRecord.objects.count() == 3  # the text, the join, the group
