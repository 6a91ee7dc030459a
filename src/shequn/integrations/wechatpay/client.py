"""Outbound WeChat Pay v3 calls: requests signed with the merchant key, responses verified with
the platform key (a response that does not verify is refused, like a forged notification)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .crypto import PrivateKey, PublicKey
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
