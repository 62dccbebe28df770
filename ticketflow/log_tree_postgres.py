"""The audit log's stored subtree roots on PostgreSQL (`ticketflow.log_tree`): written
after a save's events, under the table lock eventsourcing takes to keep recording order
equal to commit order, so the frontier read there is the latest. Imported only when a
PostgreSQL store is opened (psycopg loads slowly).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL

from ticketflow.domain.merkle import Node
from ticketflow.log_tree import (
    LOG_APPEND,
    LOG_TOPIC,
    LogAppend,
    RecordRow,
    TreeStatements,
    check_backfill,
    head_of,
    node_rows,
    tree_table,
)


class LoggedPostgresRecorder(PostgresProcessRecorder):
    """eventsourcing's PostgreSQL process recorder, also keeping the audit log's tree."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events",
                 tracking_table_name: str = "notification_tracking") -> None:
        super().__init__(datastore, events_table_name=events_table_name,
                         tracking_table_name=tracking_table_name)
        schema = datastore.schema.replace('"', '""')
        table = f'"{schema}"."{tree_table(events_table_name)}"'
        events = f'"{schema}"."{events_table_name}"'
        self.tree = TreeStatements(table, events, "notification_id", "%s")
        index = f'"{tree_table(events_table_name)}_position"'
        self.sql_create_statements += [
            SQL(f"CREATE TABLE IF NOT EXISTS {table} (level integer NOT NULL,"
                " idx bigint NOT NULL, hash bytea NOT NULL, position bigint,"
                " PRIMARY KEY (level, idx))").format(),
            SQL(f"CREATE INDEX IF NOT EXISTS {index} ON {table} (position)"
                " WHERE position IS NOT NULL").format()]

    def _fetch_ids_after_insert_events(self, curs: Cursor[DictRow],
                                       stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        append: LogAppend | None = kwargs.get(LOG_APPEND)
        if append is not None:  # in the transaction, under the table lock
            with curs.connection.cursor() as c:
                c.execute(self.tree.head)
                size, hashes = head_of(c.fetchall())
                if append.backfill_of is not None:
                    c.execute(self.tree.last_entry, (LOG_TOPIC, min(ids or [0])))
                    found = c.fetchone()
                    check_backfill(append, size, found["id"] if found else None)
                c.executemany(self.tree.insert,
                              node_rows(size, hashes, append, ids))
        return ids

    # -- reads (as LoggedSQLiteRecorder's) -----------------------------------------------

    def _rows(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return list(curs.fetchall())

    def tree_size(self) -> tuple[int, bytes | None, int | None]:
        rows = self._rows(self.tree.last_leaf)
        return (0, None, None) if not rows else (
            rows[0]["idx"] + 1, bytes(rows[0]["hash"]), rows[0]["position"])

    def tree_nodes(self, wanted: Collection[Node]) -> Mapping[Node, bytes]:
        keys = list(wanted)
        found: dict[Node, bytes] = {}
        for start in range(0, len(keys), 400):
            chunk = keys[start:start + 400]
            rows = self._rows(self.tree.nodes(len(chunk)), [v for key in chunk for v in key])
            found.update({(r["level"], r["idx"]): bytes(r["hash"]) for r in rows})
        return found

    def tree_leaves_at(self, positions: Collection[int]) -> dict[int, tuple[int, bytes]]:
        wanted = list(positions)
        if not wanted:
            return {}
        rows = self._rows(self.tree.leaves_at(len(wanted)), wanted)
        return {r["position"]: (r["idx"], bytes(r["hash"])) for r in rows}

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
