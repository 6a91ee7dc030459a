"""Request bodies of the signed callbacks (WeChat Pay, WeCom), which read the raw bytes
themselves: a body over the limit is refused in the callback's own answer shape, not with
Django's HTML 400 page, and before it is read when its declared length says so."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

MAX_CALLBACK_BODY = 1024 * 1024  # a real notification or event is a few KB


def read_body(request: HttpRequest, limit: int = MAX_CALLBACK_BODY) -> bytes | None:
    """The raw body, or None when it is over ``limit`` bytes: refused on its declared length
    before it is read, or on its length once read (no Content-Length)."""
    declared = str(request.META.get("CONTENT_LENGTH") or "0")
    if declared.isdecimal() and int(declared) > limit:
        return None
    try:
        raw = request.body
    except RequestDataTooBig:  # over DATA_UPLOAD_MAX_MEMORY_SIZE
        return None
    return raw if len(raw) <= limit else None
