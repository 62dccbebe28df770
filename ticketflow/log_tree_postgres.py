"""The audit log's stored subtree roots on PostgreSQL (`ticketflow.log_tree`): written
after a save's events, under the table lock eventsourcing takes to keep recording order
equal to commit order, so the frontier read there is the latest. Imported only when a
PostgreSQL store is opened (psycopg loads slowly).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL

from ticketflow.log_tree import (
    LOG_APPEND,
    LogAppend,
    RecordRow,
    SpanTree,
    TreeStatements,
    migrate_nodes,
    spans_table,
    tree_table,
)


class LoggedPostgresRecorder(SpanTree, PostgresProcessRecorder):
    """eventsourcing's PostgreSQL process recorder, also keeping the audit log's tree."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events",
                 tracking_table_name: str = "notification_tracking") -> None:
        super().__init__(datastore, events_table_name=events_table_name,
                         tracking_table_name=tracking_table_name)
        schema = datastore.schema.replace('"', '""')
        table = f'"{schema}"."{spans_table(events_table_name)}"'
        self.events_table = f'"{schema}"."{events_table_name}"'
        self.old_tree_table = f'"{schema}"."{tree_table(events_table_name)}"'
        self.old_tree_name = f"{datastore.schema}.{tree_table(events_table_name)}"
        self.tree = TreeStatements(table, self.events_table, "notification_id", "%s")
        self._last = None
        self.create_spans = SQL(
            f"CREATE TABLE IF NOT EXISTS {table} (first_leaf bigint PRIMARY KEY,"
            " leaves integer NOT NULL, hashes bytea NOT NULL, positions bytea NOT NULL,"
            " last_position bigint)").format()
        self.sql_create_statements += [self.create_spans]

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        super()._create_table(curs)
        self._migrate(curs)

    def create_tree(self) -> None:
        """The spans table of a store made before it (its other tables are there)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.create_spans)
            self._migrate(curs)

    def _migrate(self, curs: Cursor[DictRow]) -> None:
        """A store of the node-per-row layout migrated in the transaction that makes the
        spans table, writers locked out (the lock their inserts take)."""
        curs.execute("SELECT to_regclass(%s) AS found", (self.old_tree_name,))
        found = curs.fetchone()
        if found is not None and found["found"] is not None:
            curs.execute(SQL(f"LOCK TABLE {self.events_table} IN EXCLUSIVE MODE").format())
            migrate_nodes(curs, self.old_tree_table, self.tree)
            curs.execute(SQL(f"DROP TABLE {self.old_tree_table}").format())

    def _fetch_ids_after_insert_events(self, curs: Cursor[DictRow],
                                       stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        append: LogAppend | None = kwargs.get(LOG_APPEND)
        if append is not None:  # in the transaction, under the table lock
            with curs.connection.cursor() as c:
                self.append_tree(c, append, ids)
        return ids

    # -- reads (as LoggedSQLiteRecorder's) -----------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Cursor[DictRow]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

    def _rows(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.reading() as curs:
            curs.execute(statement, params)
            return list(curs.fetchall())

    def record_rows(self, start: int, stop: int, topics: Sequence[str],
                    limit: int) -> list[RecordRow]:
        with self.datastore.get_connection() as conn, \
                conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.tree.rows(len(topics)), [start, stop, *topics, limit])
            return [(r[0], r[1], r[2], bytes(r[3])) for r in curs.fetchall()]

    def event_positions(self, stream: UUID) -> dict[int, int]:
        return {r["version"]: r["id"] for r in self._rows(self.tree.positions, (stream,))}

    def last_of(self, topic: str, before: int | None = None) -> Notification | None:
        rows = self._rows(self.tree.last_entry, (topic, before or 2**62))
        if not rows:
            return None
        found = self.select_notifications(rows[0]["id"], 1)
        return found[0] if found else None
