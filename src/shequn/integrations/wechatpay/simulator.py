"""A local simulated WeChat Pay gateway (loopback, self-generated keys) for the demo and tests.

It speaks the same formats as the real one where Shequn touches it: it checks the merchant's
``Authorization`` signature and answers with platform-signed responses;

- JSAPI and H5 prepay (the same ``out_trade_no`` with the same content is the same prepay; with
  other content it is refused), order query and close;
- a cashier page behind ``h5_url`` where the "payer" confirms, after which the gateway sends a
  signed, encrypted TRANSACTION.SUCCESS to ``notify_url`` and sends the browser back to
  ``redirect_url``; ``pay()`` does the same from Python;
- refunds: the same ``out_refund_no`` is the same refund, reported to ``notify_url`` as
  REFUND.SUCCESS — or REFUND.ABNORMAL / REFUND.CLOSED when told to.

It is a stand-in for the network, never part of a production deployment.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from shequn.integrations.loopback import serve_wsgi

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
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)  # by out_trade_no
    notify_payments: bool = True  # False: a payment "loses" its notification (reconciliation)
    public_base: str = ""  # where payers' browsers reach the cashier; set by serve_in_thread
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
        if path.startswith("/sim/cashier"):  # the payer's browser: no merchant signature
            return self._cashier(environ, start_response, method, path, query, body)
        url = path + (f"?{query}" if query else "")
        if not self._authorized(environ.get("HTTP_AUTHORIZATION", ""), method, url, body):
            return self._respond(start_response, 401, {"code": "SIGN_ERROR", "message": "签名错误"})
        try:
            status, data = self._route(method, path, body)
        except (KeyError, TypeError, ValueError) as exc:
            status, data = 400, {"code": "PARAM_ERROR", "message": f"参数错误: {exc}"}
        return self._respond(start_response, status, data)

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return 200, self._refund(json.loads(body))
        if method == "POST" and path in ("/v3/pay/transactions/jsapi", "/v3/pay/transactions/h5"):
            return self._prepay(path.rsplit("/", 1)[1], json.loads(body))
        match = _TRADE_PATH.match(path)
        if match and method == "GET":
            return self._query(urllib.parse.unquote(match["no"]))
        if match and method == "POST" and match["close"]:
            return self._close(urllib.parse.unquote(match["no"]), json.loads(body))
        return 404, {"code": "NOT_FOUND", "message": "接口不存在"}

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
        body = b"" if status == 204 else body
        reasons = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized"}
        reasons.update({403: "Forbidden", 404: "Not Found"})
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
        self._send(
            notify_url,
            f"REFUND.{outcome}",
            {**refund, "mchid": self.mchid, "refund_status": outcome, "success_time": _now()},
            original_type="refund",
        )

    def _send(
        self, notify_url: str, event_type: str, resource: dict[str, Any], original_type: str
    ) -> bool:
        """POST one signed notification; True once the merchant answered 2xx."""
        signed = build_notification(
            event_type=event_type,
            resource=resource,
            platform_key=self.platform_key,
            platform_serial=self.platform_serial,
            apiv3_key=self.apiv3_key,
            original_type=original_type,
        )
        request = urllib.request.Request(  # noqa: S310 - the configured loopback notify_url
            notify_url,
            data=signed.body,
            headers={**signed.headers, "Content-Type": "application/json"},
        )
        for _ in range(5):  # WeChat retries too; a loopback test server may still be starting
            try:
                with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                    return True
            except OSError:
                time.sleep(0.2)
        return False

    # --- payments -----------------------------------------------------------------------------
    def _prepay(self, trade_type: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("mchid") != self.mchid:
            return 400, {"code": "MCH_NOT_EXISTS", "message": "商户号不存在"}
        total = request["amount"]["total"]
        number = str(request["out_trade_no"])
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            return 400, {"code": "PARAM_ERROR", "message": "amount.total 须为正整数(分)"}
        if not 6 <= len(number) <= 32:
            return 400, {"code": "PARAM_ERROR", "message": "out_trade_no 长度须为 6-32"}
        if trade_type == "jsapi" and not (request.get("payer") or {}).get("openid"):
            return 400, {"code": "PARAM_ERROR", "message": "缺少 payer.openid"}
        expires = dt.datetime.fromisoformat(request["time_expire"])
        content = {k: request.get(k) for k in ("appid", "description", "amount", "notify_url")}
        content["trade_type"] = trade_type  # one out_trade_no, one trade type (as WeChat)
        with self._lock:
            known = self.transactions.get(number)
            if known is not None:
                if known["trade_state"] == "SUCCESS":
                    return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
                if known["trade_state"] == "CLOSED":
                    return 400, {"code": "ORDERCLOSED", "message": "该订单已关闭"}
                if known["content"] != content:
                    return 400, {"code": "INVALID_REQUEST", "message": "201 商户订单号重复"}
                prepay_id = known["prepay_id"]
            else:
                prepay_id = f"wx{time.strftime('%d%H%M%S')}{secrets.token_hex(12)}"
                self.transactions[number] = {
                    "content": content,
                    "trade_type": trade_type.upper() if trade_type == "jsapi" else "MWEB",
                    "prepay_id": prepay_id,
                    "expires": expires,
                    "trade_state": "NOTPAY",
                    "payer": request.get("payer") or {"openid": ""},
                }
        if trade_type == "jsapi":
            return 200, {"prepay_id": prepay_id}
        package = secrets.token_hex(5)
        base = self.public_base.rstrip("/")
        return 200, {"h5_url": f"{base}/sim/cashier?prepay_id={prepay_id}&package={package}"}

    def _transaction_view(self, number: str, known: dict[str, Any]) -> dict[str, Any]:
        content = known["content"]
        view: dict[str, Any] = {
            "appid": content["appid"],
            "mchid": self.mchid,
            "out_trade_no": number,
            "trade_type": known["trade_type"],
            "trade_state": known["trade_state"],
            "trade_state_desc": _STATE_DESC[known["trade_state"]],
            "attach": "",
            "payer": known["payer"],
            "amount": {"total": content["amount"]["total"], "currency": "CNY"},
        }
        if known["trade_state"] == "SUCCESS":
            view.update(
                transaction_id=known["transaction_id"],
                bank_type="OTHERS",
                success_time=known["success_time"],
            )
            view["amount"].update(payer_total=content["amount"]["total"], payer_currency="CNY")
        return view

    def _query(self, number: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            known = self.transactions.get(number)
            if known is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            return 200, self._transaction_view(number, known)

    def _close(self, number: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("mchid") != self.mchid:
            return 400, {"code": "MCH_NOT_EXISTS", "message": "商户号不存在"}
        with self._lock:
            known = self.transactions.get(number)
            if known is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            if known["trade_state"] == "SUCCESS":
                return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
            known["trade_state"] = "CLOSED"
        return 204, {}

    def pay(self, out_trade_no: str, *, openid: str = "o-sim-payer") -> tuple[bool, str]:
        """The payer pays: (True, "") and a TRANSACTION.SUCCESS on its way, or (False, why)."""
        with self._lock:
            known = self.transactions.get(out_trade_no)
            if known is None:
                return False, "订单不存在"
            if known["trade_state"] == "SUCCESS":
                return True, ""
            if known["trade_state"] != "NOTPAY":
                return False, "订单已关闭"
            if dt.datetime.now(dt.UTC) >= known["expires"]:
                known["trade_state"] = "CLOSED"
                return False, "订单已过支付时限"
            known.update(
                trade_state="SUCCESS",
                transaction_id=f"42000{secrets.randbelow(10**23):023d}",
                success_time=_now(),
                payer={"openid": known["payer"].get("openid") or openid},
            )
            resource = self._transaction_view(out_trade_no, known)
            notify_url = known["content"]["notify_url"]
        if self.notify_payments:
            threading.Thread(
                target=self._send,
                args=(notify_url, "TRANSACTION.SUCCESS", resource, "transaction"),
                daemon=True,
            ).start()
        return True, ""

    def _by_prepay_id(self, prepay_id: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            for number, known in self.transactions.items():
                if known["prepay_id"] == prepay_id:
                    return number, known
        return None

    def _cashier(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        path: str,
        query: str,
        body: bytes,
    ) -> list[bytes]:
        """The page the payer's phone shows: amount, merchant, 确认支付 / 取消."""
        params = {
            k: v[0]
            for k, v in urllib.parse.parse_qs(body.decode() if method == "POST" else query).items()
        }
        found = self._by_prepay_id(params.get("prepay_id", ""))
        back = params.get("redirect_url", "")
        if found is None:
            return _page(start_response, "400 Bad Request", "<p>支付链接无效或已过期</p>")
        number, known = found
        if method == "POST":
            if params.get("action") == "pay":
                ok, why = self.pay(number)
                if not ok:
                    return _page(start_response, "400 Bad Request", f"<p>{html.escape(why)}</p>")
            if back.startswith(("http://", "https://")):
                start_response("302 Found", [("Location", back)])
                return [b""]
            return _page(start_response, "200 OK", "<p id='sim-paid'>支付完成</p>")
        content = known["content"]
        fields = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
            for k, v in (("prepay_id", known["prepay_id"]), ("redirect_url", back))
        )
        amount = f"¥{content['amount']['total'] / 100:.2f}"
        return _page(
            start_response,
            "200 OK",
            f"""<p class="merchant">模拟微信支付 · 商户号 {self.mchid}</p>
<p>{html.escape(str(content["description"]))}</p>
<p class="amount" id="sim-amount">{amount}</p>
<form method="post" action="/sim/cashier">{fields}
<button name="action" value="pay" id="sim-pay">确认支付</button>
<button name="action" value="cancel" class="ghost" id="sim-cancel">取消</button></form>""",
        )


