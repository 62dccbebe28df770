"""The audit log as readers see it (SPEC §13; the entries are written by the write
service, domain/audit_log.py): its leaves in order, its head, and the leaves recomputed
from the stored ticket and session events, to compare with it. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ticketflow.domain.audit_log import LOG_ID, event_leaf, label
from ticketflow.domain.merkle import leaf_hash
from ticketflow.event_log import EventLog

PAGE = 1000
#: What a tampered row can make decoding raise (bad JSON, a missing field, bad cipher).
UNREADABLE = (ValueError, KeyError, TypeError)


@dataclass(frozen=True)
class Logged:
    """The log as stored: its leaf hashes in order, and which event each one is (hints)."""

    leaves: list[bytes]
    labels: list[str]
    problems: list[str]  # entries that do not continue the log where it stood


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

    def head(self) -> tuple[int, int]:
        """(the log's version, its tree size); (0, 0) before its first entry."""
        records = self.recorder.select_events(LOG_ID, desc=True, limit=1)
        if not records:
            return 0, 0
        state = self.event_log.decode(records[0])
        return records[0].originator_version, int(state["first"]) + len(state["leaves"])

    def entries(self) -> Iterator[tuple[StoredEvent, dict[str, Any]]]:
        version = 0
        while True:
            records = self.recorder.select_events(LOG_ID, gt=version, limit=PAGE)
            if not records:
                return
            for record in records:
                yield record, self.event_log.decode(record)
            version = records[-1].originator_version

    def logged(self) -> Logged:
        leaves: list[bytes] = []
        labels: list[str] = []
        problems: list[str] = []
        for record, state in self.entries():
            if state["first"] != len(leaves):
                problems.append(f"log entry {record.originator_version} starts at leaf"
                                f" {state['first']}, where the log held {len(leaves)}")
            leaves += [bytes.fromhex(leaf) for leaf in state["leaves"]]
            labels += list(state["labels"])
        return Logged(leaves, labels, problems)

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
