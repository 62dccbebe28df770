"""The event store as the engine's processes open it: the recorders (creating their
tables, also when several processes open a fresh store at once), and a read-only
`ReadStore` for processes that only read (a replay's helper processes, the query
layer of a read-only door).

`ticketflow.application.TicketingApp` opens the same tables the same way and adds
the write service.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application, project_aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    IntegrityError,
    InternalError,
    Mapper,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    ProgrammingError,
)
from eventsourcing.utils import get_topic

from ticketflow.audit_log import AuditLog
from ticketflow.clock import Clock, default_clock
from ticketflow.ddl import SCHEMA_LOCK
from ticketflow.domain.policy import Policy
from ticketflow.entry_mapper import EntryMapper
from ticketflow.event_log import EventLog
from ticketflow.log_tree import LoggedSQLiteRecorder
from ticketflow.policy_store import PolicyStore
from ticketflow.snapshots import CheckedSnapshots

if TYPE_CHECKING:  # imported when a PostgreSQL store is opened: psycopg loads slowly
    from eventsourcing.postgres import PostgresDatastore

APP_NAME = "ticketflow"
#: Stored events are not compressed (the hash chain is computed over plain JSON).
APP_ENV = {"COMPRESSOR_TOPIC": ""}
CREATE_ATTEMPTS = 10
FIRST_BACKOFF_SECONDS = 0.002
#: PostgreSQL advisory-lock keys: one process at a time creates the tables (the same
#: lock as the tables beside the store's: ticketflow.ddl), or saves a first copy of a
#: policy version (or the store's format mark).
FIRST_SAVE_LOCK = SCHEMA_LOCK + 1

R = TypeVar("R")


class ReadStore(Application[UUID]):
    """The store opened for reading: the event log, the policy versions, a clock."""

    name = APP_NAME
    env = APP_ENV

    def __init__(self, policies: dict[str, Policy], env: dict[str, str] | None = None,
                 clock: Clock | None = None, *, legacy_ids: bool | None = None) -> None:
        super().__init__(env)
        self.clock: Clock = clock or default_clock()
        self.event_log = EventLog(self.recorder, self.mapper, policies)
        self.audit_log = AuditLog(self.event_log)
        self.policy_store = PolicyStore(policies, self.recorder, self.mapper, self.first_save)
        self.event_log.legacy_ids = (self.event_log.legacy_ids_from_format()
                                     if legacy_ids is None else legacy_ids)

    def close(self) -> None:
        """The stored tree's spans this process left behind its log entries (SQLite) are
        written first, so a store at rest holds them all: a reader that cannot write
        still reads heads and proofs from them."""
        audit_log = getattr(self, "audit_log", None)
        if audit_log is not None and audit_log.behind and not self.closing.is_set():
            audit_log.catch_up()
        super().close()

    def construct_mapper(self) -> Mapper[UUID]:
        """eventsourcing's mapper, the audit log's entries written directly
        (ticketflow/entry_mapper.py)."""
        return self.factory.mapper(transcoder=self.construct_transcoder(),
                                   mapper_class=EntryMapper)

    def construct_recorder(self) -> ApplicationRecorder:
        """A process recorder: the events plus Tracking positions, which the outbox
        relay uses to remember how far it has published, and the audit log's stored
        subtree roots (ticketflow.log_tree)."""
        factory: Any = self.factory
        factory.env[factory.PROCESS_RECORDER_TOPIC] = get_topic(
            LoggedSQLiteRecorder if self._datastore() is None else _postgres_recorder())
        return self._creating(self.factory.process_recorder, "events", "tracking", "log_spans")

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """Snapshots checked against the stored event at their version (ticketflow.snapshots)."""
        recorder = self._creating(lambda: self.factory.aggregate_recorder(purpose="snapshots"),
                                  "snapshots")
        return CheckedSnapshots(self.mapper, recorder, self._envelope_at, self._fold_at)

    def _creating(self, make: Callable[[], R], *purposes: str) -> R:
        """On PostgreSQL, one process at a time creates tables (an advisory lock), and
        only if they are missing: eventsourcing's `CREATE TYPE` has no `IF NOT EXISTS`,
        so creating them again leaves an ERROR in the server's log each time."""
        datastore = self._datastore()
        if datastore is None:
            return creating_tables(make)
        prefix = self.factory.env.name.lower()
        with advisory_lock(datastore, SCHEMA_LOCK):
            absent = [p for p in purposes if not _tables_exist(datastore, [f"{prefix}_{p}"])]
            missing = bool(absent)
            factory: Any = self.factory
            factory.env_create_table = lambda: False  # shadows the method for this call
            try:
                recorder = make()
            finally:
                del factory.env_create_table
            if absent == ["log_spans"]:  # a store of the audit log's layout before spans
                cast(Any, recorder).create_tree()
            elif missing:
                _create_tables(datastore, recorder)
            return recorder

    def _datastore(self) -> PostgresDatastore | None:
        factory = getattr(self, "factory", None)
        if not type(factory).__module__.startswith("eventsourcing.postgres"):
            return None  # psycopg is not even loaded for SQLite
        from eventsourcing.postgres import BasePostgresFactory  # noqa: PLC0415 - psycopg: slow
        return factory.datastore if isinstance(factory, BasePostgresFactory) else None

    @contextmanager
    def first_save(self) -> Iterator[None]:
        """Around a check-then-save of a record several processes may save first (a
        policy version's copy, the store's format mark): on PostgreSQL one process at a
        time, so the others find it saved instead of colliding (which PostgreSQL logs
        as an ERROR); elsewhere nothing (SQLite has one writer; collisions are caught)."""
        datastore = self._datastore()
        if datastore is None:
            yield
            return
        with advisory_lock(datastore, FIRST_SAVE_LOCK):
            yield

    def _envelope_at(self, uuid: UUID, version: int) -> dict[str, Any] | None:
        return self.event_log.envelope_at(uuid, version)  # the log is made after the snapshots

    def _fold_at(self, uuid: UUID, version: int) -> Any:
        """The stream folded from every event up to `version`: what checks a snapshot
        no one vouches for (ticketflow.snapshots)."""
        return project_aggregate(None, self.events.get(uuid, lte=version))

    @property
    def process_recorder(self) -> ProcessRecorder:
        return cast(ProcessRecorder, self.recorder)