_TRADE_PATH = re.compile(r"^/v3/pay/transactions/out-trade-no/(?P<no>[^/]+)(?P<close>/close)?$")
_STATE_DESC = {"NOTPAY": "未支付", "SUCCESS": "支付成功", "CLOSED": "已关闭"}


def _now() -> str:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).isoformat(timespec="seconds")


def _page(start_response: StartResponse, status: str, inner: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/html; charset=utf-8")])
    return [
        (
            '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            "<title>微信支付(模拟)</title><style>body{font-family:sans-serif;max-width:420px;"
            "margin:40px auto;text-align:center}.amount{font-size:40px;font-weight:600}"
            "button{display:block;width:100%;padding:12px;margin:10px 0;font-size:17px;"
            "border:0;border-radius:6px;background:#07c160;color:#fff}button.ghost{background:#eee;"
            "color:#333}.merchant{color:#888}</style></head><body>" + inner + "</body></html>"
        ).encode()
    ]


def serve_in_thread(
    gateway: SimulatedGateway, host: str = "127.0.0.1", port: int = 0
) -> WSGIServer:
    """Start the gateway on loopback in a daemon thread; ``server.server_port`` tells the port."""
    server = serve_wsgi(gateway, "wechatpay-simulator", host, port)
    if not gateway.public_base:  # read by a request only after a prepay has named it
        gateway.public_base = f"http://{host}:{server.server_port}"
    return server


def start_local_gateway(
    key_dir: Path, *, mchid: str, appid: str, host: str = "127.0.0.1", port: int = 0
) -> tuple[WSGIServer, dict[str, Any]]:
    """The demo's payment gateway: keys made once and kept in ``key_dir`` (so a restarted demo
    still verifies what it signed before), served on loopback. Returns the server and the
    ``SHEQUN_WECHATPAY`` settings that point the merchant side at it."""
    from .crypto import generate_private_key, load_private_key, private_pem, public_pem

    key_dir.mkdir(parents=True, exist_ok=True)

    def key(name: str) -> PrivateKey:
        path = key_dir / name
        if not path.exists():
            path.write_bytes(private_pem(generate_private_key()))
            path.chmod(0o600)
        return load_private_key(path.read_bytes())

    merchant, platform = key("merchant.pem"), key("platform.pem")
    apiv3_path = key_dir / "apiv3.key"
    if not apiv3_path.exists():
        apiv3_path.write_text(secrets.token_hex(16))
        apiv3_path.chmod(0o600)
    apiv3 = apiv3_path.read_text().strip()
    gateway = SimulatedGateway(
        mchid=mchid,
        merchant_public_key=merchant.public_key(),
        merchant_serial="SIM-MERCHANT-1",
        platform_key=platform,
        platform_serial="PUB_KEY_ID_SIMULATED0001",
        apiv3_key=apiv3.encode(),
    )
    server = serve_in_thread(gateway, host=host, port=port)
    return server, {
        "MCHID": mchid,
        "APPID": appid,
        "APIV3_KEY": apiv3,
        "PLATFORM_PUBLIC_KEYS": {
            gateway.platform_serial: public_pem(platform.public_key()).decode()
        },
        "API_BASE": gateway.public_base,
        "MERCHANT_KEY": private_pem(merchant).decode(),
        "MERCHANT_SERIAL": gateway.merchant_serial,
    }
