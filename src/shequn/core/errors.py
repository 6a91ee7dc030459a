"""Typed domain errors with stable codes; the API maps them all to one JSON shape.

    {"code": "group_full", "message": "群已满 ...", "details": {...}}

Codes are part of the API contract: add new ones, never rename.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A business rule refused the request. ``status`` is the HTTP status the API answers."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(DomainError):
    status = 422
    default_code = "invalid_input"


class NotFound(DomainError):
    """Also used when an object exists but lies outside the caller's scope (no enumeration)."""

    status = 404
    default_code = "not_found"


class PermissionDenied(DomainError):
    status = 403
    default_code = "permission_denied"


class NotAuthenticated(DomainError):
    status = 401
    default_code = "not_authenticated"


class Conflict(DomainError):
    status = 409
    default_code = "conflict"


class RuleViolation(DomainError):
    """A well-formed request that the business rules refuse (full group, expired code …)."""

    status = 422
    default_code = "rule_violation"


class Throttled(DomainError):
    """Asked too often (texts to one phone, logins from one address): try again later."""

    status = 429
    default_code = "throttled"


class Unavailable(DomainError):
    """A service we depend on (the payment gateway) cannot be reached; try again shortly."""

    status = 503
    default_code = "service_unavailable"
