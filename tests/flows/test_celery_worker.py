"""A real Celery worker on Redis runs the deadline sweep; running it twice acts once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery import Celery

from shequn.catalog.models import StockItem
from shequn.celery import app
from shequn.core import timeutil
from shequn.flows.tasks import run_due_sweeps_task
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order, OrderStatus
from tests.conftest import build_chain, due_orders, make_sku, phone
from tests.orders.test_sweeper_crash import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]
BROKER = "redis://127.0.0.1:6379/14"


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def worker() -> Iterator[Celery]:
    """A real worker process on the test broker, and a client app that sends tasks to it by
    name (the project's own app stays as configured: eager, no broker)."""
    if not redis_answers():
        if os.environ.get("SHEQUN_REQUIRE_POSTGRES") == "1":  # CI: services are required
            pytest.fail("Redis does not answer on 127.0.0.1:6379 (scripts/ensure-redis.sh)")
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    client = Celery("shequn-test-client", broker=BROKER, backend=BROKER, set_as_current=False)
    client.control.purge()
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env.update(DATABASE_URL=database_url(), CELERY_BROKER_URL=BROKER)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shequn", "worker", "--pool=solo", "-l", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_worker_runs_the_sweep_and_a_second_run_finds_nothing(worker: Celery) -> None:
    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: 100})
    due_orders(chain, sku, count=12, quantity=2)

    first = worker.send_task(run_due_sweeps_task.name)
    second = worker.send_task(run_due_sweeps_task.name)  # a duplicate delivery (acks_late)
    idle = {
        "orders.payment_timeout": 0,
        "promotions.group_buy_teams": 0,
        "demand.proposals": 0,
        "promotions.weekly_calendar": 0,
        "referrals.commission_release": 0,
        "demand.classify_messages": 0,
        "groups.wecom_resync": 0,
        "core.throttle_counters": 0,
    }
    assert first.get(timeout=120) == {
        **idle,
        "orders.payment_timeout": 12,
        "orders.refund_submission": 0,
    }
    assert second.get(timeout=120) == {**idle, "orders.refund_submission": 0}
    assert Order.objects.filter(status=OrderStatus.CLOSED).count() == 12
    assert StockItem.objects.get(store=chain.store_a, sku=sku).quantity_allocated == 0


@pytest.mark.django_db(transaction=False)
def test_embedded_default_runs_tasks_in_process(chain) -> None:  # type: ignore[no-untyped-def]
    """No broker configured (make demo): the same task runs eagerly, inside the caller."""
    assert app.conf.task_always_eager
    sku = make_sku(chain, stock={chain.store_a: 5})
    member = Member.objects.create(chain=chain.hq, phone=phone(1), home_store=chain.store_a)
    place_order(
        member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 5)], idempotency_key="k"
    )
    Order.objects.update(payment_deadline=timeutil.now() - timedelta(minutes=1))
    assert run_due_sweeps_task.delay().get() == {
        "orders.payment_timeout": 1,
        "promotions.group_buy_teams": 0,
        "demand.proposals": 0,
        "promotions.weekly_calendar": 0,
        "referrals.commission_release": 0,
        "orders.refund_submission": 0,
        "demand.classify_messages": 0,
        "groups.wecom_resync": 0,
        "core.throttle_counters": 0,
    }
