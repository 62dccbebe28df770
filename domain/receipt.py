"""Receipts: the recorded outcome of every inbound message, keyed by tenant and message_id.

A receipt is saved in the same transaction as the events a command produced, so the
store can never hold a command's events without its receipt or the other way round.
A second message with the same id in the same tenant collides with the receipt
(version 1 exists): with the same body it is answered `duplicate`, with another body
it is rejected `idempotency_mismatch` (SPEC §5). Message ids are scoped by tenant, so no
tenant's message can answer, block or reveal another's.

Rejected messages keep their original text, code and message: the embedded default's
dead letters. A message too broken to be judged on its merits — unreadable, of no known
tenant, `invalid_message`, a reserved id, or an idempotency mismatch — is kept under
the digest of its bytes, not under its id: it never uses up the id, so the corrected
message can still be sent with it (as Stripe does for requests that fail validation).
Of a message over `KEEP_BYTES`, only the head is kept, with its length and SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate

from ticketflow.domain.streams import stream_uuid, unscoped_uuid

#: A dead letter keeps at most this many bytes of its message (the head), and always
#: its full length and SHA-256.
KEEP_BYTES = 64 * 1024
#: The scope of a message whose tenant is unknown or unreadable.
NO_TENANT = "-"


def digest_key(raw: bytes) -> str:
    """The key of a message known by its bytes (not by its id)."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def receipt_uuid(tenant: str | None, key: str) -> UUID:
    return stream_uuid("receipt", tenant or NO_TENANT, key)


def legacy_receipt_uuid(key: str) -> UUID:
    """Where the release before tenant scoping kept a message's receipt."""
    return unscoped_uuid("receipt", key)


def body_digest(raw: bytes) -> str:
    """The SHA-256 of a message's canonical JSON (keys sorted, no spaces), so the same
    command sent again by another client library, keys in another order, is the same."""
    try:
        canonical = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


class Receipt(Aggregate):
    class Recorded(Aggregate.Created):
        class_version = 2
        key: str  # the message id, or "sha256:…" of a message kept by its bytes
        status: str  # accepted | rejected
        tenant: str | None
        ticket_id: str | None
        events: list[str]
        versions: list[int]
        error: dict[str, str] | None
        raw: str | None  # original text of a rejected message (UTF-8 or base64), its head
        raw_encoding: str | None
        body_sha256: str | None  # of the canonical body, to tell a resend from a reuse
        raw_length: int | None  # bytes in the original message (None: all of it is kept)
        raw_sha256: str | None  # of the whole original message
        message_id: str | None  # the id the message gave (also when kept by its digest)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Receipts of the release before: no body digest, dead letters kept whole."""
            key = state["key"]
            state.update(body_sha256=None, raw_length=None, raw_sha256=None,
                         message_id=None if key.startswith("sha256:") else key)

    def __init__(
        self, key: str, status: str, tenant: str | None, ticket_id: str | None,
        events: list[str], versions: list[int], error: dict[str, str] | None,
        raw: str | None, raw_encoding: str | None, body_sha256: str | None,
        raw_length: int | None, raw_sha256: str | None, message_id: str | None,
    ) -> None:
        self.key = key
        self.status = status
        self.tenant = tenant
        self.ticket_id = ticket_id
        self.events = events
        self.versions = versions
        self.error = error
        self.raw = raw
        self.raw_encoding = raw_encoding
        self.body_sha256 = body_sha256
        self.raw_length = raw_length
        self.raw_sha256 = raw_sha256
        self.message_id = message_id

    @classmethod
    def accepted(
        cls, key: str, tenant: str, stream_id: str, events: list[tuple[str, int]],
        recorded_at: datetime, body_sha256: str,
    ) -> Receipt:
        return cls._create(
            cls.Recorded, id=receipt_uuid(tenant, key), timestamp=recorded_at, key=key,
            status="accepted", tenant=tenant, ticket_id=stream_id,
            events=[name for name, _ in events], versions=[v for _, v in events],
            error=None, raw=None, raw_encoding=None, body_sha256=body_sha256,
            raw_length=None, raw_sha256=None, message_id=key,
        )

    @classmethod
    def rejected(
        cls, key: str, raw: bytes | Oversized, error: dict[str, str], recorded_at: datetime,
        tenant: str | None = None, ticket_id: str | None = None,
        message_id: str | None = None,
    ) -> Receipt:
        kept = raw if isinstance(raw, Oversized) else Oversized.of(raw)
        text, encoding = _keep(kept.head)
        whole = kept.length <= len(kept.head)
        return cls._create(
            cls.Recorded, id=receipt_uuid(tenant, key), timestamp=recorded_at, key=key,
            status="rejected", tenant=tenant, ticket_id=ticket_id, events=[], versions=[],
            error=error, raw=text, raw_encoding=encoding,
            body_sha256=None if not whole else body_digest(kept.head),
            raw_length=None if whole else kept.length,
            raw_sha256=None if whole else kept.sha256,
            message_id=message_id or (None if key.startswith("sha256:") else key),
        )

    @property
    def recorded_at(self) -> datetime:
        return self.created_on

    @property
    def scoped(self) -> bool:
        """Recorded by a release that scopes ids by tenant (an accepted receipt of the
        release before has no body digest, and its stream has an unscoped id)."""
        return self.status != "accepted" or self.body_sha256 is not None

    @property
    def truncated(self) -> bool:
        return self.raw_length is not None

    def original_bytes(self) -> bytes:
        """The message as received (its head only, for one over KEEP_BYTES)."""
        if self.raw is None:
            return b""
        if self.raw_encoding == "base64":
            return base64.b64decode(self.raw)
        return self.raw.encode("utf-8")


class Oversized:
    """What is kept of a message: its head (at most KEEP_BYTES), length and SHA-256.

    Made in bounded memory from a stream (`ticketflow apply` reads a 100 MB line this
    way), or from bytes in hand."""

    def __init__(self, head: bytes, length: int, sha256: str) -> None:
        self.head, self.length, self.sha256 = head, length, sha256

    @classmethod
    def of(cls, raw: bytes) -> Oversized:
        return cls(raw[:KEEP_BYTES], len(raw), hashlib.sha256(raw).hexdigest())

    def __repr__(self) -> str:
        return f"Oversized({self.length} bytes, sha256 {self.sha256[:12]}…)"


def _keep(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"
