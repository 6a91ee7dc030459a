import datetime as dt

import pytest

from shequn.core.timeutil import format_local, local_day_bounds, to_local


def test_local_day_cuts_at_shanghai_midnight() -> None:
    start, end = local_day_bounds(dt.date(2026, 11, 24))
    assert start.astimezone(dt.UTC) == dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)
    assert end - start == dt.timedelta(days=1)


def test_format_local_shows_wall_clock() -> None:
    moment = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)
    assert format_local(moment) == "2026-11-24 18:30"
    assert format_local(None) == "—"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        to_local(dt.datetime(2026, 1, 1))  # noqa: DTZ001
