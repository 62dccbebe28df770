"""Tables beside the event store's (read models, webhooks, keys, console sessions),
created by one process at a time.

Processes starting at once on a fresh database all find a table missing and all create
it. On PostgreSQL every one but the first then fails (`duplicate key value violates
unique constraint "pg_type_typname_nsp_index"`, `relation … already exists`): the
server logs an ERROR for each, and the process fails unless it tries again. So on
PostgreSQL a process creates them holding the session advisory lock the event store
takes around its own tables (`SCHEMA_LOCK`, `ticketflow.store`), and only once it holds
it looks for what is missing: the processes that waited find everything made. On
SQLite (one writer at a time, no such lock) a collision — the file locked, a table made
meanwhile — is retried instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

#: PostgreSQL advisory-lock key held while tables are created (the event store's too).
SCHEMA_LOCK = 0x7469636B6574
ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 0.05

Step = Callable[[Connection], None]


def create_missing(engine: Engine, metadata: MetaData, *after: Step) -> None:
    """Create the tables of `metadata` that are missing (with their indexes), then run
    each of `after` (what else comes with them: an index added since, a search table, a
    column widened), in one transaction; on PostgreSQL under `SCHEMA_LOCK`."""
    for attempt in range(ATTEMPTS):
        try:
            with schema_locked(engine) as conn, conn.begin():
                metadata.create_all(conn, checkfirst=True)
                for step in after:
                    step(conn)
            return
        except (IntegrityError, OperationalError, ProgrammingError):
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(FIRST_BACKOFF_SECONDS * 2**attempt)


@contextmanager
def schema_locked(engine: Engine) -> Iterator[Connection]:
    """A connection outside any transaction; on PostgreSQL holding `SCHEMA_LOCK` (a
    session lock: taken and released in transactions of their own, so none stays open
    while the process waits for it)."""
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            yield conn
            return
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
        conn.commit()
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
            conn.commit()
