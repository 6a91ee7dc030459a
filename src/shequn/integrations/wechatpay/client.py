"""Outbound WeChat Pay v3 calls: requests signed with the merchant key, responses verified with
the platform key (a response that does not verify is refused, like a forged notification)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .crypto import PrivateKey, PublicKey, rsa_sign
from .notifications import NotificationRejected, verify_signature
from .signing import authorization_header


class GatewayError(Exception):
    """The gateway refused the call (4xx with its code) or could not be reached."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class PrepayRequest:
    """One order as the gateway should charge it; the same out_trade_no must always come with
    the same content (the gateway refuses a changed one)."""

    appid: str
    out_trade_no: str
    description: str
    total_fen: int
    notify_url: str
    time_expire: str


@dataclass(frozen=True)
class WechatPayClient:
    base_url: str  # https://api.mch.weixin.qq.com, or the local simulated gateway
    mchid: str
    merchant_key: PrivateKey
    merchant_serial: str
    platform_keys: Mapping[str, PublicKey]
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = (
            "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        )
        headers = {
            "Authorization": authorization_header(
                mchid=self.mchid,
                serial_no=self.merchant_serial,
                key=self.merchant_key,
                method=method,
                url_path=path,
                body=payload,
            ),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "shequn-wechatpay/1",
        }
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __post_init__
            self.base_url.rstrip("/") + path,
            data=payload.encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                raw, status, response_headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as exc:
            raw, status, response_headers = exc.read(), exc.code, exc.headers
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise GatewayError("unreachable", str(exc)) from None
        try:
            verify_signature(
                dict(response_headers.items()),
                raw,
                platform_keys=self.platform_keys,
                now=time.time(),
            )
        except NotificationRejected as exc:
            raise GatewayError("bad_response_signature", exc.message, status) from None
        data: dict[str, Any] = json.loads(raw) if raw else {}
        if status >= 400:
            raise GatewayError(str(data.get("code", "FAIL")), str(data.get("message", "")), status)
        return data

    def create_refund(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
        notify_url: str,
    ) -> dict[str, Any]:
        """申请退款 (POST /v3/refund/domestic/refunds); the same out_refund_no is the same refund."""
        return self.request(
            "POST",
            "/v3/refund/domestic/refunds",
            {
                "out_trade_no": out_trade_no,
                "out_refund_no": out_refund_no,
                "reason": reason[:80],
                "notify_url": notify_url,
                "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            },
        )

    # --- payments -------------------------------------------------------------------------
    def _prepay(self, kind: str, order: PrepayRequest, extra: dict[str, Any]) -> dict[str, Any]:
        body = {
            "appid": order.appid,
            "mchid": self.mchid,
            "description": order.description[:127],
            "out_trade_no": order.out_trade_no,
            "time_expire": order.time_expire,  # RFC 3339 with offset: no payment after it
            "notify_url": order.notify_url,
            "amount": {"total": order.total_fen, "currency": "CNY"},
            **extra,
        }
        return self.request("POST", f"/v3/pay/transactions/{kind}", body)

    def create_jsapi_prepay(self, order: PrepayRequest, *, payer_openid: str) -> str:
        """JSAPI下单 (POST /v3/pay/transactions/jsapi) → ``prepay_id`` for WeixinJSBridge."""
        data = self._prepay("jsapi", order, {"payer": {"openid": payer_openid}})
        return str(data["prepay_id"])

    def create_h5_prepay(self, order: PrepayRequest, *, payer_client_ip: str) -> str:
        """H5下单 (POST /v3/pay/transactions/h5) → ``h5_url``: the WeChat cashier for a phone
        browser outside WeChat. Append ``&redirect_url=`` (see ``h5_pay_url``)."""
        scene = {"payer_client_ip": payer_client_ip, "h5_info": {"type": "Wap"}}
        return str(self._prepay("h5", order, {"scene_info": scene})["h5_url"])

    def query_order(self, out_trade_no: str) -> dict[str, Any]:
        """查询订单 (GET …/out-trade-no/{no}?mchid=): the transaction, ``trade_state`` included.
        ``GatewayError("ORDER_NOT_EXIST")`` when the gateway never saw the order."""
        number = urllib.parse.quote(out_trade_no, safe="")
        return self.request("GET", f"/v3/pay/transactions/out-trade-no/{number}?mchid={self.mchid}")

    def close_order(self, out_trade_no: str) -> None:
        """关闭订单: after this the payer can no longer pay it (204 No Content)."""
        number = urllib.parse.quote(out_trade_no, safe="")
        self.request(
            "POST", f"/v3/pay/transactions/out-trade-no/{number}/close", {"mchid": self.mchid}
        )

    def jsapi_pay_params(self, *, appid: str, prepay_id: str) -> dict[str, str]:
        """What the page passes to ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)``:
        paySign = RSA-SHA256 over ``appId\ntimeStamp\nnonceStr\npackage\n``."""
        timestamp, nonce, package = (
            str(int(time.time())),
            secrets.token_hex(16),
            f"prepay_id={prepay_id}",
        )
        message = f"{appid}\n{timestamp}\n{nonce}\n{package}\n".encode()
        return {
            "appId": appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": rsa_sign(self.merchant_key, message),
        }


def h5_pay_url(h5_url: str, redirect_url: str) -> str:
    """The cashier URL with where to come back to (WeChat's ``redirect_url``, URL-encoded)."""
    return f"{h5_url}&redirect_url={urllib.parse.quote(redirect_url, safe='')}"
