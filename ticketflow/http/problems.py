"""Errors as `application/problem+json` (RFC 9457), each with its stable `code`.

A rejection's code decides its status (the SPEC §9 table); the HTTP door adds a few
codes of its own for what is not a command's fault or merit: `rate_limited` (429),
`method_not_allowed` (405), `unavailable` (503: the store cannot be reached) and
`internal` (500).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from ticketflow.domain.errors import Code, Rejected

MEDIA_TYPE = "application/problem+json"

STATUS_OF = {
    Code.INVALID_MESSAGE: 400, Code.UNAUTHENTICATED: 401, Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404, Code.INVALID_TRANSITION: 409, Code.ALREADY_EXISTS: 409,
    Code.CONFLICT: 409, Code.IDEMPOTENCY_MISMATCH: 409, Code.POLICY_VIOLATION: 422,
}
TITLES = {
    "invalid_message": "Invalid message", "unauthenticated": "Unauthenticated",
    "forbidden": "Forbidden", "not_found": "Not found",
    "invalid_transition": "Invalid transition", "already_exists": "Already exists",
    "conflict": "Conflict", "idempotency_mismatch": "Idempotency mismatch",
    "policy_violation": "Policy violation", "rate_limited": "Too many requests",
    "method_not_allowed": "Method not allowed", "unavailable": "Service unavailable",
    "internal": "Internal error",
}
#: What a 401 asks for (RFC 6750).
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ticketflow"'}


class Problem(Exception):
    """An answer that is a problem: raised anywhere in the HTTP door, sent as is."""

    def __init__(self, status: int, code: str, detail: str,
                 headers: Mapping[str, str] | None = None, **members: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = dict(headers or {})
        self.members = {name: value for name, value in members.items() if value is not None}

    @classmethod
    def of(cls, rejection: Rejected, **members: Any) -> Problem:
        """A rejection (of a command, or a query's `not_found`) at its table status."""
        status = STATUS_OF[rejection.code]
        headers = CHALLENGE if status == 401 else None
        return cls(status, rejection.code.value, rejection.message, headers, **members)

    @classmethod
    def of_error(cls, error: dict[str, str], **members: Any) -> Problem:
        """A recorded rejection (`{"code", "message"}`, as an outcome holds it)."""
        status = STATUS_OF[Code(error["code"])]
        headers = CHALLENGE if status == 401 else None
        return cls(status, error["code"], error["message"], headers, **members)

    def body(self) -> dict[str, Any]:
        return {"type": f"urn:ticketflow:problem:{self.code}",
                "title": TITLES.get(self.code, self.code), "status": self.status,
                "detail": self.detail, "code": self.code, **self.members}

    def response(self) -> Response:
        return Response(json.dumps(self.body(), ensure_ascii=False,
                                   separators=(",", ":")).encode("utf-8"),
                        status_code=self.status, headers=self.headers, media_type=MEDIA_TYPE)
