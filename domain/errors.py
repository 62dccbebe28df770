"""Typed domain errors, each carrying one of the stable rejection codes of SPEC §3."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Stable reason codes for a rejected command (SPEC §3)."""

    INVALID_TRANSITION = "invalid_transition"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    INVALID_MESSAGE = "invalid_message"
    POLICY_VIOLATION = "policy_violation"
    CONFLICT = "conflict"
    UNAUTHENTICATED = "unauthenticated"
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"


class Rejected(Exception):
    """A command was refused; nothing changed. Subclasses fix the code."""

    code: Code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


class InvalidTransition(Rejected):
    code = Code.INVALID_TRANSITION


class Forbidden(Rejected):
    code = Code.FORBIDDEN


class NotFound(Rejected):
    code = Code.NOT_FOUND


class AlreadyExists(Rejected):
    code = Code.ALREADY_EXISTS


class InvalidMessage(Rejected):
    code = Code.INVALID_MESSAGE


class PolicyViolation(Rejected):
    code = Code.POLICY_VIOLATION


class Conflict(Rejected):
    code = Code.CONFLICT


class Unauthenticated(Rejected):
    code = Code.UNAUTHENTICATED


class IdempotencyMismatch(Rejected):
    code = Code.IDEMPOTENCY_MISMATCH


class AmbiguousId(LookupError):
    """A bare id that several tenants use: the caller must name the tenant."""

    def __init__(self, kind: str, stream_id: str, tenants: list[str]) -> None:
        self.tenants = tenants
        super().__init__(f"{kind} {stream_id} exists in tenants {', '.join(tenants)};"
                         " name one with --tenant T (or TICKETFLOW_TENANT)")
