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

What placement cannot show is a snapshot whose identity and head hash were copied from
the true one and whose *other* fields were changed: the only check of those is to fold
the events, which is what a snapshot exists to avoid. `verify` does fold and compares
every snapshot with the fold at its version (`state_differences`); loads do not.
With `TICKETFLOW_CIPHER_KEY` set, a row not written with the key does not decrypt (AES-GCM
authenticates it) and is ignored as unreadable. See docs/security.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    Mapper,
    MapperDeserialisationError,
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


class CheckedSnapshots(EventStore[UUID]):
    """The snapshot store the repository reads: a snapshot that is not placed right is
    left out, so the repository folds the stream's events from the start instead."""

    def __init__(self, mapper: Mapper[UUID], recorder: AggregateRecorder,
                 envelope_at: EnvelopeAt) -> None:
        super().__init__(mapper, recorder)
        self.envelope_at = envelope_at

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
            if snapshot is not None and problem is None:
                yield snapshot
            else:
                log.warning("ignored the snapshot of stream %s at version %s (%s); run"
                            " `ticketflow verify`", originator_id, record.originator_version,
                            problem)

    def _envelope_at(self, originator_id: UUID, version: int) -> dict[str, Any] | None:
        try:
            return self.envelope_at(originator_id, version)
        except UNREADABLE:
            return None  # an unreadable event places no snapshot
