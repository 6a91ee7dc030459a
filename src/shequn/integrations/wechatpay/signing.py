"""Building signed messages: outbound request Authorization (merchant key) and, for the local
simulated gateway and tests, notifications signed with a platform key."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .crypto import PrivateKey, aes_gcm_encrypt, rsa_sign
from .notifications import SIGNATURE_TYPE, signed_message


def authorization_header(
    *,
    mchid: str,
    serial_no: str,
    key: PrivateKey,
    method: str,
    url_path: str,
    body: str,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """``WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,timestamp=…,serial_no=…,signature=…``
    over ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16)
    message = f"{method}\n{url_path}\n{timestamp}\n{nonce}\n{body}\n".encode()
    signature = rsa_sign(key, message)
    return (
        f'{SIGNATURE_TYPE} mchid="{mchid}",nonce_str="{nonce}",timestamp="{timestamp}",'
        f'serial_no="{serial_no}",signature="{signature}"'
    )


@dataclass(frozen=True)
class SignedNotification:
    headers: dict[str, str]
    body: bytes


def build_notification(
    *,
    event_type: str,
    resource: dict[str, Any],
    platform_key: PrivateKey,
    platform_serial: str,
    apiv3_key: bytes,
    notification_id: str | None = None,
    timestamp: int | None = None,
    original_type: str = "transaction",
) -> SignedNotification:
    """A notification exactly as WeChat Pay sends one: encrypted resource, signed raw body."""
    resource_nonce = secrets.token_hex(6)  # 12 characters
    associated_data = original_type
    ciphertext = aes_gcm_encrypt(
        apiv3_key,
        resource_nonce,
        json.dumps(resource, ensure_ascii=False).encode(),
        associated_data,
    )
    envelope = {
        "id": notification_id or f"EV-{secrets.token_hex(10)}",
        "create_time": time.strftime(
            "%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600)
        ),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功" if event_type == "TRANSACTION.SUCCESS" else "退款通知",
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": associated_data,
            "nonce": resource_nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = secrets.token_hex(16)
    return SignedNotification(
        headers={
            "Wechatpay-Timestamp": str(timestamp),
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(
                platform_key, signed_message(str(timestamp), nonce, body)
            ),
            "Wechatpay-Serial": platform_serial,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
            "Request-ID": secrets.token_hex(8),
        },
        body=body,
    )
