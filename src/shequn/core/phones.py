"""Phone numbers: validated and normalized with `phonenumbers`, masked for most roles."""

from __future__ import annotations

import phonenumbers

from shequn.core.errors import InvalidInput

DEFAULT_REGION = "CN"


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 (``+8613812341234``) or InvalidInput. Accepts spaces, dashes and a +86 prefix."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise InvalidInput("手机号格式不正确", code="invalid_phone")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("手机号格式不正确", code="invalid_phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("手机号格式不正确", code="invalid_phone")
    if number.country_code == 86 and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidInput("请填写手机号码", code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str) -> str:
    """``+8613812341234`` → ``13812341234`` (how Chinese operators read and type numbers)."""
    if e164.startswith("+86"):
        return e164[3:]
    return e164.lstrip("+")


def mask_phone(e164: str) -> str:
    """``138****1234``: the de-facto convention for masked mainland mobile numbers."""
    digits = national_digits(e164)
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
