"""A local simulated WeChat Pay gateway (loopback, self-generated keys) for the demo and tests.

It speaks the same formats as the real one where Shequn touches it: it checks the merchant's
``Authorization`` signature, answers with platform-signed responses, treats the same
``out_refund_no`` as the same refund, and reports the result to ``notify_url`` as a signed,
encrypted REFUND.SUCCESS notification — or REFUND.ABNORMAL / REFUND.CLOSED when told to.
It is a stand-in for the network, never part of a production deployment.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .crypto import PrivateKey, PublicKey, rsa_sign, rsa_verify
from .notifications import SIGNATURE_TYPE, signed_message
from .signing import build_notification

StartResponse = Callable[[str, list[tuple[str, str]]], object]
_AUTH = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class SimulatedGateway:
    mchid: str
    merchant_public_key: PublicKey
    merchant_serial: str
    platform_key: PrivateKey
    platform_serial: str
    apiv3_key: bytes
    refund_outcome: str = "SUCCESS"  # what the next refunds end in: SUCCESS, ABNORMAL or CLOSED
    notify_delay_s: float = 0.05
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests_seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self._lock:
            self.requests_seen += 1
        url = path + (f"?{query}" if query else "")
        if not self._authorized(environ.get("HTTP_AUTHORIZATION", ""), method, url, body):
            return self._respond(start_response, 401, {"code": "SIGN_ERROR", "message": "签名错误"})
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._respond(start_response, 200, self._refund(json.loads(body)))
        return self._respond(start_response, 404, {"code": "NOT_FOUND", "message": "接口不存在"})

    def _authorized(self, header: str, method: str, url: str, body: bytes) -> bool:
        if not header.startswith(SIGNATURE_TYPE + " "):
            return False
        fields = dict(_AUTH.findall(header))
        if fields.get("mchid") != self.mchid or fields.get("serial_no") != self.merchant_serial:
            return False
        if abs(time.time() - int(fields.get("timestamp", "0"))) >= 300:
            return False
        message = (
            f"{method}\n{url}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode()
            + body
            + b"\n"
        )
        return rsa_verify(self.merchant_public_key, message, fields.get("signature", ""))

    def _respond(
        self, start_response: StartResponse, status: int, data: dict[str, Any]
    ) -> list[bytes]:
        body = json.dumps(data, ensure_ascii=False).encode()
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        reasons = {200: "OK", 401: "Unauthorized", 404: "Not Found"}
        start_response(
            f"{status} {reasons.get(status, 'Error')}",
            [
                ("Content-Type", "application/json"),
                ("Wechatpay-Timestamp", timestamp),
                ("Wechatpay-Nonce", nonce),
                ("Wechatpay-Serial", self.platform_serial),
                (
                    "Wechatpay-Signature",
                    rsa_sign(self.platform_key, signed_message(timestamp, nonce, body)),
                ),
                ("Wechatpay-Signature-Type", SIGNATURE_TYPE),
            ],
        )
        return [body]

    # --- refunds ------------------------------------------------------------------------------
    def _refund(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            known = self.refunds.get(request["out_refund_no"])
            if known is not None:  # the same out_refund_no is the same refund (gateway dedupes)
                return known
            refund = {
                "refund_id": f"50{secrets.randbelow(10**26):026d}",
                "out_refund_no": request["out_refund_no"],
                "out_trade_no": request["out_trade_no"],
                "transaction_id": f"4200{request['out_trade_no']}",
                "channel": "ORIGINAL",
                "status": "PROCESSING",
                "amount": {
                    **request["amount"],
                    "payer_total": request["amount"]["total"],
                    "payer_refund": request["amount"]["refund"],
                },
            }
            self.refunds[request["out_refund_no"]] = refund
        outcome = self.refund_outcome
        threading.Timer(
            self.notify_delay_s, self._notify_refund, args=(request["notify_url"], refund, outcome)
        ).start()
        return refund

    def _notify_refund(self, notify_url: str, refund: dict[str, Any], outcome: str) -> None:
        signed = build_notification(
            event_type=f"REFUND.{outcome}",
            resource={
                **refund,
                "mchid": self.mchid,
                "refund_status": outcome,
                "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            },
            platform_key=self.platform_key,
            platform_serial=self.platform_serial,
            apiv3_key=self.apiv3_key,
            original_type="refund",
        )
        request = urllib.request.Request(  # noqa: S310 - the configured loopback notify_url
            notify_url,
            data=signed.body,
            headers={**signed.headers, "Content-Type": "application/json"},
        )
        for _ in range(5):  # WeChat retries too; a loopback test server may still be starting
            try:
                with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.2)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return None


def serve_in_thread(
    gateway: SimulatedGateway, host: str = "127.0.0.1", port: int = 0
) -> WSGIServer:
    """Start the gateway on loopback in a daemon thread; ``server.server_port`` tells the port."""
    server = make_server(host, port, gateway, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="wechatpay-simulator", daemon=True).start()
    return server
