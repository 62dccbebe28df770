"""The audit log's stored subtree roots (SPEC §13; docs/decisions.md): every perfect
subtree of the RFC 9162 tree over the log's leaves — the leaves themselves at level 0,
and each node of 2**level leaves above them — kept beside the events, so a tree head or
a proof reads O(log n) rows (`domain.merkle.StoredTree`) instead of every leaf.

They are stored by *span*: one row (table `<prefix>_log_spans`) for a run of up to
`SPAN` consecutive leaves, keyed by its first leaf's index, holding each leaf's hash
followed by the hashes of the nodes that leaf completes (`appended_nodes`' order, so a
node's place in the row follows from its index: `hash_offset`), and where each leaf's
event is stored (its notification id). A save that logs a command's events adds one
row at the end of one B-tree — one page written at commit, where a row per node wrote
the end page of each level it touched and of a position index (docs/performance.md).
A node is found through the leaf that completes it (the span starting at or before
it); a leaf through where its event is stored by bisecting the spans, whose
positions grow with their index (the log is in recording order), so no second index.

The rows are written by the store's recorder in a save's transaction, after its
events: a save that adds leaves to the stored tree passes a `LogAppend` (keyword
`log_append`); the recorder then holds the store's write lock (SQLite's, or
PostgreSQL's table lock that keeps recording order equal to commit order), reads the
tree's frontier — its size and O(log n) roots — and inserts the spans of the new leaves.
On PostgreSQL every save that logs events does. On SQLite (`spans_behind`) they are
written behind the log's entries, which stay in each save's transaction: every
`CATCH_UP_EVERY`-th save of a process adds the leaves of the entries recorded since the
tree's end (the log's tail, `AuditLog.tail`) before its own, and a read of the tree adds
them first (`append_spans`, a transaction of its own); either writes only if the tree
and the log's last entry are still as the tail was read (`LogAppend.after`), so a tail
overtaken by another writer is read again later, never written with a gap. A store in the layout
before (`<prefix>_log_tree`, a row per node) is copied into spans, and that table
dropped, when the store is opened (`migrate_nodes`). The SQL here is what SQLite and
PostgreSQL share; the PostgreSQL recorder is in `log_tree_postgres` (psycopg loads
slowly).
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteProcessRecorder
from eventsourcing.utils import get_topic

from ticketflow.domain.audit_log import MerkleLog
from ticketflow.domain.merkle import Node, append_leaves, frontier

LOG_TOPIC = get_topic(MerkleLog.Appended)

#: The keyword of a save (`events.put`, `recorder.insert_events`) that carries its leaves.
LOG_APPEND = "log_append"
#: A record as `record_rows` reads it: (notification id, version, topic, state).
RecordRow = tuple[int, int, str, bytes]
#: Leaves a span row holds at most (a save of more writes several rows): ~16 KiB.
SPAN = 256
#: A span row: (first leaf, leaves, hashes, positions, last known position).
SpanRow = tuple[int, int, bytes, bytes, int | None]
#: Where a leaf's event is stored, 8 bytes a leaf; -1 when not known (a backfill's hint).
_POSITION = struct.Struct("<q")
#: Leaves the migration from the node-per-row layout copies a step.
MIGRATION_PAGE = 65_536


@dataclass(frozen=True)
class LogAppend:
    """What one save adds to the stored tree: its leaves in order, and where each
    one's event is stored — the notification ids of events stored before this save
    (a log's first entry, a backfill), then the indexes among this save's stored events
    of the rest. `backfill_of`: the stored roots of a store written before them are made
    here, from the log's leaves up to its entry at this notification id, which must still
    be the log's last (0: the log had no entry). `after`: (tree size, entry id) — leaves
    that catch the stored tree up with the log (`AuditLog.catch_up`), read when the tree
    had that size and that entry was the log's last: written only if both still hold in
    the save's transaction (before its own events), else nothing is (another writer
    caught up, or logged, meanwhile: the next catch-up reads them)."""

    leaves: list[bytes]
    stored: list[int | None] = field(default_factory=list)
    saved: list[int] = field(default_factory=list)
    backfill_of: int | None = None
    after: tuple[int, int] | None = None


def tree_table(events_table: str) -> str:
    """The table of the layout before spans, one row per node (migrated, then dropped)."""
    return events_table.removesuffix("_events") + "_log_tree"


def spans_table(events_table: str) -> str:
    return events_table.removesuffix("_events") + "_log_spans"


def _completed_before(m: int) -> int:
    """Nodes above the leaves completed by leaves 0..m-1: the sum over k = 1..m of the
    trailing zeros of k (leaf k-1 completes that many), which is m - popcount(m)."""
    return m - m.bit_count()


def hash_offset(first: int, leaf: int, level: int) -> int:
    """Where, among the hashes of the span that starts at leaf `first`, is the node of
    `level` that leaf `leaf` completes (level 0: the leaf itself). Leaf i is followed
    by the trailing zeros of i + 1 nodes; so before leaf `leaf` come its predecessors in
    the span and the nodes they complete."""
    return (leaf - first) + _completed_before(leaf) - _completed_before(first) + level


def completing_leaf(node: Node) -> int:
    """The leaf whose arrival completes `node` (its last)."""
    level, index = node
    return ((index + 1) << level) - 1


class TreeStatements:
    """The SQL both backends run on the spans table (`mark`: their placeholder)."""

    def __init__(self, table: str, events: str, position: str, mark: str) -> None:
        self.table, self.mark = table, mark
        columns = "first_leaf, leaves, hashes, positions, last_position"
        self.columns = columns
        self.insert = (f"INSERT INTO {table} ({columns})"
                       f" VALUES ({mark}, {mark}, {mark}, {mark}, {mark})")
        self.last_span = f"SELECT {columns} FROM {table} ORDER BY first_leaf DESC LIMIT 1"
        self.span_at = (f"SELECT {columns} FROM {table} WHERE first_leaf <= {mark}"
                        f" ORDER BY first_leaf DESC LIMIT 1")
        self.last_entry = (f"SELECT {position} AS id FROM {events} WHERE topic = {mark}"
                           f" AND {position} < {mark} ORDER BY {position} DESC LIMIT 1")
        self.positions = (f"SELECT originator_version AS version, {position} AS id"
                          f" FROM {events} WHERE originator_id = {mark}")
        self.count = f"SELECT COUNT(*) AS n FROM {table}"
        self.events, self.position = events, position

    def rows(self, topics: int) -> str:
        """A page of records of some topics in recording order, as bare tuples (id,
        version, topic, state): `verify --checkpoint` reads a store's worth."""
        marks = ", ".join([self.mark] * topics)
        return (f"SELECT {self.position}, originator_version, topic, state"
                f" FROM {self.events} WHERE {self.position} >= {self.mark}"
                f" AND {self.position} <= {self.mark} AND topic IN ({marks})"
                f" ORDER BY {self.position} LIMIT {self.mark}")

    def spans_of(self, count: int) -> str:
        """The spans holding `count` leaves: a primary-key seek each."""
        marks = ", ".join([f"({self.mark})"] * count)
        return (f"WITH wanted(leaf) AS (VALUES {marks}) SELECT {self.columns}"
                f" FROM {self.table} WHERE first_leaf IN (SELECT (SELECT first_leaf FROM"
                f" {self.table} WHERE first_leaf <= wanted.leaf ORDER BY first_leaf DESC"
                f" LIMIT 1) FROM wanted)")


