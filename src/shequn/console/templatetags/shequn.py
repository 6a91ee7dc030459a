"""Template filters: yuan from fen, local time, masked phones."""

from __future__ import annotations

import datetime as dt

from django import template

from shequn.core.money import format_fen
from shequn.core.timeutil import format_local

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    return "—" if fen is None else format_fen(int(fen))


@register.filter
def localtime_cn(moment: dt.datetime | None) -> str:
    return format_local(moment)


@register.filter
def percent(part: int, whole: int) -> int:
    return 0 if not whole else min(100, round(100 * part / whole))


@register.filter
def yuan_plain(fen: int | None) -> str:
    """For form fields: "10.00", no currency sign."""
    return "" if fen is None else f"{int(fen) / 100:.2f}"


@register.filter
def bp_percent(bp: int | None) -> str:
    """Basis points as a percent for form fields: 250 → "2.5"."""
    return "" if bp is None else f"{int(bp) / 100:g}"
