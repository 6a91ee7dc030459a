"""Signed attribution in card and share links.

A card link reads ``/m/p/<product>/?g=<group>&s=<sharer>&c=<content>&ch=<channel>&k=<sig>``.
The signature makes the source trustworthy enough to pay commission on later: anyone may
forward the link, nobody can swap in another sharer or group. A link whose signature fails
still shows the product; it just carries no source.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from shequn.orders.models import OrderChannel

_SALT = "shequn.shop.card-link"


@dataclass(frozen=True)
class Source:
    group_id: int | None
    sharer_id: int | None
    content_ref: str
    channel: str

    def as_session(self) -> dict[str, object]:
        return {
            "group": self.group_id,
            "sharer": self.sharer_id,
            "content": self.content_ref,
            "channel": self.channel,
        }


def _signature(product_id: int, source: Source) -> str:
    payload = (
        f"{product_id}|{source.group_id or ''}|{source.sharer_id or ''}|"
        f"{source.content_ref}|{source.channel}"
    )
    return salted_hmac(_SALT, payload, algorithm="sha256").hexdigest()[:20]


def product_link(product_id: int, source: Source) -> str:
    query = {
        "g": source.group_id or "",
        "s": source.sharer_id or "",
        "c": source.content_ref,
        "ch": source.channel,
        "k": _signature(product_id, source),
    }
    return reverse("shop:product", args=[product_id]) + "?" + urlencode(query)


def _int_or_none(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 12 else None


def read_source(product_id: int, params: dict[str, str]) -> Source | None:
    """The source a link carries, or None when it carries none or was tampered with."""
    if not params.get("k"):
        return None
    channel = params.get("ch", "")
    if channel not in OrderChannel.values:
        return None
    source = Source(
        group_id=_int_or_none(params.get("g", "")),
        sharer_id=_int_or_none(params.get("s", "")),
        content_ref=params.get("c", "")[:64],
        channel=channel,
    )
    if not constant_time_compare(params["k"], _signature(product_id, source)):
        return None
    return source