@dataclass(frozen=True)
class Span:
    """A span row as read."""

    first: int
    size: int
    hashes: bytes
    positions: bytes
    last_position: int | None

    @staticmethod
    def of(row: Any) -> Span:
        return Span(row["first_leaf"], row["leaves"], bytes(row["hashes"]),
                    bytes(row["positions"]), row["last_position"])

    @property
    def end(self) -> int:
        return self.first + self.size

    def node(self, node: Node) -> bytes:
        at = 32 * hash_offset(self.first, completing_leaf(node), node[0])
        return self.hashes[at:at + 32]

    def position(self, leaf: int) -> int | None:
        (found,) = _POSITION.unpack_from(self.positions, 8 * (leaf - self.first))
        return None if found < 0 else found

    def leaf_at(self, position: int) -> int | None:
        """The index of the leaf whose event is stored at `position`, if in this span."""
        for k, (found,) in enumerate(_POSITION.iter_unpack(self.positions)):
            if found == position:
                return self.first + k
        return None


def span_rows(size: int, frontier_hashes: list[bytes], append: LogAppend,
              ids: Sequence[int] | None, last_position: int | None,
              ) -> tuple[list[SpanRow], list[bytes]]:
    """The rows a save inserts — its leaves with the nodes they complete, in spans of up
    to `SPAN` leaves, each leaf with where its event is stored — and the frontier once
    they are stored."""
    made, after = append_leaves(size, frontier_hashes, append.leaves)
    saved = [ids[i] if ids else None for i in append.saved]
    positions = [*append.stored, *saved]
    if len(positions) != len(append.leaves):
        raise ValueError("a log append needs a position (or None) for each leaf")
    return spans_of(size, [h for _, _, h in made], positions, last_position), after


