"""Whole-number settings from the environment: unset or empty → the default; anything else
must be a whole number at or above the minimum, or the process refuses to start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from shequn.settings.base import env_int


@pytest.mark.parametrize(("raw", "expected"), [(None, 8), ("", 8), (" 12 ", 12), ("1", 1)])
def test_whole_numbers_and_defaults(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: int
) -> None:
    if raw is None:
        monkeypatch.delenv("SHEQUN_TEST_INT", raising=False)
    else:
        monkeypatch.setenv("SHEQUN_TEST_INT", raw)
    assert env_int("SHEQUN_TEST_INT", 8, minimum=1) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [("eight", "whole number"), ("0", "at least 1"), ("-3", "at least 1"), ("2.5", "whole number")],
)
def test_bad_values_refuse_to_start(
    monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    monkeypatch.setenv("SHEQUN_TEST_INT", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_int("SHEQUN_TEST_INT", 8, minimum=1)
