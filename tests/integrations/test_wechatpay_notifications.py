"""WeChat Pay v3 notification verification against self-generated keys (no network)."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace

import pytest

from shequn.integrations.wechatpay.crypto import generate_private_key, rsa_sign
from shequn.integrations.wechatpay.notifications import (
    NotificationRejected,
    signed_message,
    verify_notification,
)
from shequn.integrations.wechatpay.signing import SignedNotification, build_notification

APIV3_KEY = secrets.token_bytes(32)
CERT_KEY = generate_private_key()
PUBKEY_KEY = generate_private_key()
CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PUBKEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
# During the certificate → public-key migration both must verify.
KEYS = {CERT_SERIAL: CERT_KEY.public_key(), PUBKEY_ID: PUBKEY_KEY.public_key()}
NOW = 1_790_000_000
RESOURCE = {
    "mchid": "1900000001",
    "appid": "wxd678efh567hg6787",
    "out_trade_no": "26112400000000001",
    "transaction_id": "4200000000202611240000000001",
    "trade_type": "JSAPI",
    "trade_state": "SUCCESS",
    "success_time": "2026-11-24T18:30:00+08:00",
    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    "amount": {"total": 3990, "payer_total": 3990, "currency": "CNY", "payer_currency": "CNY"},
}


def notification(
    serial: str = CERT_SERIAL, key=CERT_KEY, timestamp: int = NOW
) -> SignedNotification:  # type: ignore[no-untyped-def]
    return build_notification(
        event_type="TRANSACTION.SUCCESS",
        resource=RESOURCE,
        platform_key=key,
        platform_serial=serial,
        apiv3_key=APIV3_KEY,
        timestamp=timestamp,
    )


def verify(n: SignedNotification, now: float = NOW, apiv3_key: bytes = APIV3_KEY):  # type: ignore[no-untyped-def]
    return verify_notification(n.headers, n.body, platform_keys=KEYS, apiv3_key=apiv3_key, now=now)


def rejected(n: SignedNotification, reason: str, **kwargs: object) -> None:
    with pytest.raises(NotificationRejected) as info:
        verify(n, **kwargs)  # type: ignore[arg-type]
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("_case", "serial", "key"),
    [("certificate", CERT_SERIAL, CERT_KEY), ("public key id", PUBKEY_ID, PUBKEY_KEY)],
)
def test_happy_path_with_both_key_kinds(_case: str, serial: str, key) -> None:  # type: ignore[no-untyped-def]
    verified = verify(notification(serial, key))
    assert verified.event_type == "TRANSACTION.SUCCESS"
    assert verified.resource == RESOURCE


@pytest.mark.parametrize("offset", [-299, 299])
def test_timestamp_within_299_seconds_accepted(offset: int) -> None:
    assert verify(notification(), now=NOW + offset).resource["amount"]["total"] == 3990


@pytest.mark.parametrize("offset", [-301, 301, -300, 300])
def test_timestamp_300_seconds_or_more_refused(offset: int) -> None:
    rejected(notification(), "stale_timestamp", now=NOW + offset)


def test_tampered_body_refused() -> None:
    n = notification()
    rejected(replace(n, body=n.body.replace(b'"id":"EV-', b'"id":"EX-')), "bad_signature")


def test_reserialized_json_refused() -> None:
    n = notification()
    pretty = json.dumps(json.loads(n.body), indent=2).encode()  # what a parse-and-redump layer does
    rejected(replace(n, body=pretty), "bad_signature")


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("Wechatpay-Nonce", "another-nonce", "bad_signature"),
        ("Wechatpay-Timestamp", str(NOW + 1), "bad_signature"),
        ("Wechatpay-Timestamp", "soon", "bad_timestamp"),
        ("Wechatpay-Serial", "DEADBEEF", "unknown_serial"),
        ("Wechatpay-Signature", "bm90IGEgc2lnbmF0dXJl", "bad_signature"),
        ("Wechatpay-Signature", "not base64 !!", "bad_signature"),
        ("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3", "bad_signature_type"),
        ("Wechatpay-Signature", "", "missing_header"),
    ],
)
def test_tampered_headers_refused(header: str, value: str, reason: str) -> None:
    n = notification()
    rejected(replace(n, headers={**n.headers, header: value}), reason)


def test_signtest_probe_refused_even_if_otherwise_valid() -> None:
    n = notification()
    rejected(
        replace(
            n,
            headers={
                **n.headers,
                "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + n.headers["Wechatpay-Signature"],
            },
        ),
        "signtest_probe",
    )


def test_signed_with_the_other_kinds_key_refused() -> None:
    n = notification(serial=CERT_SERIAL, key=PUBKEY_KEY)  # right serial, wrong key
    rejected(n, "bad_signature")


def test_wrong_apiv3_key_or_aad_cannot_decrypt() -> None:
    rejected(notification(), "decrypt_failed", apiv3_key=secrets.token_bytes(32))
    n = notification()
    envelope = json.loads(n.body)
    envelope["resource"]["associated_data"] = "refund"
    body = json.dumps(envelope, separators=(",", ":")).encode()
    resigned = {
        **n.headers,
        "Wechatpay-Signature": rsa_sign(
            CERT_KEY,
            signed_message(n.headers["Wechatpay-Timestamp"], n.headers["Wechatpay-Nonce"], body),
        ),
    }
    rejected(SignedNotification(headers=resigned, body=body), "decrypt_failed")


def test_header_names_are_case_insensitive() -> None:
    n = notification()
    lowered = {k.lower(): v for k, v in n.headers.items()}
    assert verify(replace(n, headers=lowered)).resource["out_trade_no"] == RESOURCE["out_trade_no"]