def spans_of(size: int, hashes: list[bytes], positions: Sequence[int | None],
             last_position: int | None) -> list[SpanRow]:
    """Span rows for leaves from index `size` on, given their hashes and their nodes'
    in `appended_nodes`' order, and their events' positions. A span's last known
    position carries on from the span before it when it knows none (a backfill's
    leaves past the stream events it found), so the column never decreases."""
    rows: list[SpanRow] = []
    taken = 0
    for first in range(0, len(positions), SPAN):
        count = min(SPAN, len(positions) - first)
        start = size + first
        emitted = count + _completed_before(start + count) - _completed_before(start)
        known = [-1 if p is None else p for p in positions[first:first + count]]
        last_position = max(*known, -1 if last_position is None else last_position)
        rows.append((start, count, b"".join(hashes[taken:taken + emitted]),
                     struct.pack(f"<{count}q", *known),
                     None if last_position < 0 else last_position))
        taken += emitted
    return rows


def check_backfill(append: LogAppend, size: int, last_entry: int | None) -> None:
    """A backfill is made from the leaves the log held when it was read: refuse it (the
    save is retried from fresh state) if another writer has since logged or backfilled."""
    if append.backfill_of is None:
        return
    if size or (last_entry or 0) != append.backfill_of:
        raise IntegrityError("the audit log moved on while its stored roots were made")


