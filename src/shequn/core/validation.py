"""Checks on what people type, shared by every app's actions: one wording, one error code."""

from __future__ import annotations

from .errors import InvalidInput

MAX_PRICE_FEN = 100_000_000  # ¥1,000,000 a unit: anything above is a typo, not a product


def clean_text(value: str, label: str, max_length: int, *, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{label}不能为空")
    if len(value) > max_length:
        raise InvalidInput(f"{label}不超过{max_length}字")
    return value


def clean_fen(value: object, label: str = "价格", maximum: int = MAX_PRICE_FEN) -> int:
    """A whole, positive amount in fen, never a float and never absurd."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{label}须为整数分", code="invalid_amount")
    if not 1 <= value <= maximum:
        raise InvalidInput(f"{label}须在 1 分到 {maximum} 分之间", code="invalid_amount")
    return value


def clean_count(value: object, label: str, maximum: int) -> int:
    """A whole number of units or people, 1 to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(f"{label}须为 1 到 {maximum} 的整数", code="invalid_count")
    return value


MAX_ROW_ID = 2**63 - 1  # the largest id a 64-bit key column holds


def parse_row_id(raw: object) -> int | None:
    """A row id from a query string or form ("12"), or None for anything that cannot be one:
    not digits, zero, or past what a key column holds (a 25-digit id once crashed a page)."""
    text = str(raw or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ROW_ID else None
