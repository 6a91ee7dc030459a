"""`kill -9` after a notification is verified and written but before the commit: the platform's
retry is then processed exactly once. A real `shequn serve` process on loopback takes the
notification over HTTP; the fault point kills it like a power cut."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shequn.core.models import AuditEvent
from shequn.integrations.wechatpay.crypto import public_pem
from shequn.orders.models import Order, OrderStatus, Payment, PaymentNotification
from tests.conftest import FakeWechatPay, build_chain
from tests.orders.test_payment_notifications import new_order
from tests.orders.test_sweeper_crash import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(
    port: int, wechatpay: FakeWechatPay, pem: Path, fault: str | None
) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "SHEQUN_FAULT"}
    }
    env.update(
        DATABASE_URL=database_url(),
        WECHATPAY_MCHID=wechatpay.mchid,
        WECHATPAY_APPID=wechatpay.appid,
        WECHATPAY_APIV3_KEY=wechatpay.apiv3_key.decode(),
        WECHATPAY_PLATFORM_KEYS=json.dumps({wechatpay.serial: str(pem)}),
    )
    if fault:
        env["SHEQUN_FAULT"] = fault
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "shequn.cli", "serve", "--dev"),
            *("--port", str(port), "--sweep-interval", "0"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("shequn serve did not start")


def deliver(port: int, signed) -> int:  # type: ignore[no-untyped-def]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/wechatpay/notify",
        data=signed.body,
        headers={**signed.headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - loopback only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_kill_9_before_commit_then_retry_is_processed_once(
    wechatpay: FakeWechatPay, tmp_path: Path
) -> None:
    chain = build_chain()
    order = new_order(chain)
    pem = tmp_path / "platform.pem"
    pem.write_bytes(public_pem(wechatpay.platform_key.public_key()))
    signed = wechatpay.notification(order)
    port = free_port()

    doomed = serve(port, wechatpay, pem, fault="payments.before_commit")
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        deliver(port, signed)  # the server dies mid-request: WeChat sees no answer and retries
    assert doomed.wait(timeout=10) == -signal.SIGKILL
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT  # nothing of the crashed attempt committed
    assert not PaymentNotification.objects.exists()

    healthy = serve(port, wechatpay, pem, fault=None)
    try:
        assert deliver(port, signed) == 204  # the retry
        assert deliver(port, signed) == 204  # and a duplicate of it
    finally:
        healthy.terminate()
        healthy.wait(timeout=10)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Payment.objects.filter(order=order).count() == 1
    assert AuditEvent.objects.filter(action="orders.paid").count() == 1
    assert list(Order.objects.filter(pk=order.pk).values_list("pickup_code", flat=True))[0]
