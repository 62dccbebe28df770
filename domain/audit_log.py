"""The audit log (SPEC §13): every recorded ticket and session event is a leaf of one
append-only RFC 9162 Merkle tree, in recording order.

The log is a stream of its own. Each transaction that records stream events records, in
the same transaction and after them, one `MerkleLog.Appended` event at the log's next
version, carrying the leaf hashes of those events in their order (and, as unsigned hints
for people, which event each leaf is). The log's version is optimistic-concurrency
checked like any stream's, so two writers can never both extend it from the same size,
and the write path cannot record a stream event that the log lacks. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from ticketflow.domain.chain import canonical_json
from ticketflow.domain.merkle import leaf_hash
from ticketflow.domain.streams import unscoped_uuid

LOG_ID = unscoped_uuid("log", "merkle")


class MerkleLog(Aggregate):
    """Never loaded as an aggregate: its events are read as records (ticketflow.audit_log)."""

    class Appended(Aggregate.Event):
        first: int  # the tree size before this entry: the index of its first leaf
        leaves: list[str]  # hex SHA-256 leaf hashes, in recording order
        labels: list[str]  # "tenant/ticket_id@version" of each leaf (a hint, not signed)


def event_leaf(envelope: dict[str, Any]) -> bytes:
    """The leaf hash of an event: SHA-256(0x00 || canonical JSON of its whole envelope,
    its chain hash included)."""
    return leaf_hash(canonical_json(envelope))


def label(envelope: dict[str, Any]) -> str:
    return f"{envelope['tenant']}/{envelope['ticket_id']}@{envelope['version']}"


def appended(version: int, size: int, envelopes: Iterable[dict[str, Any]],
             at: datetime) -> MerkleLog.Appended | None:
    """The log's entry for these events, at `version` of the log (None: no events)."""
    found = list(envelopes)
    if not found:
        return None
    return MerkleLog.Appended(  # type: ignore[call-arg]
        originator_id=LOG_ID, originator_version=version, timestamp=at, first=size,
        leaves=[event_leaf(envelope).hex() for envelope in found],
        labels=[label(envelope) for envelope in found])