class SpanTree:
    """Reads and writes of the spans, for a recorder of either backend: `reading` opens
    a cursor (its rows read by column name), `tree` is its SQL."""

    tree: TreeStatements
    #: whether a save's spans may be written behind its entry, by a later save or read
    #: (`AuditLog.catch_up`), which `append_spans` then writes on their own
    spans_behind = False
    #: (size, the last span's hashes, frontier, last known position) of the tree this
    #: recorder last appended to
    _last: tuple[int, bytes, list[bytes], int | None] | None = None

    def reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def append_tree(self, c: Any, append: LogAppend, ids: Sequence[int] | None) -> None:
        """In the save's transaction, under its write lock, after its events: appended
        to the tree as this recorder last left it if the backend can tell that no one has
        appended since (`insert_after_last`), else to the tree's frontier as read. Leaves
        read as the log's tail (`append.after`) are written only if the tree still has
        the size it had and the entry read last is still the log's last before the save's
        own records (or the log's last, for a catch-up on its own); else nothing is."""
        expected = None
        if append.after is not None:
            expected, entry = append.after
            c.execute(self.tree.last_entry, (LOG_TOPIC, min(ids) if ids else 2**62))
            found = c.fetchone()
            if found is None or found["id"] != entry:
                return
        last = self._last
        if last is not None and append.backfill_of is None and expected in (None, last[0]):
            rows, after = span_rows(last[0], last[2], append, ids, last[3])
            if self.insert_after_last(c, rows):
                self.appended((last[0] + len(append.leaves), rows[-1][2], after, rows[-1][4]))
                return
        size, hashes, last_position = self._frontier(c)
        if expected is not None and size != expected:
            return
        if append.backfill_of is not None:
            c.execute(self.tree.last_entry, (LOG_TOPIC, min(ids or [0])))
            found = c.fetchone()
            check_backfill(append, size, found["id"] if found else None)
        rows, after = span_rows(size, hashes, append, ids, last_position)
        if len(rows) == 1:
            c.execute(self.tree.insert, rows[0])
        else:
            c.executemany(self.tree.insert, rows)
        self.appended((size + len(append.leaves), rows[-1][2], after, rows[-1][4]))

    def append_spans(self, append: LogAppend) -> bool:
        """A catch-up's spans (`append.after` set) in a transaction of their own; whether
        they were written."""
        raise NotImplementedError

    def insert_after_last(self, c: Any, rows: list[SpanRow]) -> bool:
        """Insert the rows of a save made from `_last`, if that is still the tree's end;
        False (nothing inserted, the transaction still usable) if it cannot tell."""
        return False

    def appended(self, tree: tuple[int, bytes, list[bytes], int | None]) -> None:
        """The tree as a save leaves it: (size, its last span's hashes, frontier, last
        known position)."""
        self._last = tree

    def _frontier(self, c: Any) -> tuple[int, list[bytes], int | None]:
        """The tree's size, frontier and last known position: as this recorder last left
        them if the stored tree still ends with the span it last wrote (one primary-key
        read at the end of the table), else read (O(log n) spans)."""
        c.execute(self.tree.last_span)
        row = c.fetchone()
        if row is None:
            return 0, [], None
        last = self._last
        if last is not None and row["first_leaf"] + row["leaves"] == last[0] \
                and row["hashes"] == last[1]:
            return last[0], last[2], last[3]
        span = Span.of(row)
        wanted = frontier(span.end)
        found = self._nodes(c, wanted)
        return span.end, [found[node] for node in wanted], span.last_position

    def _nodes(self, c: Any, wanted: Collection[Node]) -> dict[Node, bytes]:
        """The stored nodes among `wanted` (400 leaves a query)."""
        leaves = sorted({completing_leaf(node) for node in wanted})
        spans: list[Span] = []
        for start in range(0, len(leaves), 400):
            chunk = leaves[start:start + 400]
            c.execute(self.tree.spans_of(len(chunk)), chunk)
            spans += [Span.of(row) for row in c.fetchall()]
        spans.sort(key=lambda span: span.first)
        found: dict[Node, bytes] = {}
        for node in wanted:
            leaf = completing_leaf(node)
            span = _holding(spans, leaf)
            if span is not None:
                found[node] = span.node(node)
        return found

    # -- reads ---------------------------------------------------------------------------

    def tree_size(self) -> tuple[int, bytes | None, int | None]:
        """(leaves stored, the last one's hash, where its event is)."""
        with self.reading() as c:
            c.execute(self.tree.last_span)
            row = c.fetchone()
        if row is None:
            return 0, None, None
        span = Span.of(row)
        return span.end, span.node((0, span.end - 1)), span.position(span.end - 1)

    def tree_nodes(self, wanted: Collection[Node]) -> Mapping[Node, bytes]:
        with self.reading() as c:
            return self._nodes(c, wanted)

    def tree_leaves_at(self, positions: Collection[int]) -> dict[int, tuple[int, bytes]]:
        """The leaves whose events are stored at these notification ids: (index, hash).
        Each is sought by bisecting the spans on their last known position (which grows
        with the leaves' index): O(log n) primary-key reads, no index on positions."""
        wanted = sorted(set(positions))
        if not wanted:
            return {}
        found: dict[int, tuple[int, bytes]] = {}
        with self.reading() as c:
            c.execute(self.tree.last_span)
            row = c.fetchone()
            if row is None:
                return {}
            size = Span.of(row).end

            def span_at(leaf: int) -> Span | None:
                c.execute(self.tree.span_at, (leaf,))
                found = c.fetchone()
                return None if found is None else Span.of(found)
            span: Span | None = None
            for position in wanted:  # in order: each span found is at or after the last
                if span is None or span.last_position is None or \
                        span.last_position < position:
                    span = _bisect(span_at, span.first if span else 0, size, position)
                    if span is None:
                        break  # stored after the log's last leaf
                leaf = span.leaf_at(position)
                if leaf is not None:
                    found[position] = (leaf, span.node((0, leaf)))
        return found


