"""Money is integer fen (分) everywhere; yuan appear only when shown to a person.

All rounding lives here. Splits use the largest-remainder method so the parts always add up
to the whole, fen-exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100


def yuan_to_fen(yuan: str | int | Decimal) -> int:
    """Parse an amount a person typed in yuan ("12.5", "¥1,234.50") into fen; refuses sub-fen."""
    if isinstance(yuan, float):  # floats cannot hold money exactly
        raise TypeError("yuan_to_fen takes str, int or Decimal, never float")
    text = str(yuan).strip().replace("¥", "").replace("￥", "").replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"不是有效的金额: {yuan!r}") from exc
    if not value.is_finite():
        raise ValueError(f"不是有效的金额: {yuan!r}")
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"金额最多两位小数: {yuan!r}")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def format_fen(fen: int, *, symbol: str = "¥") -> str:
    """¥1,234.50 — the way amounts are shown to people; negative as -¥3.00."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{symbol}{fen_to_yuan(abs(fen)):,.2f}"


def percent_of(fen: int, rate: Decimal) -> int:
    """fen × rate rounded half-up to whole fen (rate as a fraction, e.g. Decimal('0.05'))."""
    return int((Decimal(fen) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def split_largest_remainder(total_fen: int, weights: Sequence[int]) -> list[int]:
    """Split ``total_fen`` proportionally to ``weights``; the parts sum exactly to the total.

    Each part gets the floor of its share; the fen left over go to the largest remainders
    (ties to the earlier part), so the result is deterministic.
    """
    if total_fen < 0:
        raise ValueError("total must not be negative")
    if not weights or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative and not empty")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    parts = [total_fen * w // weight_sum for w in weights]
    remainders = [total_fen * w % weight_sum for w in weights]
    left = total_fen - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        parts[i] += 1
    return parts
