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
