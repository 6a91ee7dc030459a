"""Time: aware UTC in storage, Asia/Shanghai (or a store's zone) for people."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from .errors import InvalidInput

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> dt.datetime:
    """The current instant, aware, in UTC."""
    return timezone.now()


def local_tz(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name or settings.TIME_ZONE)


def to_local(moment: dt.datetime, tz_name: str | None = None) -> dt.datetime:
    if timezone.is_naive(moment):
        raise ValueError("naive datetime: store and pass aware datetimes only")
    return moment.astimezone(local_tz(tz_name))


def format_local(moment: dt.datetime | None, tz_name: str | None = None) -> str:
    """2026-11-24 18:30 — how times are shown in the console (local wall clock)."""
    if moment is None:
        return "—"
    return to_local(moment, tz_name).strftime("%Y-%m-%d %H:%M")


def local_day_bounds(day: dt.date, tz_name: str | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in the given zone, as aware datetimes.

    Daily reports cut at local midnight, not at UTC midnight.
    """
    tz = local_tz(tz_name)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def local_today(tz_name: str | None = None) -> dt.date:
    return now().astimezone(local_tz(tz_name)).date()


# Days people may ask about: wide enough for any real report or plan, narrow enough that a
# week or month around it, in any zone, is still a valid datetime (9999-12-31 + 7 days is not).
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)


def supported_day(day: dt.date) -> dt.date:
    """``day`` if it lies in [2000-01-01, 2099-12-31], else InvalidInput (422) naming the range."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(
            f"日期须在 {FIRST_DAY.isoformat()} 至 {LAST_DAY.isoformat()} 之间",
            code="date_out_of_range",
        )
    return day
