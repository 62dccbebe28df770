"""What one transaction of the application service saves, and the streams it reuses.

A `Unit` gathers the streams that commands changed, their receipts and any policy
copies, so that one command, or a whole batch of them, is saved in one transaction.
`StreamCache` keeps committed streams between units. A unit *takes* a stream out of
it (so no other unit can use the same object meanwhile) and gives it back only after
its save succeeded: a stream whose save failed may hold state from events that were
never recorded, so it is dropped and the next unit loads it fresh from the store.
Reusing a cached stream is optimistic: if another process moved the stream on, the
save collides with the newer version and the command is retried from fresh state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ticketflow.domain.streams import Stream


@dataclass
class Unit:
    streams: dict[UUID, Stream] = field(default_factory=dict)  # changed or only read
    events: list[Any] = field(default_factory=list)  # to record, in the order they happened
    #: (tenant, receipt key) recorded here → the body digest it was recorded with
    keys: dict[tuple[str | None, str], str | None] = field(default_factory=dict)
    policies: set[tuple[str, str]] = field(default_factory=set)  # (id, version) published

    def record(self, aggregate: Any) -> None:
        """Queue a one-event aggregate's event (a receipt, a policy copy)."""
        self.events.extend(aggregate.collect_events())


class StreamCache:
    """Committed streams by id, least recently used dropped first; thread-safe."""

    def __init__(self, maxsize: int = 5000) -> None:
        self.maxsize = maxsize
        self._streams: OrderedDict[UUID, Stream] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, stream_id: UUID) -> Stream | None:
        with self._lock:
            return self._streams.pop(stream_id, None)

    def give_back(self, streams: Iterable[Stream]) -> None:
        with self._lock:
            for stream in streams:
                held = self._streams.get(stream.id)
                if held is None or held.version < stream.version:
                    self._streams[stream.id] = stream
                    self._streams.move_to_end(stream.id)
            while len(self._streams) > self.maxsize:
                self._streams.popitem(last=False)
