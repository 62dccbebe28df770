"""The audit log (SPEC §13): every recorded ticket and session event is a leaf of one
append-only RFC 9162 Merkle tree, in recording order.

Each transaction that records stream events records, in the same transaction and after
them, one `MerkleLog.Appended` entry carrying the leaf hashes of those events in their
order (and, as unsigned hints for people, which event each leaf is). The log is the
entries in the store's recording (notification) order, the order every reader of the
store relies on, so concurrent writers never contend for it; an entry's id is made
of its first event's stream and id (`entry_id`). The first entry, which starts
the log (also over the events a store held before it), has one fixed id: two writers
cannot both start it. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ticketflow.domain.chain import event_leaf  # noqa: F401 - re-exported (made beside the hash)
from ticketflow.domain.streams import unscoped_uuid

GENESIS_ID = unscoped_uuid("log", "genesis")


class MerkleLog(Aggregate):
    """Never loaded as an aggregate: its events are read as records (ticketflow.audit_log)."""

    class Appended(Aggregate.Event):
        #: declared, not looked up in vain: a type without it raises (and formats) an
        #: AttributeError for each `getattr(cls, "class_version", 1)`, on every save
        class_version = 1
        leaves: list[str]  # hex SHA-256 leaf hashes, in recording order
        labels: list[str]  # "tenant/ticket_id@version" of each leaf (a hint, not signed)


def label(envelope: dict[str, Any]) -> str:
    return labelled(envelope["tenant"], envelope["ticket_id"], envelope["version"])


def labelled(tenant: str, stream_id: str, version: int) -> str:
    """A leaf's label: "tenant/ticket_id@version" (a hint for people, not signed)."""
    return f"{tenant}/{stream_id}@{version}"


def entry_id(first_event_id: str, at: datetime, near: UUID | None = None) -> UUID:
    """An entry's id. Given `near` (the stream of its first event): that stream's high
    64 bits, then the first event's low 64 bits, so the entry's key in the store's index
    sits beside the stream's own (one index page written for both, where an id of its
    own wrote another; docs/performance.md); two entries sharing one would need two
    streams sharing 64 bits and two of their events another 64. Else (an entry written
    before that): its instant (microseconds) then its first event's id, which inserts
    entries at the end of the index, not all over it (a random id per entry cost the
    write path ~10 % on SQLite)."""
    low = _low_64(first_event_id)
    if near is not None:
        return UUID(int=(near.int >> 64 << 64) | low)
    micros = int(at.timestamp() * 1_000_000) & (2**64 - 1)
    return UUID(int=(micros << 64) | low)


def _low_64(event_id: str) -> int:
    """The low 64 bits of an event id: read off its canonical text (the last 16 hex
    digits, every write's), else parsed."""
    if len(event_id) == 36 and event_id[23] == "-":
        return int(event_id[19:23] + event_id[24:], 16)
    return UUID(event_id).int & (2**64 - 1)


def appended(leaves: list[bytes], labels: list[str], first_event_id: str, at: datetime, *,
             genesis: bool = False, near: UUID | None = None) -> MerkleLog.Appended:
    """The log's entry for events with these leaves and labels, the first of them with
    id `first_event_id`; `genesis`: the one that starts the log; `near`: the stream of
    the first event (`entry_id`)."""
    uuid = GENESIS_ID if genesis else entry_id(first_event_id, at, near)
    return MerkleLog.Appended(  # type: ignore[call-arg]
        originator_id=uuid, originator_version=1, timestamp=at,
        leaves=[leaf.hex() for leaf in leaves], labels=labels)