def _postgres_recorder() -> type:
    from ticketflow.log_tree_postgres import LoggedPostgresRecorder  # noqa: PLC0415 - psycopg
    return LoggedPostgresRecorder


@contextmanager
def advisory_lock(datastore: PostgresDatastore, key: int) -> Iterator[None]:
    """A PostgreSQL session advisory lock, held on a pooled (autocommit) connection."""
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _create_tables(datastore: PostgresDatastore, recorder: Any) -> None:
    """Create a fresh store's tables, without a statement the server would log as an
    ERROR: the composite type if another recorder made it (eventsourcing 9.5 creates it
    without `IF NOT EXISTS`), and the tracking recorder's first read of its table to see
    whether it needs migrating (nothing to migrate on a fresh store)."""
    type_name = getattr(recorder, "stored_event_type_name", None)
    if type_name and _exists(datastore, "to_regtype", type_name):
        recorder.sql_create_statements = [statement for statement
                                          in recorder.sql_create_statements
                                          if "CREATE TYPE" not in statement.as_string()]
    from eventsourcing.postgres import PostgresTrackingRecorder  # noqa: PLC0415
    if isinstance(recorder, PostgresTrackingRecorder):
        recorder.tracking_migration_current = recorder.tracking_migration_previous = None
        super(PostgresTrackingRecorder, recorder).create_table()
    else:
        recorder.create_table()


def _tables_exist(datastore: PostgresDatastore, tables: list[str]) -> bool:
    return all(_exists(datastore, "to_regclass", table) for table in tables)


_LOOK_UP = {"to_regclass": "SELECT to_regclass(%s) AS found",
            "to_regtype": "SELECT to_regtype(%s) AS found"}


def _exists(datastore: PostgresDatastore, function: str, name: str) -> bool:
    """Whether the relation (`to_regclass`) or type (`to_regtype`) exists."""
    with datastore.get_connection() as conn:
        row = conn.execute(_LOOK_UP[function], (f"{datastore.schema}.{name}",)).fetchone()
    return row is not None and row["found"] is not None


def creating_tables(make: Callable[[], R]) -> R:
    """Construct a recorder, whose construction creates its tables if missing.

    Processes opening a fresh store at once all create its tables. On SQLite they
    both insert the table-migration record (eventsourcing 9.5) or collide while
    switching the file to WAL (IntegrityError, "database is locked"); on PostgreSQL
    concurrent DDL fails with "tuple concurrently updated" or "already exists". The
    losers try again and find the tables made. Anything else (a server that is not
    there) fails at once.
    """
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return make()
        except (PersistenceError, sqlite3.OperationalError) as exc:
            if attempt == CREATE_ATTEMPTS - 1 or not _lost_creation_race(exc):
                raise
            time.sleep(FIRST_BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")


def _lost_creation_race(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError | InternalError | ProgrammingError):
        return True
    # eventsourcing wraps most SQLite errors, but not the one from switching to WAL
    locked = isinstance(exc, OperationalError | sqlite3.OperationalError)
    return locked and "locked" in str(exc)


