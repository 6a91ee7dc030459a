"""/api/docs and /api/openapi.json: public while SHEQUN_API_DOCS_PUBLIC is on (development, the
demo); with it off — the production settings' default — only staff see them (console session
or API token), anyone else gets the API's 404."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.test import Client

from shequn.org.actions import issue_api_token
from tests.conftest import Chain, client_for

pytestmark = pytest.mark.django_db

DOCS = ("/api/docs", "/api/openapi.json")


def test_public_by_default_outside_production(db: None) -> None:
    for path in DOCS:
        assert Client().get(path).status_code == 200, path


def test_production_settings_close_them() -> None:
    production = importlib.import_module("shequn.settings.production")
    assert production.SHEQUN_API_DOCS_PUBLIC is False


def test_closed_docs_are_a_404_for_anyone_but_staff(chain: Chain, settings: Any) -> None:
    settings.SHEQUN_API_DOCS_PUBLIC = False
    for path in DOCS:
        answer = Client().get(path)
        assert answer.status_code == 404, path
        assert answer.json() == {"code": "not_found", "message": "对象不存在"}
        assert "swagger" not in answer.content.decode().lower()
    staff = client_for(chain.cashier_a)
    for path in DOCS:
        assert staff.get(path).status_code == 200, path
    token = issue_api_token(user=chain.manager_a.user, name="codegen").secret
    schema = Client().get("/api/openapi.json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"].startswith("Shequn")
    wrong = Client().get("/api/openapi.json", HTTP_AUTHORIZATION="Bearer sq_not-a-token")
    assert wrong.status_code == 404
