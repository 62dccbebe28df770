"""The audit log as readers see it (SPEC §13; the entries are written by the write
service, domain/audit_log.py): its leaves in recording order, whether it has started,
its tree (from the stored subtree roots, ticketflow/log_tree.py), where a stream's
events are in it, and the leaves recomputed from the stored ticket and session events,
to compare with it. `entry` makes what a save writes; the only write here is
`catch_up`'s, of the stored tree's spans behind the log's entries (a store whose
recorder writes them so: SQLite's).
"""

from __future__ import annotations

import hashlib
import sqlite3
from array import array
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification, PersistenceError

from ticketflow.domain.audit_log import GENESIS_ID, MerkleLog, appended, event_leaf, label
from ticketflow.domain.merkle import Node, StoredTree, Tree, leaf_hash
from ticketflow.event_log import STREAM_TOPICS, EventLog
from ticketflow.log_tree import LOG_TOPIC, LogAppend, RecordRow

#: What a tampered row can make decoding raise (bad JSON, a missing field, bad cipher).
UNREADABLE = (ValueError, KeyError, TypeError)
#: Records read a query when a whole store's leaves are recomputed.
ROWS_PAGE = 10_000
#: Log entries read a query (an entry of a large batch holds thousands of leaves).
ENTRIES_PAGE = 100
#: Saves a process records before one of them also catches the stored tree up (on a store
#: whose spans are written behind its entries): one span row for about this many saves.
CATCH_UP_EVERY = 32
_SORTED = orjson.OPT_SORT_KEYS
_SHA256 = hashlib.sha256


@dataclass(frozen=True)
class Logged:
    """The log as stored: its leaf hashes in order, and which event each one is (hints)."""

    leaves: list[bytes]
    labels: list[str]
    entries: int


@dataclass(frozen=True)
class Recomputed:
    """The stored stream events' leaves in recording order, and where each one is
    stored (its notification id): 40 bytes an event, no object per event."""

    leaves: list[bytes]
    positions: array[int]


@dataclass(frozen=True)
class StoredLeaf:
    """A stored stream event as a leaf: its hash recomputed from the row as it is now."""

    leaf: bytes
    label: str
    position: int  # in the notification log
    stream: UUID
    version: int
    readable: bool  # False: the row no longer decodes


@dataclass(frozen=True)
class Tail:
    """The log's leaves past the stored tree (of `size` leaves), with where each one's
    event is stored; `entry`: the notification id of the last entry read."""

    size: int
    entry: int
    leaves: list[bytes]
    positions: list[int | None]


class StoredRoots(Protocol):
    """What the store's recorder reads of the stored tree (ticketflow.log_tree)."""

    def tree_size(self) -> tuple[int, bytes | None, int | None]: ...
    def tree_nodes(self, wanted: Collection[Node]) -> Mapping[Node, bytes]: ...
    def tree_leaves_at(self, positions: Collection[int]) -> dict[int, tuple[int, bytes]]: ...
    def record_rows(self, start: int, stop: int, topics: Sequence[str],
                    limit: int) -> list[RecordRow]: ...
    def event_positions(self, stream: UUID) -> dict[int, int]: ...
    def last_of(self, topic: str, before: int | None = None) -> Notification | None: ...
    def append_spans(self, append: LogAppend) -> bool: ...
    spans_behind: bool


