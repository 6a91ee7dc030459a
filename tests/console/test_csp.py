"""Content-Security-Policy (django-csp): every page carries it — console, member (/m/…) and the
API's docs — with scripts from our own static files only, and no template has inline script
or inline event handlers that the policy would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

import shequn
from tests.conftest import Chain, client_for, make_group

pytestmark = pytest.mark.django_db


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_strict(response: object) -> None:
    header = response["Content-Security-Policy"]  # type: ignore[index]
    policy = directives(header)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["style-src-elem"] == ["'self'"]  # <style> elements: only ours
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_console_pages_carry_the_policy(chain: Chain) -> None:
    anonymous = Client().get("/login/")
    assert anonymous.status_code == 200
    assert_strict(anonymous)
    home = client_for(chain.manager_a).get("/")
    assert home.status_code == 200
    assert_strict(home)


def test_member_pages_carry_the_policy(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    client = Client()
    page = client.get(f"/m/g/{group.pk}/")
    assert page.status_code == 200
    assert_strict(page)
    assert_strict(client.get("/m/login/"))


def test_api_docs_carry_the_policy(db: None) -> None:
    docs = Client().get("/api/docs")
    assert docs.status_code == 200
    assert_strict(docs)


def test_no_template_has_inline_script_or_handlers() -> None:
    templates = sorted(Path(shequn.__file__).parent.glob("*/templates/**/*.html"))
    assert templates
    inline = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+\s*=", re.IGNORECASE)
    found = [
        f"{path.name}: {match.group(0)}"
        for path in templates
        for match in inline.finditer(path.read_text(encoding="utf-8"))
        if "application/json" not in match.group(0)  # data, not code (json_script)
    ]
    assert found == []