def _holding(spans: Sequence[Span], leaf: int) -> Span | None:
    """The span (of `spans`, by first leaf) that holds `leaf`."""
    lo, hi = 0, len(spans)
    while lo < hi:
        mid = (lo + hi) // 2
        if spans[mid].first <= leaf:
            lo = mid + 1
        else:
            hi = mid
    return spans[lo - 1] if lo and leaf < spans[lo - 1].end else None


def _bisect(span_at: Callable[[int], Span | None], lo: int, size: int,
            position: int) -> Span | None:
    """The first span from leaf `lo` on (of a tree of `size` leaves) whose last known
    position is at or after `position`: the one that holds the leaf stored there, if any
    does. `span_at(leaf)`: the last span starting at or before `leaf` (which may end
    before it, if a row was deleted)."""
    hi, found = size, None
    while lo < hi:
        mid = (lo + hi) // 2
        span = span_at(mid)
        if span is None:
            lo = mid + 1
        elif span.last_position is not None and span.last_position >= position:
            found, hi = span, span.first
        else:
            lo = max(span.end, mid + 1)
    return found


class Incomplete(Exception):
    """The node-per-row table lacks a node: nothing is copied from it."""


def migrate_nodes(c: Any, old: str, statements: TreeStatements) -> int:
    """Copy the stored roots of the layout before spans (`old`: a row per node, level
    0 the leaves with their positions) into spans, in the cursor's transaction, and
    return the leaves copied. The nodes are copied, not recomputed, so a changed stored
    root stays as changed as it was (`verify --checkpoint` names it). Nothing is copied
    if spans are already stored (another process migrated, or wrote, first) or if the
    old table lacks a row (a tree with a hole): then the next save makes the stored
    roots afresh from the log's entries, as for a store written before them. The caller
    drops `old`."""
    c.execute(statements.count)
    if c.fetchone()["n"]:
        return 0
    mark = statements.mark
    c.execute(f"SELECT COUNT(*) AS n, MAX(idx) AS top FROM {old} WHERE level = 0")
    row = c.fetchone()
    size = 0 if row["top"] is None else row["top"] + 1
    if row["n"] != size:
        return 0
    last_position: int | None = None
    try:
        for start in range(0, size, MIGRATION_PAGE):
            stop = min(size, start + MIGRATION_PAGE)
            hashes, positions = _old_page(c, old, mark, start, stop)
            rows = spans_of(start, hashes, positions, last_position)
            c.executemany(statements.insert, rows)
            last_position = rows[-1][4]
    except Incomplete:
        c.execute(f"DELETE FROM {statements.table}")
        return 0
    return size


def _old_page(c: Any, old: str, mark: str, start: int,
              stop: int) -> tuple[list[bytes], list[int | None]]:
    """Leaves `start`..`stop - 1` of the node-per-row table, each followed by the nodes
    it completes (`appended_nodes`' order), and their positions."""
    c.execute(f"SELECT idx, hash, position FROM {old} WHERE level = 0 AND idx >= {mark}"
              f" AND idx < {mark} ORDER BY idx", (start, stop))
    leaves = [(bytes(r["hash"]), r["position"]) for r in c.fetchall()]
    if len(leaves) != stop - start:
        raise Incomplete
    above: dict[Node, bytes] = {}
    for level in range(1, stop.bit_length() + 1):
        lo, hi = ((start + (1 << level)) >> level) - 1, (stop >> level) - 1
        if hi < lo:
            continue
        c.execute(f"SELECT idx, hash FROM {old} WHERE level = {mark} AND idx >= {mark}"
                  f" AND idx <= {mark}", (level, lo, hi))
        above.update({(level, r["idx"]): bytes(r["hash"]) for r in c.fetchall()})
    hashes: list[bytes] = []
    for leaf, (found, _) in enumerate(leaves, start=start):
        hashes.append(found)
        for level in range(1, ((leaf + 1) & -(leaf + 1)).bit_length()):
            node = above.get((level, ((leaf + 1) >> level) - 1))
            if node is None:
                raise Incomplete
            hashes.append(node)
    return hashes, [position for _, position in leaves]


