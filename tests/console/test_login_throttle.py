"""Staff login throttling (django-axes, ``shequn/org/lockout.py``): repeated wrong passwords lock
the account, and many from one address lock the address whatever the usernames; a locked login
is refused with 429 and says so in Chinese, the right password too, until the cool-off has
passed; the attempt that locks writes one audit event."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client, RequestFactory

from shequn.core.models import AuditEvent
from shequn.org.lockout import lockout_response
from tests.conftest import PASSWORD, Chain

pytestmark = pytest.mark.django_db

LOCKED = "登录失败次数过多"


def attempt(client: Client, username: str, password: str) -> object:
    return client.post("/login/", {"username": username, "password": password, "next": "/"})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_forty_wrong_passwords_then_the_right_one_is_refused(chain: Chain) -> None:
    username = chain.manager_a.user.username
    client = Client()
    answers = [attempt(client, username, f"wrong-{n}") for n in range(40)]
    assert [a.status_code for a in answers[:4]] == [200] * 4  # "用户名或密码错误"
    assert {a.status_code for a in answers[4:]} == {429}  # the 5th failure locks
    right = attempt(client, username, PASSWORD)
    assert right.status_code == 429
    page = right.content.decode()
    assert LOCKED in page
    assert "15 分钟后再试" in page
    assert right["Retry-After"] == "900"
    assert not logged_in(client)
    # The account is locked, not just this browser: a fresh client elsewhere is refused too.
    elsewhere = Client(REMOTE_ADDR="10.9.8.7")
    assert attempt(elsewhere, username, PASSWORD).status_code == 429
    assert not logged_in(elsewhere)
    # Another account from another address is not affected.
    other = Client(REMOTE_ADDR="10.9.8.7")
    assert attempt(other, chain.manager_b.user.username, PASSWORD).status_code == 302
    assert logged_in(other)


def test_an_address_trying_many_usernames_is_locked(chain: Chain, settings: object) -> None:
    """Password spraying: one wrong password for each of many usernames. No account reaches its
    limit, the address reaches its own; then even a real account with the right password is
    refused from there, and logs in from anywhere else."""
    limit = settings.SHEQUN_LOGIN_IP_FAILURE_LIMIT  # type: ignore[attr-defined]
    assert limit > settings.SHEQUN_LOGIN_FAILURE_LIMIT  # type: ignore[attr-defined]
    sprayer = Client(REMOTE_ADDR="203.0.113.5")
    answers = [attempt(sprayer, f"guess{n}", "123456") for n in range(limit)]
    assert [a.status_code for a in answers[:-1]] == [200] * (limit - 1)
    assert answers[-1].status_code == 429
    real = chain.manager_a.user.username
    refused = attempt(sprayer, real, PASSWORD)
    assert refused.status_code == 429
    assert LOCKED in refused.content.decode()
    assert not logged_in(sprayer)
    fine = Client(REMOTE_ADDR="198.51.100.7")
    assert attempt(fine, real, PASSWORD).status_code == 302
    assert logged_in(fine)


def test_the_lock_ends_after_the_cool_off(chain: Chain) -> None:
    username = chain.manager_a.user.username
    client = Client()
    for n in range(5):
        attempt(client, username, f"wrong-{n}")
    assert attempt(client, username, PASSWORD).status_code == 429
    # 14 minutes later: still locked (refused attempts did not count, nor extend it).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert attempt(client, username, PASSWORD).status_code == 429
    # Past the 15 minutes since the last counted failure: the right password logs in ...
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=1, seconds=1))
    assert attempt(client, username, PASSWORD).status_code == 302
    assert logged_in(client)
    # ... and a wrong one afterwards starts a fresh count instead of locking again at once.
    again = Client()
    assert attempt(again, username, "wrong-again").status_code == 200


def test_a_successful_login_forgets_the_accounts_own_typos(chain: Chain) -> None:
    username = chain.manager_a.user.username
    client = Client()
    for n in range(4):
        assert attempt(client, username, f"typo-{n}").status_code == 200
    assert attempt(client, username, PASSWORD).status_code == 302
    client.post("/logout/")
    for n in range(4):  # four more typos: still below the limit, counted from zero
        assert attempt(Client(), username, f"typo-{n}").status_code == 200


def test_the_lockout_writes_one_audit_event(chain: Chain) -> None:
    username = chain.manager_a.user.username
    client = Client()
    for n in range(12):
        attempt(client, username, f"wrong-{n}")
    attempt(client, username, PASSWORD)
    events = list(AuditEvent.objects.filter(action="org.login_locked"))
    assert len(events) == 1  # the attempt that locked, not each one refused after it
    [event] = events
    assert event.actor is None
    assert (event.target_type, event.target_id) == ("org.staff", str(chain.manager_a.pk))
    assert event.scope_path == chain.store_a.path  # the store's managers see it in their log
    assert event.ip == "127.0.0.1"
    assert event.details["username"] == username
    assert event.details["account_failures"] == 5
    assert event.details["cooloff_minutes"] == 15


def test_an_api_login_locked_out_gets_the_apis_error_shape() -> None:
    """There is no password login under /api/ today (tokens are issued to a logged-in
    session); a future one gets the API's error shape, not the console's page."""
    request = RequestFactory().post("/api/auth/login")
    response = lockout_response(request)
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["code"] == "login_locked"
    assert LOCKED in body["message"]
