"""Direct SQL on the event store's rows, behind the application's back (tamper and
encryption tests on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
from sqlalchemy import delete, select, update

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

    def insert_snapshot(self, ticket_id: str, version: int, topic: str, state: bytes) -> None:
        """A snapshot row INSERTed behind the application's back."""
        table = "stored_snapshots" if self.sqlite else "ticketflow_snapshots"
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
