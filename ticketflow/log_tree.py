"""The audit log's stored subtree roots (SPEC §13; docs/decisions.md): every perfect
subtree of the RFC 9162 tree over the log's leaves — the leaves themselves at level 0,
and each node of 2**level leaves above them — kept in a table beside the events, so a
tree head or a proof reads O(log n) rows (`domain.merkle.StoredTree`) instead of every
leaf.

The rows of a save are written by the store's recorder in the save's own transaction,
after its events: a save that logs events passes a `LogAppend` (keyword `log_append`);
the recorder then holds the store's write lock (SQLite's, or PostgreSQL's table lock
that keeps recording order equal to commit order), reads the tree's frontier — its size
and O(log n) roots — and inserts the nodes the new leaves complete. A leaf's row also
says where its event is stored (its notification id), so a bundle finds a ticket's
leaves without reading the log. The SQL here is what SQLite and PostgreSQL share; the
PostgreSQL recorder is in `log_tree_postgres` (psycopg loads slowly).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteProcessRecorder
from eventsourcing.utils import get_topic

from ticketflow.domain.audit_log import MerkleLog
from ticketflow.domain.merkle import Node, appended_nodes, frontier

LOG_TOPIC = get_topic(MerkleLog.Appended)

#: The keyword of a save (`events.put`, `recorder.insert_events`) that carries its leaves.
LOG_APPEND = "log_append"
#: A record as `record_rows` reads it: (notification id, version, topic, state).
RecordRow = tuple[int, int, str, bytes]
#: Levels the head query looks at: a log of up to 2**48 leaves.
LEVELS = 48


@dataclass(frozen=True)
class LogAppend:
    """What one save adds to the stored tree: its leaves in order, and where each
    one's event is stored — the notification ids of events stored before this save
    (a log's first entry, a backfill), then the indexes among this save's stored events
    of the rest. `backfill_of`: the stored roots of a store written before them are made
    here, from the log's leaves up to its entry at this notification id, which must still
    be the log's last (0: the log had no entry)."""

    leaves: list[bytes]
    stored: list[int | None] = field(default_factory=list)
    saved: list[int] = field(default_factory=list)
    backfill_of: int | None = None


def tree_table(events_table: str) -> str:
    return events_table.removesuffix("_events") + "_log_tree"


class TreeStatements:
    """The SQL both backends run on the tree table (`mark`: their placeholder)."""

    def __init__(self, table: str, events: str, position: str, mark: str) -> None:
        self.table, self.mark = table, mark
        self.head = (
            f"WITH RECURSIVE levels(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM levels"
            f" WHERE h < {LEVELS - 1}),"
            f" size(n) AS (SELECT COALESCE(MAX(idx) + 1, 0) FROM {table} WHERE level = 0)"
            f" SELECT -1 AS level, size.n AS idx, NULL AS hash FROM size"
            f" UNION ALL SELECT m.level, m.idx, m.hash FROM size"
            f" JOIN levels ON ((size.n >> levels.h) & 1) = 1"
            f" JOIN {table} m ON m.level = levels.h AND m.idx = (size.n >> levels.h) - 1")
        self.insert = (f"INSERT INTO {table} (level, idx, hash, position)"
                       f" VALUES ({mark}, {mark}, {mark}, {mark})")
        self.last_entry = (f"SELECT {position} AS id FROM {events} WHERE topic = {mark}"
                           f" AND {position} < {mark} ORDER BY {position} DESC LIMIT 1")
        self.last_leaf = (f"SELECT idx, hash, position FROM {table} WHERE level = 0"
                          f" ORDER BY idx DESC LIMIT 1")
        self.positions = (f"SELECT originator_version AS version, {position} AS id"
                          f" FROM {events} WHERE originator_id = {mark}")
        self.events, self.position = events, position

    def rows(self, topics: int) -> str:
        """A page of records of some topics in recording order, as bare tuples (id,
        version, topic, state): `verify --checkpoint` reads a store's worth."""
        marks = ", ".join([self.mark] * topics)
        return (f"SELECT {self.position}, originator_version, topic, state"
                f" FROM {self.events} WHERE {self.position} >= {self.mark}"
                f" AND {self.position} <= {self.mark} AND topic IN ({marks})"
                f" ORDER BY {self.position} LIMIT {self.mark}")

    def nodes(self, count: int) -> str:
        """`count` nodes by (level, index): a join, one primary-key read each (SQLite
        scans the whole table for `(level, idx) IN (VALUES …)`)."""
        pairs = ", ".join([f"({self.mark}, {self.mark})"] * count)
        return (f"WITH wanted(l, i) AS (VALUES {pairs}) SELECT m.level, m.idx, m.hash"
                f" FROM wanted JOIN {self.table} m ON m.level = wanted.l AND m.idx = wanted.i")

    def leaves_at(self, count: int) -> str:
        marks = ", ".join([self.mark] * count)
        return (f"SELECT position, idx, hash FROM {self.table} WHERE position IS NOT NULL"
                f" AND position IN ({marks})")  # the partial index (only leaves have one)


def head_of(rows: Iterable[Any]) -> tuple[int, list[bytes]]:
    """(size, frontier hashes) from the head query's rows."""
    size, found = 0, {}
    for row in rows:
        if row["level"] < 0:
            size = row["idx"]
        else:
            found[(row["level"], row["idx"])] = bytes(row["hash"])
    return size, [found[node] for node in frontier(size)]


def node_rows(size: int, frontier_hashes: list[bytes], append: LogAppend,
              ids: Sequence[int] | None) -> list[tuple[int, int, bytes, int | None]]:
    """The rows a save inserts: each node its leaves complete, a leaf with where its
    event is stored."""
    saved = [ids[i] if ids else None for i in append.saved]
    positions = [*append.stored, *saved]
    return [(level, index, found, positions[index - size] if level == 0 else None)
            for level, index, found in appended_nodes(size, frontier_hashes, append.leaves)]


def frontier_after(size: int, hashes: list[bytes],
                   rows: list[tuple[int, int, bytes, int | None]]) -> list[bytes]:
    """The frontier once `rows` (an append to a tree of `size` with frontier `hashes`)
    are stored."""
    known = dict(zip(frontier(size), hashes, strict=True))
    known.update({(level, index): found for level, index, found, _ in rows})
    return [known[node] for node in frontier(size + sum(1 for row in rows if row[0] == 0))]


def check_backfill(append: LogAppend, size: int, last_entry: int | None) -> None:
    """A backfill is made from the leaves the log held when it was read: refuse it (the
    save is retried from fresh state) if another writer has since logged or backfilled."""
    if append.backfill_of is None:
        return
    if size or (last_entry or 0) != append.backfill_of:
        raise IntegrityError("the audit log moved on while its stored roots were made")


class LoggedSQLiteRecorder(SQLiteProcessRecorder):
    """eventsourcing's SQLite process recorder, also keeping the audit log's tree."""

    def __init__(self, datastore: SQLiteDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        self.tree_table_name = tree_table(events_table_name)
        super().__init__(datastore, events_table_name=events_table_name)
        self.tree = TreeStatements(self.tree_table_name, events_table_name, "rowid", "?")
        #: (size, last leaf, frontier) of the tree this recorder last appended to
        self._last: tuple[int, bytes, list[bytes]] | None = None

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {self.tree_table_name} (level INTEGER NOT NULL,"
                " idx INTEGER NOT NULL, hash BLOB NOT NULL, position INTEGER,"
                " PRIMARY KEY (level, idx)) WITHOUT ROWID",
                f"CREATE INDEX IF NOT EXISTS {self.tree_table_name}_position ON"
                f" {self.tree_table_name} (position) WHERE position IS NOT NULL"]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        append: LogAppend | None = kwargs.get(LOG_APPEND)
        if append is not None:  # the write lock is held: the events are inserted
            size, hashes = self._frontier(c)
            if append.backfill_of is not None:
                c.execute(self.tree.last_entry, (LOG_TOPIC, min(ids or [0])))
                found = c.fetchone()
                check_backfill(append, size, found["id"] if found else None)
            rows = node_rows(size, hashes, append, ids)
            c.executemany(self.tree.insert, rows)
            self._last = (size + len(append.leaves), append.leaves[-1],
                          frontier_after(size, hashes, rows))
        return ids

    def _frontier(self, c: SQLiteCursor) -> tuple[int, list[bytes]]:
        """The tree's size and frontier: as this recorder last left them if the stored
        tree still ends with the leaf it last wrote (one primary-key read: a save of
        one command is ~1 ms, the 48-level head query ~0.1 ms), else read."""
        c.execute(self.tree.last_leaf)
        row = c.fetchone()
        if self._last is not None and row is not None and \
                (row["idx"] + 1, bytes(row["hash"])) == self._last[:2]:
            return self._last[0], self._last[2]
        c.execute(self.tree.head)
        return head_of(c.fetchall())

    # -- reads ---------------------------------------------------------------------------

    def tree_size(self) -> tuple[int, bytes | None, int | None]:
        """(leaves stored, the last one's hash, where its event is)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.tree.last_leaf)
            row = c.fetchone()
        return (0, None, None) if row is None else (
            row["idx"] + 1, bytes(row["hash"]), row["position"])

    def tree_nodes(self, wanted: Collection[Node]) -> Mapping[Node, bytes]:
        keys = list(wanted)
        found: dict[Node, bytes] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(keys), 400):
                chunk = keys[start:start + 400]
                c.execute(self.tree.nodes(len(chunk)), [v for key in chunk for v in key])
                found.update({(r["level"], r["idx"]): bytes(r["hash"]) for r in c.fetchall()})
        return found

    def tree_leaves_at(self, positions: Collection[int]) -> dict[int, tuple[int, bytes]]:
        """The leaves whose events are stored at these notification ids: (index, hash)."""
        wanted = list(positions)
        if not wanted:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.tree.leaves_at(len(wanted)), wanted)
            return {r["position"]: (r["idx"], bytes(r["hash"])) for r in c.fetchall()}

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