class LoggedSQLiteRecorder(SpanTree, SQLiteProcessRecorder):
    """eventsourcing's SQLite process recorder, also keeping the audit log's tree. Its
    saves' spans are written behind their entries (`spans_behind`): a span row is a page
    of its own at each commit, a third of what a command writes without the log
    (docs/performance.md)."""

    spans_behind = True

    def __init__(self, datastore: SQLiteDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        self.tree_table_name = spans_table(events_table_name)
        self.old_tree_table_name = tree_table(events_table_name)
        super().__init__(datastore, events_table_name=events_table_name)
        self.tree = TreeStatements(self.tree_table_name, events_table_name, "rowid", "?")
        self._last = None
        self._saving = threading.local()

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {self.tree_table_name} (first_leaf INTEGER"
                " PRIMARY KEY, leaves INTEGER NOT NULL, hashes BLOB NOT NULL,"
                " positions BLOB NOT NULL, last_position INTEGER)"]

    def _create_table(self, c: SQLiteCursor) -> None:
        """The tables, and a store of the node-per-row layout migrated (in the same
        transaction: a process that opens it meanwhile waits for the write lock)."""
        super()._create_table(c)
        c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                  (self.old_tree_table_name,))
        if c.fetchone() is not None:
            migrate_nodes(c, self.old_tree_table_name, self.tree)
            c.execute(f"DROP TABLE {self.old_tree_table_name}")

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """A save; the tree as it leaves it is taken as known (`_last`) only once it has
        committed (a save rolled back leaves `_last` a tree that was committed)."""
        self._saving.tree = None
        ids = super().insert_events(stored_events, **kwargs)
        if self._saving.tree is not None:
            self._last = self._saving.tree
        return ids

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        append: LogAppend | None = kwargs.get(LOG_APPEND)
        if append is not None:  # the write lock is held: the events are inserted
            self.append_tree(c, append, ids)
        return ids

    def append_spans(self, append: LogAppend) -> bool:
        """The write lock taken first (`BEGIN IMMEDIATE`), so what `append_tree` reads is
        the latest and its insert cannot find the snapshot it read outdated."""
        self._saving.tree = None
        with self.datastore.get_connection(commit=True) as conn:
            c = conn.cursor()
            c.execute("BEGIN IMMEDIATE")
            try:
                self.append_tree(c, append, None)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        if self._saving.tree is None:
            return False
        self._last = self._saving.tree
        return True

    def insert_after_last(self, c: Any, rows: list[SpanRow]) -> bool:
        """The tree only grows, by rows that start where it ends, and `_last` is only
        ever a tree some save committed: if another writer has appended since, a row
        starts where `_last` ends, and the insert fails on the primary key (which
        aborts that statement only, not the transaction). So no read of the tree's end
        (docs/performance.md)."""
        try:
            c.sqlite_cursor.executemany(self.tree.insert, rows)
        except sqlite3.IntegrityError:
            return False
        return True

    def appended(self, tree: tuple[int, bytes, list[bytes], int | None]) -> None:
        self._saving.tree = tree  # `_last` once the transaction commits (insert_events)

    # -- reads ---------------------------------------------------------------------------

    def reading(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=False)

    def record_rows(self, start: int, stop: int, topics: Sequence[str],
                    limit: int) -> list[RecordRow]:
        """Up to `limit` records of `topics` from notification id `start` to `stop`, as
        tuples: no `Notification` (nor UUID) made per row."""
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None  # this cursor's rows as tuples (the pool's are Rows)
            cursor.execute(self.tree.rows(len(topics)), [start, stop, *topics, limit])
            return cursor.fetchall()

    def event_positions(self, stream: UUID) -> dict[int, int]:
        """Where each version of a stream is stored (its notification id)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.tree.positions, (stream.hex,))
            return {r["version"]: r["id"] for r in c.fetchall()}

    def last_of(self, topic: str, before: int | None = None) -> Notification | None:
        """The last record of `topic` (before notification id `before`)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.tree.last_entry, (topic, before or 2**62))
            row = c.fetchone()
        if row is None:
            return None
        found = self.select_notifications(row["id"], 1)
        return found[0] if found else None
