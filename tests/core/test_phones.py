import pytest

from shequn.core.errors import InvalidInput
from shequn.core.phones import mask_phone, normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["13812341234", "+86 138 1234 1234", "138-1234-1234", "+8613812341234", "008613812341234"],
)
def test_normalize_mainland_mobile(raw: str) -> None:
    assert normalize_phone(raw) == "+8613812341234"


@pytest.mark.parametrize(
    "raw",
    ["", "12345", "1381234123", "abcdefghijk", "138123412345678901234567890123456", "01012345678"],
)
def test_malformed_phone_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_phone(raw)
    assert info.value.code == "invalid_phone"


def test_mask() -> None:
    assert mask_phone("+8613812341234") == "138****1234"
