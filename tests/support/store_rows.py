"""Direct SQL on the event store's rows, behind the application's back (tamper and
encryption tests on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy import delete, select, update

from ticketflow.domain.chain import chain_hash
from ticketflow.domain.streams import stream_uuid
from ticketflow.projections.db import engine_for, tables


class StoreRows:
    """Direct SQL on the eventsourcing events table of a SQLite or PostgreSQL store."""

    def __init__(self, db_url: str, tenant: str = "personalysispro") -> None:
        self.url = db_url
        self.tenant = tenant  # whose ticket ids the methods name
        self.sqlite = db_url.startswith("sqlite")

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if self.sqlite:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            with conn:
                rows = conn.execute(sql.format(t="stored_events", p="?"), params).fetchall()
            conn.close()
            return rows
        with psycopg.connect(self.url) as pg:
            cursor = pg.execute(sql.format(t="ticketflow_events", p="%s"), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def _id(self, ticket_id: str) -> Any:
        uuid = stream_uuid("ticket", self.tenant, ticket_id)
        return uuid.hex if self.sqlite else uuid

    def row(self, ticket_id: str, version: int) -> tuple[str, bytes]:
        (found,) = self._run("SELECT topic, state FROM {t} WHERE originator_id = {p}"
                             " AND originator_version = {p}", (self._id(ticket_id), version))
        return found[0], bytes(found[1])

    def put(self, ticket_id: str, version: int, topic: str, state: bytes) -> None:
        self._run("UPDATE {t} SET topic = {p}, state = {p} WHERE originator_id = {p}"
                  " AND originator_version = {p}", (topic, state, self._id(ticket_id), version))

    def delete(self, ticket_id: str, version: int) -> None:
        self._run("DELETE FROM {t} WHERE originator_id = {p} AND originator_version = {p}",
                  (self._id(ticket_id), version))

    def swap(self, ticket_id: str, first: int, second: int) -> None:
        a, b = self.row(ticket_id, first), self.row(ticket_id, second)
        self.put(ticket_id, first, *b)
        self.put(ticket_id, second, *a)

    def edit(self, ticket_id: str, version: int, old: bytes, new: bytes) -> None:
        topic, state = self.row(ticket_id, version)
        assert old in state
        self.put(ticket_id, version, topic, state.replace(old, new))

    def delete_stream(self, uuid: Any) -> None:
        """Every row of a stream (a receipt, say), by its store id."""
        self._run("DELETE FROM {t} WHERE originator_id = {p}",
                  (uuid.hex if self.sqlite else uuid,))

    def insert(self, uuid: Any, version: int, topic: str, state: bytes) -> None:
        """An event row INSERTed behind the application's back (at the log's end)."""
        self._run("INSERT INTO {t} (originator_id, originator_version, topic, state)"
                  " VALUES ({p}, {p}, {p}, {p})",
                  (uuid.hex if self.sqlite else uuid, version, topic, state))

    def stream_rows(self, uuid: Any) -> list[tuple[int, str, bytes]]:
        rows = self._run("SELECT originator_version, topic, state FROM {t} WHERE"
                         " originator_id = {p} ORDER BY originator_version",
                         (uuid.hex if self.sqlite else uuid,))
        return [(row[0], row[1], bytes(row[2])) for row in rows]

    def by_topic(self, topic: str) -> list[tuple[UUID, bytes]]:
        """(stream id, state) of every row of a topic, in recording order."""
        order = "rowid" if self.sqlite else "notification_id"
        rows = self._run("SELECT originator_id, state FROM {t} WHERE topic = {p}"
                         f" ORDER BY {order}", (topic,))
        return [(UUID(str(row[0])), bytes(row[1])) for row in rows]

    def put_row(self, uuid: Any, version: int, state: bytes) -> None:
        self._run("UPDATE {t} SET state = {p} WHERE originator_id = {p}"
                  " AND originator_version = {p}",
                  (state, uuid.hex if self.sqlite else uuid, version))

    def rewrite(self, app: Any, ticket_id: str, version: int, old: bytes, new: bytes) -> None:
        """Edit an event and recompute every later hash of its ticket's chain, so that
        the chain links again: what `verify` without a checkpoint cannot see."""
        self.edit(ticket_id, version, old, new)
        uuid = stream_uuid("ticket", self.tenant, ticket_id)
        previous = ""
        for record in app.event_log.recorder.select_events(uuid):
            envelope = app.event_log.envelope_of(record)
            expected = chain_hash(previous, envelope)
            if envelope["hash"] != expected:
                _, state = self.row(ticket_id, record.originator_version)
                self.put_row(uuid, record.originator_version,
                             state.replace(envelope["hash"].encode(), expected.encode()))
            previous = expected

    def insert_snapshot(self, ticket_id: str, version: int, topic: str, state: bytes) -> None:
        """A snapshot row INSERTed behind the application's back (replacing any row at
        that version)."""
        table = "stored_snapshots" if self.sqlite else "ticketflow_snapshots"
        self._run(f"DELETE FROM {table} WHERE originator_id = {{p}} AND originator_version"
                  " = {p}", (self._id(ticket_id), version))
        self._run(f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                  " VALUES ({p}, {p}, {p}, {p})", (self._id(ticket_id), version, topic, state))

    def states(self) -> list[bytes]:
        """Every stored event's and snapshot's bytes."""
        snapshots = "stored_snapshots" if self.sqlite else "ticketflow_snapshots"
        rows = self._run("SELECT state FROM {t}", ())
        rows += self._run(f"SELECT state FROM {snapshots}", ())
        return [bytes(row[0]) for row in rows]


class TimelineRows:
    """Direct SQL on the timeline read model (rm_timeline), whatever the backend."""

    def __init__(self, db_url: str) -> None:
        self.engine = engine_for(db_url)
        self.table = tables().timeline

    def _where(self, ticket_id: str, version: int) -> Any:
        return (self.table.c.ticket_id == ticket_id) & (self.table.c.version == version)

    def envelope(self, ticket_id: str, version: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            found: dict[str, Any] = conn.execute(select(self.table.c.envelope).where(
                self._where(ticket_id, version))).scalar_one()
        return found

    def edit(self, ticket_id: str, version: int, **fields: Any) -> None:
        """Change fields of the row's envelope (what `timeline` shows)."""
        envelope = {**self.envelope(ticket_id, version), **fields}
        with self.engine.begin() as conn:
            conn.execute(update(self.table).where(self._where(ticket_id, version))
                         .values(envelope=envelope))

    def delete(self, ticket_id: str, version: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(self.table).where(self._where(ticket_id, version)))

    def copy(self, ticket_id: str, version: int, *, to_version: int,
             to_ticket: str | None = None) -> None:
        """INSERT a copy of a row under another version (and ticket), its envelope to match."""
        envelope = self.envelope(ticket_id, version)
        envelope.update(version=to_version, ticket_id=to_ticket or ticket_id)
        with self.engine.begin() as conn:
            conn.execute(self.table.insert().values(
                ticket_id=envelope["ticket_id"], version=to_version, tenant=envelope["tenant"],
                type=envelope["type"], occurred_at=envelope["occurred_at"], envelope=envelope))
