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
from collections.abc import Callable
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    IntegrityError,
    InternalError,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    ProgrammingError,
)

from ticketflow.audit_log import AuditLog
from ticketflow.clock import Clock, default_clock
from ticketflow.domain.policy import Policy
from ticketflow.event_log import EventLog
from ticketflow.policy_store import PolicyStore
from ticketflow.snapshots import CheckedSnapshots

APP_NAME = "ticketflow"
#: Stored events are not compressed (the hash chain is computed over plain JSON).
APP_ENV = {"COMPRESSOR_TOPIC": ""}
CREATE_ATTEMPTS = 10
FIRST_BACKOFF_SECONDS = 0.002

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
        self.policy_store = PolicyStore(policies, self.recorder, self.mapper)
        self.event_log.legacy_ids = (self.event_log.legacy_ids_from_format()
                                     if legacy_ids is None else legacy_ids)

    def construct_recorder(self) -> ApplicationRecorder:
        """A process recorder: the events plus Tracking positions, which the outbox
        relay uses to remember how far it has published."""
        return creating_tables(self.factory.process_recorder)

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """Snapshots checked against the stored event at their version (ticketflow.snapshots)."""
        recorder = creating_tables(lambda: self.factory.aggregate_recorder(purpose="snapshots"))
        return CheckedSnapshots(self.mapper, recorder, self._envelope_at)

    def _envelope_at(self, uuid: UUID, version: int) -> dict[str, Any] | None:
        return self.event_log.envelope_at(uuid, version)  # the log is made after the snapshots

    @property
    def process_recorder(self) -> ProcessRecorder:
        return cast(ProcessRecorder, self.recorder)


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


