"""Bad input gets a 4xx with the one error shape, and changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from shequn.core import timeutil
from shequn.groups import actions as group_actions
from shequn.groups.models import Invitation
from tests.conftest import api_join, client_for
from tests.world import World


def counts() -> dict[str, int]:
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label in {"org", "members", "groups", "core"}
    }


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body["message"], str)
    assert body["message"]
    if code is not None:
        assert body["code"] == code
    return body


def join(client: Client, code: str, phone: str = "13711112222") -> Any:
    return api_join(client, code, phone)


@pytest.mark.parametrize("bad_phone", ["12345", "1381234123x", "", "+1 202 555 0100 1234"])
def test_malformed_phone(world: World, bad_phone: str) -> None:
    before = counts()
    code = group_actions.invitation_code(world.invitation_a)
    assert_error(join(Client(), code, bad_phone), 422, "invalid_phone")
    assert counts() == before


def test_tampered_expired_revoked_invitations(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    before = counts()
    assert_error(join(Client(), code[:-2] + "zz"), 422, "invalid_invitation")
    assert_error(join(Client(), "no-signature-here"), 422, "invalid_invitation")
    Invitation.objects.filter(pk=world.invitation_a.pk).update(
        expires_at=timeutil.now() - timedelta(minutes=1)
    )
    assert_error(join(Client(), code), 422, "invitation_expired")
    assert_error(Client().get(f"/api/join/{code}"), 422, "invitation_expired")
    group_actions.revoke_invitation(acting=world.chain.cashier_b, invitation=world.invitation_b)
    before = counts()
    assert_error(
        join(Client(), group_actions.invitation_code(world.invitation_b)), 422, "invitation_revoked"
    )
    assert counts() == before


def test_unknown_objects_are_404(world: World) -> None:
    client = client_for(world.chain.admin)
    before = counts()
    assert_error(client.get("/api/groups/999999"), 404, "not_found")
    assert_error(client.get("/api/members/-1"), 404, "not_found")
    response = client.post(
        "/api/invitations",
        data={"kind": "group", "group_id": 999999},
        content_type="application/json",
    )
    assert_error(response, 404, "not_found")
    assert counts() == before


def test_wrong_role_is_403_and_writes_nothing(world: World) -> None:
    before = counts()
    cashier = client_for(world.chain.cashier_a)
    response = cashier.post(
        "/api/groups",
        data={"store_id": world.chain.store_a.pk, "name": "收银员建群", "theme": "vip"},
        content_type="application/json",
    )
    assert_error(response, 403, "forbidden")
    supplier = client_for(world.chain.supplier)
    response = supplier.post(
        "/api/invitations",
        data={"kind": "group", "group_id": world.group_a.pk},
        content_type="application/json",
    )
    assert_error(response, 404)  # a supplier cannot even see the group
    assert counts() == before


def test_validation_errors_use_the_shape(world: World) -> None:
    client = client_for(world.chain.manager_a)
    before = counts()
    response = client.post(
        "/api/groups",
        data={"store_id": world.chain.store_a.pk, "name": "x", "theme": "nope", "capacity": 9999},
        content_type="application/json",
    )
    body = assert_error(response, 422, "invalid_input")
    assert {tuple(e["loc"])[-1] for e in body["details"]["errors"]} == {"theme", "capacity"}
    assert counts() == before


def test_oversized_payload_is_413(world: World) -> None:
    client = client_for(world.chain.manager_a)
    before = counts()
    big = json.dumps(
        {"store_id": world.chain.store_a.pk, "name": "大", "theme": "vip", "rules": "x" * 2_000_000}
    )
    assert_error(
        client.post("/api/groups", data=big, content_type="application/json"),
        413,
        "payload_too_large",
    )
    response = client.post(
        "/api/groups", data=big, content_type="application/json", HTTP_IDEMPOTENCY_KEY="big-1"
    )
    assert_error(response, 413, "payload_too_large")
    assert counts() == before


def test_non_utf8_and_invalid_json_are_400(world: World) -> None:
    client = client_for(world.chain.manager_a)
    before = counts()
    gbk = '{"store_id": 1, "name": "宝妈群", "theme": "vip"}'.encode("gbk")
    assert_error(
        client.post("/api/groups", data=gbk, content_type="application/json"),
        400,
        "invalid_encoding",
    )
    assert_error(
        client.post("/api/groups", data=b"{not json", content_type="application/json"),
        400,
        "invalid_json",
    )
    assert_error(
        client.post("/api/groups", data=b"[1, 2]", content_type="application/json"),
        400,
        "invalid_json",
    )
    assert counts() == before


def test_session_writes_need_csrf(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.chain.manager_a.user)
    before = counts()
    response = client.post(
        "/api/groups",
        data={"store_id": world.chain.store_a.pk, "name": "无CSRF", "theme": "vip"},
        content_type="application/json",
    )
    assert_error(response, 403, "csrf_failed")
    assert counts() == before


def test_revoked_token_is_refused(world: World) -> None:
    from shequn.org.actions import issue_api_token, revoke_api_token

    issued = issue_api_token(user=world.chain.manager_a.user, name="t")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert client.get("/api/groups").status_code == 200
    revoke_api_token(user=world.chain.manager_a.user, token=issued.token)
    assert_error(client.get("/api/groups"), 401, "not_authenticated")
    assert_error(Client(HTTP_AUTHORIZATION="Bearer sq_forged").get("/api/groups"), 401)