class AuditLog:
    """Reads of the audit log of one event store."""

    def __init__(self, event_log: EventLog) -> None:
        self.event_log = event_log
        self.recorder = event_log.recorder
        self.roots = cast(StoredRoots, self.recorder)
        self.spans_behind = getattr(self.recorder, "spans_behind", False)
        #: saves recorded by this process since one caught the stored tree up
        self.behind = 0

    def tree(self) -> StoredTree | Tree:
        """The log's tree: read from its stored subtree roots (a head or a proof reads
        O(log n) of them) once they hold every leaf of the log (caught up first, when
        they are written behind the entries); else — a store written before them and not
        since, or one that writers keep ahead of three catch-ups — recomputed from the
        log's leaves."""
        for _attempt in range(3):
            size, last, _ = self.roots.tree_size()
            entry = self.roots.last_of(LOG_TOPIC)
            if entry is None and size == 0:
                return Tree([])
            if entry is not None and last is not None and \
                    bytes.fromhex(self.event_log.decode(entry)["leaves"][-1]) == last:
                return StoredTree(size, self.roots.tree_nodes)
            if not self.spans_behind or not self.catch_up():
                break
        return Tree(self.logged().leaves)

    def catch_up(self) -> bool:
        """Write the spans of the log's leaves past the stored tree, in a transaction of
        their own; whether any were (none: nothing was behind, the tail could not be
        matched to the stored events, another writer moved the log on meanwhile, or the
        store is not writable here: then readers compute the tree from the entries)."""
        tail = self.tail()
        if tail is None or not tail.leaves:
            return False
        try:
            written = self.roots.append_spans(LogAppend(tail.leaves, tail.positions,
                                                        after=(tail.size, tail.entry)))
        except (sqlite3.Error, PersistenceError):  # a store this process cannot write to
            return False
        if written:
            self.behind = 0
        return written

    def tail(self) -> Tail | None:
        """The log's leaves past the stored tree: its entries after the one that ends
        with the tree's last leaf, each leaf with where its event is stored — the stream
        events recorded after the entry before (a save records its events, then their
        entry). Read from the tree's last event on; from the log's start if that finds
        no entry ending with the tree's last leaf right after it (then the tree's size in
        leaves is skipped). None if the log has no entry, none ends at that size, or an
        entry read no longer decodes (a tampered row, which `verify` names: no save or
        close fails on it)."""
        size, last, position = self.roots.tree_size()
        try:
            if size and position is not None:
                found = self._tail_from(position + 1, size, last)
                if found is not None:
                    return found
            return self._tail_from(1, size, None)
        except UNREADABLE:
            return None

    def _tail_from(self, start: int, size: int, last: bytes | None) -> Tail | None:
        """`tail` reading from notification id `start`: the first entry read must end
        with `last` (with no stream event before it), or (`last` None) the first `size`
        leaves read are skipped, up to an entry's end."""
        leaves: list[bytes] = []
        positions: list[int | None] = []
        between: list[int] = []
        skip = None if last is not None else size
        entry = None
        topics = (*STREAM_TOPICS, LOG_TOPIC)
        while True:
            rows = self.roots.record_rows(start, 2**62, topics, ROWS_PAGE)
            for position, _, topic, stored in rows:
                if topic != LOG_TOPIC:
                    between.append(position)
                    continue
                logged = _leaves_of(self._entry_state(stored)["leaves"])
                entry = position
                if skip is None:  # the entry that ends with the tree's last leaf
                    if between or not logged or logged[-1] != last:
                        return None
                    skip = 0
                elif skip:
                    skip -= len(logged)
                    if skip < 0:
                        return None
                else:
                    leaves += logged
                    positions += (between if len(between) == len(logged)
                                  else [None] * len(logged))
                between = []
            if len(rows) < ROWS_PAGE:
                break
            start = rows[-1][0] + 1
        if entry is None or skip:
            return None
        return Tail(size, entry, leaves, positions)

    def _entry_state(self, stored: bytes) -> dict[str, Any]:
        """An entry's state from its row, decrypted and decompressed as every record."""
        decrypt = self.event_log.mapper.cipher
        decompress = self.event_log.mapper.compressor
        plain = decrypt.decrypt(stored) if decrypt else stored
        return cast(dict[str, Any],
                    orjson.loads(decompress.decompress(plain) if decompress else plain))

    def leaf_indexes(self, tree: StoredTree | Tree, stream: UUID,
                     envelopes: Sequence[dict[str, Any]]) -> list[int | None]:
        """Where each of a stream's events is in the log (None: its leaf as stored now is
        in no leaf there): found by where the event is stored, checked by its hash."""
        if isinstance(tree, Tree):
            where = {leaf: index for index, leaf in enumerate(tree.leaves)}
            return [where.get(event_leaf(envelope)) for envelope in envelopes]
        positions = self.roots.event_positions(stream)
        leaves = self.roots.tree_leaves_at(list(positions.values()))
        found: list[int | None] = []
        for envelope in envelopes:
            index, leaf = leaves.get(positions.get(envelope["version"], -1), (None, b""))
            found.append(index if leaf == event_leaf(envelope) else None)
        return found

    def entry(self, saved: list[tuple[int, bytes, str]], first_event_id: str, at: datetime,
              *, genesis: bool, check_roots: bool, near: UUID | None = None,
              ) -> tuple[MerkleLog.Appended, LogAppend | None]:
        """The log's entry for the events a save records — (index among its records,
        leaf, label) each, the first one's id `first_event_id` — and what it adds to the
        stored tree. The log's first entry (`genesis`) also holds every event stored
        before it; `check_roots`: if the log has leaves but no stored roots (written
        before them), the save makes them all; `near`: the stream of the first event,
        which the entry's id is kept beside."""
        if not saved:
            raise ValueError("a log entry needs events")
        earlier = self.stored_envelopes() if genesis else []
        leaves = [event_leaf(e) for _, e in earlier] + [leaf for _, leaf, _ in saved]
        labels = [label(e) for _, e in earlier] + [text for _, _, text in saved]
        entry = appended(leaves, labels, first_event_id, at, genesis=genesis, near=near)
        append = LogAppend(leaves, [p for p, _ in earlier], [n for n, _, _ in saved])
        if check_roots and not genesis and self.roots.tree_size()[0] == 0:
            return entry, self._backfilled(append)
        if genesis or not self.spans_behind:
            return entry, append
        return entry, self._behind(append)

    def _behind(self, append: LogAppend) -> LogAppend | None:
        """What a save on a store whose spans are written behind adds to the stored tree:
        nothing, but at every `CATCH_UP_EVERY`-th save the log's tail then its own."""
        self.behind += 1
        if self.behind < CATCH_UP_EVERY:
            return None
        self.behind = 0
        tail = self.tail()
        if tail is None:
            return None
        return LogAppend(tail.leaves + append.leaves, tail.positions, append.saved,
                         after=(tail.size, tail.entry))

    def entry_of(self, saved: list[tuple[int, dict[str, Any]]], at: datetime, *,
                 genesis: bool, check_roots: bool, near: UUID | None = None,
                 ) -> tuple[MerkleLog.Appended, LogAppend | None]:
        """`entry` for events given by their envelopes (records written elsewhere)."""
        if not saved:
            raise ValueError("a log entry needs events")
        return self.entry([(n, event_leaf(e), label(e)) for n, e in saved],
                          saved[0][1]["event_id"], at, genesis=genesis,
                          check_roots=check_roots, near=near)

    def _backfilled(self, append: LogAppend) -> LogAppend:
        """The stored roots of every leaf logged so far, then the save's: the leaves as
        the log holds them up to its last entry (checked again in the save's transaction),
        each event's position taken from the stream events in recording order (a hint)."""
        last = self.roots.last_of(LOG_TOPIC)
        if last is None:
            return append
        logged = self.logged(stop=last.id).leaves
        positions: list[int | None] = [
            record.id for page in self.event_log.pages(topics=STREAM_TOPICS, stop=last.id)
            for record in page]
        positions = positions[:len(logged)]
        positions += [None] * (len(logged) - len(positions))
        return LogAppend(logged + append.leaves, positions + append.stored, append.saved,
                         backfill_of=last.id)

    def started(self) -> bool:
        """Whether the log has its first entry (a store from before it has none)."""
        return bool(self.recorder.select_events(GENESIS_ID, limit=1))

    def logged(self, stop: int | None = None) -> Logged:
        """The log's leaves: its entries' in recording order (up to notification `stop`),
        read as bare rows (`ENTRIES_PAGE` a query) and decoded by orjson: an entry's
        leaves and labels are lists of text, which the library's transcoder would decode
        the same way."""
        leaves: list[bytes] = []
        labels: list[str] = []
        entries = 0
        start, stop = 1, stop if stop is not None else 2**62
        while True:
            rows = self.roots.record_rows(start, stop, (LOG_TOPIC,), ENTRIES_PAGE)
            for _, _, _, stored in rows:
                state = self._entry_state(stored)
                leaves += _leaves_of(state["leaves"])
                labels += state["labels"]
                entries += 1
            if len(rows) < ENTRIES_PAGE:
                return Logged(leaves, labels, entries)
            start = rows[-1][0] + 1

    def stored(self) -> Iterator[StoredLeaf]:
        """Every stored ticket and session event in recording order, as a leaf (not its
        envelope: a store's worth of leaves is 100-odd bytes an event)."""
        for record in self.event_log.stream_records():
            yield self.stored_leaf(record)

    def stored_leaf(self, record: Notification) -> StoredLeaf:
        """One stored stream event as a leaf, decoded as every reader decodes it."""
        stream = record.originator_id  # a UUID already, as the recorder gives it
        if not isinstance(stream, UUID):
            stream = UUID(str(stream))
        try:
            envelope = self.event_log.envelope_of(record)
        except UNREADABLE:
            return StoredLeaf(leaf_hash(record.state), f"unreadable row {record.id}",
                              record.id, stream, record.originator_version, False)
        return StoredLeaf(event_leaf(envelope), label(envelope), record.id, stream,
                          record.originator_version, True)

    def stored_at(self, position: int) -> StoredLeaf:
        """The stream event stored at a notification id, as a leaf (`stored_leaf`)."""
        return self.stored_leaf(self.recorder.select_notifications(position, 1)[0])

    def recomputed(self, start: int = 1, stop: int | None = None) -> Recomputed:
        """The leaves of the stored stream events from notification id `start` to
        `stop`, read in large pages of bare rows (no `Notification` made per row). Each
        leaf is written by orjson from the row's decoded state (`fast_leaf`), without
        the canonical JSON's check that orjson writes json.dumps' bytes (4-5 µs an
        event): a leaf made so that equals a logged leaf is a real match (the same bytes,
        so the same JSON value); one that does not may differ only in how a float is
        written, so `audit` recomputes it canonically (`stored_at`) before calling it a
        difference."""
        leaves: list[bytes] = []
        positions = array("q")
        decrypt = self.event_log.mapper.cipher
        decompress = self.event_log.mapper.compressor
        stop = stop if stop is not None else 2**62
        kinds = {topic: topic.rsplit(".", 1)[-1] for topic in STREAM_TOPICS}
        while True:
            rows = self.roots.record_rows(start, stop, STREAM_TOPICS, ROWS_PAGE)
            for position, version, topic, stored in rows:
                try:
                    state = decrypt.decrypt(stored) if decrypt else stored
                    if decompress:
                        state = decompress.decompress(state)
                    leaf = fast_leaf(kinds[topic], version, state)
                except (*UNREADABLE, AttributeError):  # not even an object
                    leaf = None
                if leaf is None:  # not the common shape: decoded as readers decode it
                    leaf = self.stored_at(position).leaf
                leaves.append(leaf)
                positions.append(position)
            if len(rows) < ROWS_PAGE:
                return Recomputed(leaves, positions)
            start = rows[-1][0] + 1

    def stored_envelopes(self) -> list[tuple[int, dict[str, Any]]]:
        """The envelopes of every stored stream event with where it is stored, in
        recording order (to start the log of a store written before it)."""
        return [(record.id, self.event_log.envelope_of(record))
                for record in self.event_log.stream_records()]


