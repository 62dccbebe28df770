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

from ticketflow.domain.merkle import leaf_hash

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
    """Whether `value` is made only of text, 64-bit integers, booleans, null, lists and
    text-keyed objects. A loop, not recursion (stored data may nest deeply); a
    container's scalars are checked where they are found, only containers are queued:
    this runs for every event hashed and every leaf made."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            children: Any = item.values()
        elif kind is list:
            children = item
        else:
            children = (item,)
        for child in children:
            kind = type(child)
            if kind is str or kind is bool or child is None:
                continue
            if kind is int:
                if not -(2**63) <= child < 2**64:
                    return False
            elif kind is dict or kind is list:
                pending.append(child)
            else:
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


def event_leaf(envelope: dict[str, Any]) -> bytes:
    """The audit log leaf of an event (SPEC §13): SHA-256(0x00 || canonical JSON of its
    whole envelope, its chain hash included)."""
    return leaf_hash(canonical_json(envelope))


#: The envelope's fields whose keys sort before "hash", and after it.
_BEFORE_HASH = tuple(sorted(key for key in ENVELOPE_FIELDS if key < "hash"))
_AFTER_HASH = tuple(sorted(key for key in ENVELOPE_FIELDS if key > "hash"))


def hash_and_leaf(previous_hash: str, envelope: dict[str, Any]) -> tuple[str, bytes]:
    """An event's chain hash (`chain_hash`) and its audit log leaf (`event_leaf` of the
    envelope with that hash),
    from one serialisation: keys are sorted, and "hash" falls between the keys of
    `_BEFORE_HASH` and of `_AFTER_HASH`, so both texts are the two halves' objects
    joined, with or without `"hash":"…"` between them."""
    body = {key: envelope[key] for key in ENVELOPE_FIELDS}
    if not _plain(body):
        found = chain_hash(previous_hash, body)
        return found, event_leaf({**body, "hash": found})
    head = orjson.dumps({key: body[key] for key in _BEFORE_HASH}, option=orjson.OPT_SORT_KEYS)
    tail = orjson.dumps({key: body[key] for key in _AFTER_HASH}, option=orjson.OPT_SORT_KEYS)
    found = hashlib.sha256(previous_hash.encode("ascii") + head[:-1] + b"," + tail[1:]
                           ).hexdigest()
    return found, leaf_hash(head[:-1] + b',"hash":"' + found.encode("ascii") + b'",' + tail[1:])


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
