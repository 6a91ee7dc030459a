"""Texts are limited by guarded counters: parallel requests cannot overshoot a limit, and the
per-address and deployment-wide daily caps hold beside the per-phone ones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client, override_settings

from shequn.core.errors import Throttled
from shequn.core.models import ThrottleCounter
from shequn.groups import actions as group_actions
from shequn.members.actions import send_login_code
from shequn.members.models import LoginCode
from tests.conftest import Chain, build_chain, make_group, staff_code

PHONE = "+8613766660000"


def codes(phone: str = PHONE) -> int:
    return LoginCode.objects.filter(phone=phone).count()


def age_counters(by: timedelta) -> None:
    """As if the counters' last use and windows were ``by`` earlier."""
    for counter in ThrottleCounter.objects.all():
        ThrottleCounter.objects.filter(pk=counter.pk).update(
            window_start=counter.window_start - by,
            last_at=(counter.last_at - by) if counter.last_at else None,
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_parallel_sends_for_one_phone_store_one_code() -> None:
    chain = build_chain()

    def send(_: int) -> str:
        try:
            send_login_code(store=chain.store_a, phone=PHONE, ip="10.0.0.1")
            return "sent"
        except Throttled as exc:
            return exc.code
        finally:
            connections.close_all()

    workers = 20 if connection.vendor == "postgresql" else 10
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(send, range(20)))
    assert results.count("sent") == 1, results
    assert set(results) == {"sent", "code_too_soon"}
    assert codes() == 1


def test_one_a_minute_and_ten_a_day_per_phone(chain: Chain) -> None:
    send_login_code(store=chain.store_a, phone=PHONE)
    with pytest.raises(Throttled) as soon:
        send_login_code(store=chain.store_a, phone=PHONE)
    assert soon.value.code == "code_too_soon"
    for _ in range(9):
        age_counters(timedelta(seconds=61))
        send_login_code(store=chain.store_a, phone=PHONE)
    age_counters(timedelta(seconds=61))
    with pytest.raises(Throttled) as daily:
        send_login_code(store=chain.store_a, phone=PHONE)
    assert daily.value.code == "code_limit"
    assert codes() == 10
    age_counters(timedelta(days=1))  # a new day's window
    send_login_code(store=chain.store_a, phone=PHONE)
    assert codes() == 11


@override_settings(SHEQUN_SMS_IP_DAILY=3)
def test_daily_cap_per_address_gives_the_phones_their_minute_back(chain: Chain) -> None:
    for n in range(3):
        send_login_code(store=chain.store_a, phone=f"+861376666000{n + 1}", ip="10.0.0.9")
    with pytest.raises(Throttled) as capped:
        send_login_code(store=chain.store_a, phone="+8613766660009", ip="10.0.0.9")
    assert capped.value.code == "code_limit_ip"
    assert codes("+8613766660009") == 0
    # The refused phone's own counter was rolled back with the refusal: from another address
    # it gets its code at once.
    send_login_code(store=chain.store_a, phone="+8613766660009", ip="10.0.0.10")
    assert codes("+8613766660009") == 1


@override_settings(SHEQUN_SMS_GLOBAL_DAILY=2)
def test_deployment_wide_daily_cap(chain: Chain) -> None:
    send_login_code(store=chain.store_a, phone="+8613766660011", ip="10.0.1.1")
    send_login_code(store=chain.store_b, phone="+8613766660012", ip="10.0.1.2")
    with pytest.raises(Throttled) as capped:
        send_login_code(store=chain.store_a, phone="+8613766660013", ip="10.0.1.3")
    assert capped.value.code == "code_limit_global"
    assert LoginCode.objects.count() == 2


def test_throttled_is_429_with_the_error_shape(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = group_actions.invitation_code(staff_code(chain.cashier_a, group))
    client = Client()
    body = {"code": code, "phone": PHONE}
    first = client.post("/api/join/sms", data=body, content_type="application/json")
    assert first.status_code == 202
    again = client.post("/api/join/sms", data=body, content_type="application/json")
    assert again.status_code == 429
    assert again.json()["code"] == "code_too_soon"