def _leaves_of(hexes: list[str]) -> list[bytes]:
    """An entry's hex leaves as bytes (converted at once when all are 64 digits)."""
    if set(map(len, hexes)) != {64}:
        return [bytes.fromhex(leaf) for leaf in hexes]
    joined = bytes.fromhex("".join(hexes))
    return [joined[at:at + 32] for at in range(0, len(joined), 32)]


def fast_leaf(kind: str, version: int, state: bytes) -> bytes | None:
    """A stored event's leaf from its state as stored (decrypted and decompressed), of
    event type `kind`, when the state has the shape the write service stores — its two
    instants as the library's `datetime_iso` values and no other encoded value — else
    None (decode it as `EventLog.envelope_of` does). The state's decoded object becomes
    the envelope `envelope_from_state` makes, in place, and is written by orjson with
    sorted keys: equal to the canonical JSON unless it holds a float, and a match is
    exact even where this skips what `make_envelope` does — a logged envelope's instants
    end in +00:00 (so `utc_iso` leaves them), its actor is an object and its hash text."""
    found = orjson.loads(state)
    recorded, occurred = found.pop("timestamp"), found["occurred_at"]
    if state.count(b'"_type_"') != 2 or recorded["_type_"] != "datetime_iso" \
            or occurred["_type_"] != "datetime_iso":
        return None
    found["recorded_at"], found["occurred_at"] = recorded["_data_"], occurred["_data_"]
    found["schema_version"] = found.pop("class_version", 1)
    found.pop("originator_topic", None)  # any other key: no match, decoded the long way
    found["type"], found["version"] = kind, version
    return _SHA256(b"\x00" + orjson.dumps(found, option=_SORTED)).digest()
