"""Verify and decrypt a WeChat Pay v3 notification (支付/退款回调). Pure: no database, no clock
of its own — the caller passes the keys and ``now``, so every rule is testable exactly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .crypto import DecryptionFailed, PublicKey, aes_gcm_decrypt, rsa_verify

REPLAY_WINDOW_S = 300  # official Go SDK: |now - ts| >= FiveMinute is refused
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
REQUIRED_HEADERS = (
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Signature",
    "Wechatpay-Serial",
)


class NotificationRejected(Exception):
    """The notification must be answered with 4xx ``{"code": "FAIL"}`` and change nothing."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Notification:
    id: str
    event_type: str
    create_time: str
    resource: dict[str, Any]  # the decrypted resource


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value.strip()
    return ""


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def verify_signature(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    platform_keys: Mapping[str, PublicKey],
    now: float,
) -> None:
    """Check a platform-signed message (a notification or an API response), or raise
    NotificationRejected. ``raw_body`` must be the bytes as received."""
    values = {name: _header(headers, name) for name in REQUIRED_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise NotificationRejected("missing_header", f"缺少请求头: {', '.join(missing)}")
    signature_type = _header(headers, "Wechatpay-Signature-Type")
    if signature_type and signature_type != SIGNATURE_TYPE:
        raise NotificationRejected("bad_signature_type", f"不支持的签名类型: {signature_type}")
    signature = values["Wechatpay-Signature"]
    if signature.startswith(SIGNTEST_PREFIX):
        raise NotificationRejected("signtest_probe", "签名探测请求, 验签失败")
    try:
        timestamp = int(values["Wechatpay-Timestamp"])
    except ValueError:
        raise NotificationRejected("bad_timestamp", "时间戳格式错误") from None
    if abs(now - timestamp) >= REPLAY_WINDOW_S:
        raise NotificationRejected("stale_timestamp", "时间戳超出 5 分钟窗口")
    key = platform_keys.get(values["Wechatpay-Serial"])
    if key is None:
        raise NotificationRejected("unknown_serial", "未知的平台证书序列号或公钥 ID")
    message = signed_message(values["Wechatpay-Timestamp"], values["Wechatpay-Nonce"], raw_body)
    if not rsa_verify(key, message, signature):
        raise NotificationRejected("bad_signature", "验签失败")


def verify_notification(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    platform_keys: Mapping[str, PublicKey],
    apiv3_key: bytes,
    now: float,
) -> Notification:
    """The decrypted notification, or NotificationRejected with a stable ``reason``.

    ``raw_body`` must be the bytes as received: re-serialized JSON does not verify.
    """
    verify_signature(headers, raw_body, platform_keys=platform_keys, now=now)
    try:
        envelope = json.loads(raw_body)
        resource = envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejected("bad_algorithm", "不支持的加密算法")
        plaintext = aes_gcm_decrypt(
            apiv3_key,
            resource["nonce"],
            resource["ciphertext"],
            resource.get("associated_data") or "",
        )
        return Notification(
            id=str(envelope["id"]),
            event_type=str(envelope["event_type"]),
            create_time=str(envelope.get("create_time", "")),
            resource=json.loads(plaintext),
        )
    except DecryptionFailed:
        raise NotificationRejected("decrypt_failed", "资源解密失败") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise NotificationRejected("bad_envelope", "通知格式错误") from None
