"""Snapshots are a cache of a fold of events, never a source of truth.

A snapshot row says "stream S at version v is this state". The engine only uses one
that is *placed* right: its row decodes as a snapshot of a stream class, the event
store holds an event at version v, and that event's hash, tenant and ticket id are the
snapshot's own head hash (`last_hash`, the chain head the state folds up to), tenant
and stream id. Any other snapshot is ignored — the load folds every event instead —
and logged; `ticketflow verify` names it (ticketflow.verification_copies).

Every snapshot the engine ever wrote carries those three fields: they are attributes
of every stream (`Stream.note_event`), and a snapshot is the aggregate's attributes.
So there is no older format to migrate; a snapshot lacking them is ignored like any
other misplaced one (the fold gives the same state, at the cost of reading every event).

Placement cannot show a snapshot whose identity and head hash were copied from the
true one and whose *other* fields were changed: only a fold of the events up to its
version can. So a load obeys a placed snapshot only if this process vouches for its row:
- it wrote the row itself (`put`), or
- it folded the stream's events up to the snapshot's version once and found the same
  state (`fold_problem`; a row that differs is ignored and logged like a misplaced one),
- or the store is sealed (`TICKETFLOW_CIPHER_KEY`): a row that decrypts was written by a
  holder of the key (AES-GCM authenticates it; one that does not is unreadable, ignored).
Rows vouched for are remembered by their bytes' SHA-256, a bounded number of them
(`VOUCHED_ROWS`, least recently used forgotten): a row changed behind the process's back
has other bytes and is checked again. So an unsealed store pays one full fold per long
stream per process (the first load; a one-shot command line pays it every time), and
nothing after that. `ticketflow verify` folds and compares every snapshot
(ticketflow.verification_copies). See docs/security.md and docs/decisions.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import LRUCache
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    Mapper,
    MapperDeserialisationError,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.ticket import Ticket

log = logging.getLogger(__name__)

SNAPSHOT_TOPIC = get_topic(Snapshot)
STREAM_CLASSES = {get_topic(cls): cls for cls in (Ticket, SelfServiceSession)}
#: What a forged or damaged row can make decoding raise.
UNREADABLE = (ValueError, KeyError, TypeError)
PROBLEM = "forged or stale snapshot"

#: (stream id, version) → the stored event's envelope there, or None.
EnvelopeAt = Callable[[UUID, int], "dict[str, Any] | None"]
#: (stream id, version) → the stream folded from its events up to that version.
FoldAt = Callable[[UUID, int], Any]
#: How many snapshot rows a process remembers having written or checked.
VOUCHED_ROWS = 65_536


def decode(mapper: Mapper[UUID], record: StoredEvent) -> tuple[Snapshot | None, str | None]:
    """The snapshot a row holds, or why it is not one (without importing the row's
    topic: only the library's Snapshot class and the streams' classes are accepted)."""
    if record.topic != SNAPSHOT_TOPIC:
        return None, f"its row is not a snapshot (topic {record.topic!r})"
    try:
        snapshot = mapper.to_domain_event(record)
    except (MapperDeserialisationError, *UNREADABLE) as exc:
        return None, f"its row does not decode ({type(exc).__name__})"
    if not isinstance(snapshot, Snapshot) or not isinstance(snapshot.state, dict):
        return None, "its row does not hold a state"
    if snapshot.topic not in STREAM_CLASSES:
        return None, f"it is of no stream class ({snapshot.topic!r})"
    return snapshot, None


def placement_problem(snapshot: Snapshot, envelope: dict[str, Any] | None,
                      last_version: int | None = None) -> str | None:
    """Why the snapshot is not the summary of the events up to the stored event at its
    version (`envelope`), or None. `last_version`: the stream's, if known (it names a
    snapshot beyond the last event)."""
    version = snapshot.originator_version
    if envelope is None:
        if last_version == 0:
            return f"{PROBLEM}: at version {version} of a stream that has no events"
        if last_version is not None and version > last_version:
            return f"{PROBLEM}: at version {version}, beyond the stream (it ends at version" \
                   f" {last_version})"
        return f"{PROBLEM}: the stream has no event at version {version}"
    state = snapshot.state
    differing = [name for name, field in (("head hash", "hash"), ("tenant", "tenant"),
                                          ("ticket id", "ticket_id"))
                 if state.get(_STATE_FIELD[field]) != envelope[field]]
    if differing:
        return f"{PROBLEM}: its {', '.join(differing)} differ from the stored event at" \
               f" version {version}"
    return None


_STATE_FIELD = {"hash": "last_hash", "tenant": "tenant", "ticket_id": "stream_id"}


def state_differences(mapper: Mapper[UUID], snapshot: Snapshot, folded: Any) -> list[str]:
    """The names of the fields where the snapshot differs from the aggregate folded from
    the events up to its version (compared as stored: encoded, then decoded)."""
    fresh = Snapshot.take(folded).state
    transcoder = mapper.transcoder
    fresh = transcoder.decode(transcoder.encode(fresh))
    stored = snapshot.state
    return sorted(name for name in fresh.keys() | stored.keys()
                  if fresh.get(name, _ABSENT) != stored.get(name, _ABSENT))


_ABSENT = object()


def fold_problem(mapper: Mapper[UUID], snapshot: Snapshot, folded: Any) -> str | None:
    """Why the snapshot is not the fold of the events up to its version, or None."""
    differing = state_differences(mapper, snapshot, folded)
    if not differing:
        return None
    return (f"{PROBLEM}: its {', '.join(differing)} differ from the fold of the events"
            f" up to version {snapshot.originator_version}")


class VouchedRows:
    """The snapshot rows a process wrote or checked against a fold, by their bytes: a
    bounded set (eventsourcing's thread-safe LRU cache: the HTTP server loads from
    several threads), the least recently used forgotten (it is then checked again)."""

    def __init__(self, size: int = VOUCHED_ROWS) -> None:
        self._rows: LRUCache[tuple[UUID | str, int, bytes], None] = LRUCache(maxsize=size)

    @staticmethod
    def key(record: StoredEvent) -> tuple[UUID | str, int, bytes]:
        return (record.originator_id, record.originator_version,
                hashlib.sha256(record.state).digest())

    def add(self, record: StoredEvent) -> None:
        self._rows.put(self.key(record), None)

    def __contains__(self, record: StoredEvent) -> bool:
        try:
            self._rows.get(self.key(record))  # a hit makes it the most recent
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._rows.cache)


class CheckedSnapshots(EventStore[UUID]):
    """The snapshot store the repository reads: a snapshot that is not placed right, or
    that no one vouches for and is not the fold of its events, is left out, so the
    repository folds the stream's events from the start instead."""

    def __init__(self, mapper: Mapper[UUID], recorder: AggregateRecorder,
                 envelope_at: EnvelopeAt, fold_at: FoldAt) -> None:
        super().__init__(mapper, recorder)
        self.envelope_at = envelope_at
        self.fold_at = fold_at
        self.vouched = VouchedRows()

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[UUID]]:
        """Stores snapshots, and remembers their rows as this process's own."""
        records = [self.mapper.to_stored_event(event) for event in domain_events]
        self.recorder.insert_events(records, **kwargs)
        for record in records:
            self.vouched.add(record)
        return []  # a snapshot row has no position in the notification log

    def get(
        self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None,
        desc: bool = False, limit: int | None = None,
    ) -> Iterator[Snapshot]:
        records = self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc,
                                              limit=limit)
        for record in records:
            snapshot, problem = decode(self.mapper, record)
            if snapshot is not None:
                envelope = self._envelope_at(originator_id, record.originator_version)
                problem = placement_problem(snapshot, envelope)
            if snapshot is not None and problem is None and not self._vouched_for(record):
                problem = self._unfolded(snapshot)
                if problem is None:
                    self.vouched.add(record)
            if snapshot is not None and problem is None:
                yield snapshot
            else:
                log.warning("ignored the snapshot of stream %s at version %s (%s); run"
                            " `ticketflow verify`", originator_id, record.originator_version,
                            problem)

    def _vouched_for(self, record: StoredEvent) -> bool:
        return self.mapper.cipher is not None or record in self.vouched

    def _unfolded(self, snapshot: Snapshot) -> str | None:
        try:
            folded = self.fold_at(snapshot.originator_id, snapshot.originator_version)
        except UNREADABLE as exc:
            return f"{PROBLEM}: its events do not fold ({type(exc).__name__})"
        return fold_problem(self.mapper, snapshot, folded)

    def _envelope_at(self, originator_id: UUID, version: int) -> dict[str, Any] | None:
        try:
            return self.envelope_at(originator_id, version)
        except UNREADABLE:
            return None  # an unreadable event places no snapshot
