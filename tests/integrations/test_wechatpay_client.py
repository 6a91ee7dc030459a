"""Outbound calls against the local simulated gateway over loopback: both directions signed."""

from __future__ import annotations

import queue
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shequn.integrations.loopback import serve_wsgi
from shequn.integrations.wechatpay.client import GatewayError, PrepayRequest, WechatPayClient
from shequn.integrations.wechatpay.crypto import generate_private_key
from shequn.integrations.wechatpay.notifications import verify_notification
from shequn.integrations.wechatpay.simulator import SimulatedGateway, serve_in_thread

MERCHANT_KEY = generate_private_key()
PLATFORM_KEY = generate_private_key()
APIV3 = secrets.token_hex(16).encode()


@pytest.fixture
def gateway() -> Iterator[tuple[SimulatedGateway, str]]:
    sim = SimulatedGateway(
        mchid="1900000001",
        merchant_public_key=MERCHANT_KEY.public_key(),
        merchant_serial="MERCHANT-SERIAL-1",
        platform_key=PLATFORM_KEY,
        platform_serial="PUB_KEY_ID_SIM",
        apiv3_key=APIV3,
    )
    server = serve_in_thread(sim)
    yield sim, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    """A loopback notify_url that records what the gateway sends."""
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {
            k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        received.put((headers, body))
        start_response("204 No Content", [])
        return [b""]

    server = serve_wsgi(app, "test-notify-receiver")
    yield f"http://127.0.0.1:{server.server_port}/notify", received
    server.shutdown()


def client(base_url: str, *, key=MERCHANT_KEY, platform=PLATFORM_KEY) -> WechatPayClient:  # type: ignore[no-untyped-def]
    return WechatPayClient(
        base_url=base_url,
        mchid="1900000001",
        merchant_key=key,
        merchant_serial="MERCHANT-SERIAL-1",
        platform_keys={"PUB_KEY_ID_SIM": platform.public_key()},
    )


def refund(c: WechatPayClient, notify_url: str, out_refund_no: str = "R1") -> dict[str, Any]:
    return c.create_refund(
        out_trade_no="26112400000000000001",
        out_refund_no=out_refund_no,
        refund_fen=3990,
        total_fen=7980,
        reason="一盒破损",
        notify_url=notify_url,
    )


def test_refund_round_trip_with_signed_notification(gateway, receiver) -> None:  # type: ignore[no-untyped-def]
    _, base = gateway
    notify_url, received = receiver
    first = refund(client(base), notify_url)
    again = refund(client(base), notify_url)  # the same out_refund_no is the same refund
    assert first["status"] == "PROCESSING"
    assert again["refund_id"] == first["refund_id"]
    headers, body = received.get(timeout=10)
    note = verify_notification(
        headers,
        body,
        platform_keys={"PUB_KEY_ID_SIM": PLATFORM_KEY.public_key()},
        apiv3_key=APIV3,
        now=time.time(),
    )
    assert note.event_type == "REFUND.SUCCESS"
    assert note.resource["out_refund_no"] == "R1"
    assert note.resource["amount"]["refund"] == 3990


def test_gateway_refuses_a_badly_signed_request(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, base = gateway
    with pytest.raises(GatewayError) as info:
        refund(client(base, key=generate_private_key()), "http://127.0.0.1:9/notify")
    assert (info.value.code, info.value.status) == ("SIGN_ERROR", 401)
    assert sim.refunds == {}


def test_client_refuses_a_response_it_cannot_verify(gateway) -> None:  # type: ignore[no-untyped-def]
    _, base = gateway
    with pytest.raises(GatewayError) as info:
        refund(client(base, platform=generate_private_key()), "http://127.0.0.1:9/notify")
    assert info.value.code == "bad_response_signature"


def test_unreachable_gateway_is_a_gateway_error() -> None:
    with pytest.raises(GatewayError) as info:
        refund(client("http://127.0.0.1:9"), "http://127.0.0.1:9/notify")
    assert info.value.code == "unreachable"


def h5(c: WechatPayClient, total: int = 7980, number: str = "26112400000000000002") -> str:
    order = PrepayRequest(
        appid="wxd678efh567hg6787",
        out_trade_no=number,
        description="邻里优选 艾草贴×2",
        total_fen=total,
        notify_url="http://127.0.0.1:9/notify",
        time_expire="2099-01-01T00:00:00+08:00",
    )
    return c.create_h5_prepay(order, payer_client_ip="127.0.0.1")


def test_prepay_query_and_close_follow_the_published_contract(gateway) -> None:  # type: ignore[no-untyped-def]
    sim, base = gateway
    c = client(base)
    with pytest.raises(GatewayError) as missing:
        c.query_order("26112400000000000002")
    assert (missing.value.code, missing.value.status) == ("ORDER_NOT_EXIST", 404)
    url = h5(c)
    assert h5(c).split("&package=")[0] == url.split("&package=")[0]  # the same prepay_id
    with pytest.raises(GatewayError) as changed:  # same out_trade_no, other content
        h5(c, total=1)
    assert changed.value.code == "INVALID_REQUEST"
    state = c.query_order("26112400000000000002")
    assert (state["trade_state"], state["amount"]["total"]) == ("NOTPAY", 7980)
    c.close_order("26112400000000000002")
    assert c.query_order("26112400000000000002")["trade_state"] == "CLOSED"
    with pytest.raises(GatewayError) as closed:
        h5(c)
    assert closed.value.code == "ORDERCLOSED"
    h5(c, number="26112400000000000003")
    sim.notify_payments = False
    assert sim.pay("26112400000000000003") == (True, "")
    paid = c.query_order("26112400000000000003")
    assert paid["trade_state"] == "SUCCESS"
    assert paid["transaction_id"].startswith("42000")
    with pytest.raises(GatewayError) as already:
        c.close_order("26112400000000000003")
    assert already.value.code == "ORDERPAID"


def test_prepay_refuses_bad_amounts(gateway) -> None:  # type: ignore[no-untyped-def]
    _, base = gateway
    for total in (0, -1):
        with pytest.raises(GatewayError) as info:
            h5(client(base), total=total, number=f"2611240000000000009{-total}")
        assert info.value.code == "PARAM_ERROR"
