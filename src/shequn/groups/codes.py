"""Invitation codes: a random token plus an HMAC signature, ``token.signature``.

The signature makes a code tamper-evident without a database hit; expiry and revocation live on
the row, so a code can be withdrawn at once. Member tokens (for self-service leave) use the same
signing with another salt (``core.member_tokens``).
"""

from __future__ import annotations

import secrets
import string

from django.core import signing

from shequn.core.errors import InvalidInput
from shequn.core.member_tokens import sign_member, unsign_member

__all__ = ["new_token", "sign_invitation", "sign_member", "unsign_invitation", "unsign_member"]

_ALPHABET = string.ascii_letters + string.digits
_INVITATION_SIGNER = signing.Signer(salt="shequn.groups.invitation", sep=".")


def new_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def sign_invitation(token: str) -> str:
    return _INVITATION_SIGNER.sign(token)


def unsign_invitation(code: str) -> str:
    """The token inside a code, or InvalidInput for anything malformed or tampered."""
    if not code or len(code) > 120:
        raise InvalidInput("邀请码无效", code="invalid_invitation")
    try:
        return _INVITATION_SIGNER.unsign(code.strip())
    except signing.BadSignature:
        raise InvalidInput("邀请码无效或已被篡改", code="invalid_invitation") from None
