"""The audit log as readers see it (SPEC §13; the entries are written by the write
service, domain/audit_log.py): its leaves in recording order, whether it has started,
and the leaves recomputed from the stored ticket and session events, to compare with
it. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ticketflow.domain.audit_log import GENESIS_ID, MerkleLog, event_leaf, label
from ticketflow.domain.merkle import leaf_hash
from ticketflow.event_log import EventLog

LOG_TOPIC = get_topic(MerkleLog.Appended)
#: What a tampered row can make decoding raise (bad JSON, a missing field, bad cipher).
UNREADABLE = (ValueError, KeyError, TypeError)


@dataclass(frozen=True)
class Logged:
    """The log as stored: its leaf hashes in order, and which event each one is (hints)."""

    leaves: list[bytes]
    labels: list[str]
    entries: int


@dataclass(frozen=True)
class StoredLeaf:
    """A stored stream event as a leaf: its hash recomputed from the row as it is now."""

    leaf: bytes
    label: str
    position: int  # in the notification log
    stream: UUID
    version: int
    readable: bool  # False: the row no longer decodes


class AuditLog:
    """Reads of the audit log of one event store."""

    def __init__(self, event_log: EventLog) -> None:
        self.event_log = event_log
        self.recorder = event_log.recorder

    def started(self) -> bool:
        """Whether the log has its first entry (a store from before it has none)."""
        return bool(self.recorder.select_events(GENESIS_ID, limit=1))

    def logged(self) -> Logged:
        """The log's leaves: its entries' in recording order."""
        leaves: list[bytes] = []
        labels: list[str] = []
        entries = 0
        for record in self.event_log.records(topics=[LOG_TOPIC]):
            state = self.event_log.decode(record)
            leaves += [bytes.fromhex(leaf) for leaf in state["leaves"]]
            labels += list(state["labels"])
            entries += 1
        return Logged(leaves, labels, entries)

    def stored(self) -> Iterator[StoredLeaf]:
        """Every stored ticket and session event in recording order, as a leaf (not its
        envelope: a store's worth of leaves is 100-odd bytes an event)."""
        for record in self.event_log.stream_records():
            stream = UUID(str(record.originator_id))
            try:
                envelope = self.event_log.envelope_of(record)
            except UNREADABLE:
                yield StoredLeaf(leaf_hash(record.state), f"unreadable row {record.id}",
                                 record.id, stream, record.originator_version, False)
                continue
            yield StoredLeaf(event_leaf(envelope), label(envelope), record.id, stream,
                             record.originator_version, True)

    def stored_envelopes(self) -> list[dict[str, Any]]:
        """The envelopes of every stored stream event, in recording order (to start the
        log of a store written before it)."""
        return [self.event_log.envelope_of(record) for record in self.event_log.stream_records()]
