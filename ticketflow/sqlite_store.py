"""eventsourcing's SQLite persistence, its connections keeping their compiled statements.

eventsourcing 9.5 opens each SQLite connection with `cached_statements=True`, which the
`sqlite3` module reads as a cache of *one* statement: every statement a save runs (its
`BEGIN`, each insert, the audit log's, its `COMMIT`) was compiled again each time, some
25–35 µs apiece, more than most of them take to run (docs/performance.md). This
factory is eventsourcing's, with a connection pool that opens its connections the same
way but keeps `STATEMENT_CACHE` statements each. `Settings` names it for every
`sqlite:///` store (`PERSISTENCE_MODULE`).
"""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)
from eventsourcing.utils import Environment, EnvType, get_topic

#: Compiled statements a connection keeps (the sqlite3 module's own default is 128): the
#: engine runs fewer distinct ones than this, a page of verify's `IN` lists included.
STATEMENT_CACHE = 256


class StatementCachingPool(SQLiteConnectionPool):
    """eventsourcing's pool, each connection opened as its `_create_connection` opens it
    (WAL journal, rows by name, autocommit with explicit `BEGIN`) but for the cache."""

    def _create_connection(self) -> SQLiteConnection:
        try:
            made = sqlite3.connect(
                database=self.db_name, uri=True, check_same_thread=False,
                isolation_level=None, cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            cursor = made.cursor()
            cursor.execute("PRAGMA journal_mode;")
            if cursor.fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL;")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        made.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=made, max_age=self.max_age)


class StatementCachingFactory(SQLiteFactory):
    """eventsourcing's SQLite factory, its datastore's pool a `StatementCachingPool`
    (made with the same settings; the pool it replaces has opened no connection yet)."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        made = self.datastore.pool
        self.datastore.pool = StatementCachingPool(
            db_name=made.db_name, lock_timeout=made.lock_timeout, pool_size=made.pool_size,
            max_overflow=made.max_overflow, pool_timeout=made.pool_timeout,
            max_age=made.max_age, pre_ping=made.pre_ping,
        )


FACTORY_TOPIC = get_topic(StatementCachingFactory)
