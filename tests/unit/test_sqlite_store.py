"""A SQLite store's connections keep their compiled statements (ticketflow/sqlite_store.py):
eventsourcing 9.5 opens them with `cached_statements=True`, a cache of one statement."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ticketflow import sqlite_store
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings
from ticketflow.sqlite_store import STATEMENT_CACHE, StatementCachingFactory, StatementCachingPool


def test_a_sqlite_store_is_opened_by_the_statement_caching_factory(tmp_path: Path) -> None:
    with build_app(Settings(db=f"sqlite:///{tmp_path / 's.db'}")) as app:
        factory: Any = app.factory
        assert isinstance(factory, StatementCachingFactory)
        assert isinstance(factory.datastore.pool, StatementCachingPool)
        assert factory.datastore.pool.lock_timeout == 30  # the settings' own, carried over


def test_its_connections_keep_many_statements_in_wal_mode_with_rows_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[dict[str, Any]] = []
    connect = sqlite3.connect

    def spied(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        if kwargs.get("uri"):  # the event store's (eventsourcing opens them by URI)
            opened.append(kwargs)
        return connect(*args, **kwargs)
    monkeypatch.setattr(sqlite_store.sqlite3, "connect", spied)
    with build_app(Settings(db=f"sqlite:///{tmp_path / 's.db'}")) as app:
        assert app.apply(b"not a command").status == "rejected"  # a write and its reads
    assert opened and all(o["cached_statements"] == STATEMENT_CACHE > 100 for o in opened)
    with connect(tmp_path / "s.db") as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    pool = StatementCachingPool(db_name=str(tmp_path / "s.db"))
    made = pool._create_connection()
    try:
        assert made._sqlite_conn.row_factory is sqlite3.Row
        assert made._sqlite_conn.isolation_level is None  # eventsourcing issues BEGIN itself
    finally:
        made.close()
