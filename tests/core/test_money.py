from decimal import Decimal

import pytest

from shequn.core.money import format_fen, percent_of, split_largest_remainder, yuan_to_fen


@pytest.mark.parametrize(
    ("_case", "fen", "shown"),
    [
        ("zero", 0, "¥0.00"),
        ("thousands", 123450, "¥1,234.50"),
        ("one fen", 1, "¥0.01"),
        ("negative", -300, "-¥3.00"),
        ("large", 123456789, "¥1,234,567.89"),
    ],
)
def test_format_fen(_case: str, fen: int, shown: str) -> None:
    assert format_fen(fen) == shown


def test_yuan_to_fen_parses_what_people_type() -> None:
    assert yuan_to_fen("12.5") == 1250
    assert yuan_to_fen("¥1,234.50") == 123450
    assert yuan_to_fen(Decimal("0.01")) == 1
    assert yuan_to_fen(3) == 300


@pytest.mark.parametrize("bad", ["0.001", "abc", "", "NaN", "inf"])
def test_yuan_to_fen_refuses_sub_fen_and_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        yuan_to_fen(bad)


def test_yuan_to_fen_refuses_float() -> None:
    with pytest.raises(TypeError):
        yuan_to_fen(0.1)  # type: ignore[arg-type]


def test_percent_of_rounds_half_up() -> None:
    assert percent_of(1005, Decimal("0.1")) == 101  # 100.5 → 101
    assert percent_of(999, Decimal("0.05")) == 50  # 49.95 → 50


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (1, [1, 1], [1, 0]),
        (1000, [3, 0, 7], [300, 0, 700]),
        (10, [1, 2, 2], [2, 4, 4]),
    ],
)
def test_split_largest_remainder_sums_exactly(
    total: int, weights: list[int], expected: list[int]
) -> None:
    parts = split_largest_remainder(total, weights)
    assert parts == expected
    assert sum(parts) == total


def test_split_refuses_bad_weights() -> None:
    with pytest.raises(ValueError):
        split_largest_remainder(10, [0, 0])
    with pytest.raises(ValueError):
        split_largest_remainder(-1, [1])
