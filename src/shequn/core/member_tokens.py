"""The member token (``X-Member-Token``): a member id signed with the server's secret, with a
timestamp so it expires. Issued only after the member proved their phone (``groups`` joining);
read by the member API and by the idempotency store, which keys a member's requests by them.
Here in core because both of those sit on it."""

from __future__ import annotations

from django.core import signing

from .errors import InvalidInput

_MEMBER_SIGNER = signing.TimestampSigner(salt="shequn.groups.member", sep=".")
MEMBER_TOKEN_MAX_AGE_S = 30 * 24 * 3600
HEADER = "X-Member-Token"


def sign_member(member_id: int) -> str:
    return _MEMBER_SIGNER.sign(str(member_id))


def unsign_member(token: str) -> int:
    """The member id inside a valid, unexpired token, else InvalidInput."""
    if not token or len(token) > 200:
        raise InvalidInput("会员凭证无效或已过期", code="invalid_member_token")
    try:
        return int(_MEMBER_SIGNER.unsign(token, max_age=MEMBER_TOKEN_MAX_AGE_S))
    except (signing.BadSignature, ValueError):
        raise InvalidInput("会员凭证无效或已过期", code="invalid_member_token") from None
