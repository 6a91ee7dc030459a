"""Merchant configuration from settings (``SHEQUN_WECHATPAY``), keys parsed once per value."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .client import WechatPayClient
from .crypto import PrivateKey, PublicKey, load_private_key, load_public_key


@dataclass(frozen=True)
class WechatPayConfig:
    mchid: str
    appid: str
    apiv3_key: bytes
    platform_keys: dict[
        str, PublicKey
    ]  # Wechatpay-Serial → key (certificate serial or PUB_KEY_ID_…)


def _pem(value: str) -> bytes:
    return value.encode() if "-----BEGIN" in value else Path(value).read_bytes()


@lru_cache(maxsize=8)
def _parse(
    mchid: str, appid: str, apiv3_key: str, keys: tuple[tuple[str, str], ...]
) -> WechatPayConfig:
    if len(apiv3_key.encode()) != 32:
        raise ImproperlyConfigured("SHEQUN_WECHATPAY APIV3_KEY must be 32 bytes")
    return WechatPayConfig(
        mchid=mchid,
        appid=appid,
        apiv3_key=apiv3_key.encode(),
        platform_keys={serial: load_public_key(_pem(pem)) for serial, pem in keys},
    )


def wechatpay_config() -> WechatPayConfig:
    raw = getattr(settings, "SHEQUN_WECHATPAY", None)
    if not raw or not raw.get("MCHID"):
        raise ImproperlyConfigured("SHEQUN_WECHATPAY is not configured")
    return _parse(
        raw["MCHID"],
        raw["APPID"],
        raw["APIV3_KEY"],
        tuple(sorted(raw.get("PLATFORM_PUBLIC_KEYS", {}).items())),
    )


def wechatpay_client() -> WechatPayClient | None:
    """The outbound client, or None while the merchant key or API base is not configured."""
    raw = getattr(settings, "SHEQUN_WECHATPAY", None) or {}
    if not (raw.get("MCHID") and raw.get("API_BASE") and raw.get("MERCHANT_KEY")):
        return None
    config = wechatpay_config()
    return WechatPayClient(
        base_url=raw["API_BASE"],
        mchid=config.mchid,
        merchant_key=_merchant_key(raw["MERCHANT_KEY"]),
        merchant_serial=raw["MERCHANT_SERIAL"],
        platform_keys=config.platform_keys,
    )


@lru_cache(maxsize=4)
def _merchant_key(value: str) -> PrivateKey:
    return load_private_key(_pem(value))


def notify_url() -> str:
    return str(settings.SHEQUN_PUBLIC_URL).rstrip("/") + "/webhooks/wechatpay/notify"
