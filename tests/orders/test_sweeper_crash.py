"""`kill -9` the sweeper mid-run, start it again: every due order is closed and its stock
released exactly once. The sweeper is the real `shequn sweep` command in a subprocess, working
on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection

from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.core.models import AuditEvent
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order, OrderStatus
from tests.conftest import build_chain, due_orders, make_sku, phone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]
ORDERS = 120


def database_url() -> str:
    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    host = cfg.get("HOST") or "127.0.0.1"
    return f"postgresql://{cfg.get('USER') or 'postgres'}@{host}:{cfg.get('PORT') or 5432}/{cfg['NAME']}"


def sweeper(*extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`shequn sweep` in its own process on the test database (``env`` adds variables)."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}},
        **(env or {}),
        "DATABASE_URL": database_url(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "shequn.cli", "sweep", "--batch", "10", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_sweeper_once(done: Callable[[], int], at_least: int) -> int:
    """Start `shequn sweep` going slowly, SIGKILL it once ``done()`` reaches ``at_least``, and
    return ``done()`` after the kill (what the killed run committed)."""
    process = sweeper("--pause-ms", "40")
    deadline = time.monotonic() + 60
    while done() < at_least and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    return done()


def closed() -> int:
    return Order.objects.filter(status=OrderStatus.CLOSED).count()


def test_kill_9_mid_sweep_then_restart_releases_exactly_once() -> None:
    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: 1000})
    due_orders(chain, sku, count=ORDERS, quantity=3)

    killed_at = kill_sweeper_once(closed, at_least=10)
    assert 10 <= killed_at < ORDERS, f"the kill must land mid-run (closed {killed_at})"

    restarted = sweeper()
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err
    assert f"orders.payment_timeout: {ORDERS - killed_at}" in out

    item = StockItem.objects.get(store=chain.store_a, sku=sku)
    assert (item.quantity, item.quantity_allocated) == (1000, 0)
    assert closed() == ORDERS
    assert AuditEvent.objects.filter(action="orders.closed").count() == ORDERS


def test_serve_timer_thread_closes_due_orders() -> None:
    from shequn.sweeper import start_sweeper_thread

    chain = build_chain()
    sku = make_sku(chain, stock={chain.store_a: 5})
    member = Member.objects.create(chain=chain.hq, phone=phone(1), home_store=chain.store_a)
    order = place_order(
        member=member, store=chain.store_a, lines=[LineRequest(sku.pk, 5)], idempotency_key="k"
    ).order
    Order.objects.filter(pk=order.pk).update(payment_deadline=timeutil.now() - timedelta(seconds=1))
    stop = start_sweeper_thread(interval_s=0.1)
    try:
        deadline = time.monotonic() + 20
        while closed() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert closed() == 1
    assert StockItem.objects.get(store=chain.store_a, sku=sku).quantity_allocated == 0
