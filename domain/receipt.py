"""Receipts: the recorded outcome of every inbound message, keyed by message_id.

A receipt is saved in the same transaction as the events a command produced, so the
store can never hold a command's events without its receipt or the other way round.
A second message with the same id collides with the receipt (version 1 exists) and is
answered `duplicate`. Rejected messages keep their original text, code and message:
the embedded default's dead letters.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from ticketflow.domain.streams import stream_uuid


def receipt_key(message_id: str | None, raw: bytes) -> str:
    """A message is known by its id; an unreadable one by the digest of its bytes."""
    return message_id if message_id else "sha256:" + hashlib.sha256(raw).hexdigest()


def receipt_uuid(key: str) -> Any:
    return stream_uuid("receipt", key)


class Receipt(Aggregate):
    class Recorded(Aggregate.Created):
        key: str
        status: str  # accepted | rejected
        tenant: str | None
        ticket_id: str | None
        events: list[str]
        versions: list[int]
        error: dict[str, str] | None
        raw: str | None  # original text of a rejected message (UTF-8 or base64)
        raw_encoding: str | None

    def __init__(
        self, key: str, status: str, tenant: str | None, ticket_id: str | None,
        events: list[str], versions: list[int], error: dict[str, str] | None,
        raw: str | None, raw_encoding: str | None,
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

    @classmethod
    def accepted(
        cls, key: str, tenant: str, stream_id: str, events: list[tuple[str, int]],
        recorded_at: datetime,
    ) -> Receipt:
        return cls._create(
            cls.Recorded, id=receipt_uuid(key), timestamp=recorded_at, key=key,
            status="accepted", tenant=tenant, ticket_id=stream_id,
            events=[name for name, _ in events], versions=[v for _, v in events],
            error=None, raw=None, raw_encoding=None,
        )

    @classmethod
    def rejected(
        cls, key: str, raw: bytes, error: dict[str, str], recorded_at: datetime,
        tenant: str | None = None, ticket_id: str | None = None,
    ) -> Receipt:
        text, encoding = _keep(raw)
        return cls._create(
            cls.Recorded, id=receipt_uuid(key), timestamp=recorded_at, key=key,
            status="rejected", tenant=tenant, ticket_id=ticket_id, events=[], versions=[],
            error=error, raw=text, raw_encoding=encoding,
        )

    @property
    def recorded_at(self) -> datetime:
        return self.created_on

    def original_bytes(self) -> bytes:
        if self.raw is None:
            return b""
        if self.raw_encoding == "base64":
            return base64.b64decode(self.raw)
        return self.raw.encode("utf-8")


def _keep(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"
