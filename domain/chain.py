"""The event envelope of SPEC §5 and its per-stream SHA-256 hash chain.

hash(n) = SHA-256( hash(n-1) + canonical_json(envelope(n) without "hash") ), with the
first event chaining from the empty string. Canonical JSON: keys sorted, no spaces,
UTF-8, instants in UTC ISO-8601.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson

ENVELOPE_FIELDS = (
    "event_id", "type", "schema_version", "tenant", "ticket_id", "version",
    "occurred_at", "recorded_at", "actor", "causation_id", "data",
)


def canonical_json(value: Any) -> bytes:
    """Keys sorted, no spaces, UTF-8 (json.dumps' text). orjson writes exactly the same
    bytes for text, 64-bit integers, booleans, null, lists and text-keyed objects, some
    15x faster (the chain hash and the audit log's leaf of every event, and `verify
    --checkpoint` over a whole store, are made of it); anything else — a float (its
    exponent is written otherwise), a subclass, a tuple — goes through json.dumps."""
    if _plain(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _plain(value: Any) -> bool:
    pending = [value]  # a loop, not recursion: this runs for every event hashed
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            if any(type(key) is not str for key in item):
                return False
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        elif kind is not int or not -(2**63) <= item < 2**64:
            return False
    return True


def utc_iso(instant: datetime | str) -> str:
    """An instant as UTC ISO-8601 text (ISO text already in UTC is taken as it is)."""
    if isinstance(instant, str):
        if instant.endswith("+00:00"):
            return instant
        instant = datetime.fromisoformat(instant)
    return instant.astimezone(UTC).isoformat()


def chain_hash(previous_hash: str, envelope: dict[str, Any]) -> str:
    body = {key: envelope[key] for key in ENVELOPE_FIELDS}
    return hashlib.sha256(previous_hash.encode("ascii") + canonical_json(body)).hexdigest()


def make_envelope(
    *,
    event_id: str,
    type_: str,
    schema_version: int,
    tenant: str,
    ticket_id: str,
    version: int,
    occurred_at: datetime | str,
    recorded_at: datetime | str,
    actor: dict[str, str],
    causation_id: str,
    data: dict[str, Any],
    hash: str | None = None,
) -> dict[str, Any]:
    """The SPEC §5 envelope, assembled here only: of an event being emitted (to hash it,
    `hash` None), of an event object and of a stored event's state (`domain.streams`)."""
    envelope = {
        "event_id": event_id, "type": type_, "schema_version": schema_version,
        "tenant": tenant, "ticket_id": ticket_id, "version": version,
        "occurred_at": utc_iso(occurred_at), "recorded_at": utc_iso(recorded_at),
        "actor": dict(actor), "causation_id": causation_id, "data": data,
    }
    if hash is not None:
        envelope["hash"] = hash
    return envelope


def find_break(envelopes: list[dict[str, Any]]) -> tuple[int, str] | None:
    """The first envelope (index, why) whose version or hash breaks the chain, if any."""
    previous = ""
    for index, envelope in enumerate(envelopes):
        if envelope["version"] != index + 1:
            return index, f"version {envelope['version']} where {index + 1} was expected"
        expected = chain_hash(previous, envelope)
        if envelope.get("hash") != expected:
            return index, f"hash {envelope.get('hash')!r} does not match recomputed {expected!r}"
        previous = expected
    return None
