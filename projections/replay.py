"""`ticketflow replay`: rebuild every read model from the first event, then swap.

The fresh tables (suffix `__next`) fill up while queries keep answering from the
current ones; the swap (drop old, rename new) is one transaction. They are filled
without their secondary indexes, which are built once on the full tables: before the
swap on PostgreSQL (where the swap's DDL blocks readers, so it must stay short),
inside it on SQLite (readers keep their snapshot of the old tables until it commits).

A large history is replayed by several processes at once (one per core, up to four),
each projecting the tickets whose stream id falls to its share: a ticket's events all
go to one process, in order, so the tables end up exactly as one process leaves them.

`upgrade` is the same rebuild, run when the read models are opened and a table's
primary key is not the one this release declares: a database made before ids were
scoped by tenant keys rows by ticket id alone. Such rows cannot be re-keyed in place
(one row may mix two tenants' "T-1"); the events tell them apart.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from ticketflow.event_log import Store
from ticketflow.projections import article_search
from ticketflow.projections.db import NAMES, engine_for, outdated, tables
from ticketflow.projections.runner import POSITION, Projector
from ticketflow.store import ReadStore

log = logging.getLogger(__name__)

NEXT = "__next"
BATCH = 10_000
#: Below this many log entries, one process replays faster than starting more.
PARALLEL_FROM = 100_000

Progress = Callable[[int], None]
#: PostgreSQL advisory lock held by the process upgrading the read models.
UPGRADE_LOCK = zlib.crc32(b"ticketflow: read-model upgrade")
#: Seconds between two progress lines of an upgrade.
UPGRADE_PROGRESS_EVERY = 10.0


def rebuild(app: Store, engine: Engine, progress: Progress | None = None,
            workers: int | None = None) -> int:
    """Project the whole history into fresh tables and swap them in; returns events."""
    tables(NEXT).metadata.drop_all(engine)  # leftovers of an interrupted replay
    with engine.begin() as conn:
        article_search.drop(conn, NEXT)
    fresh = Projector(app, engine, suffix=NEXT, private=True)
    for table in fresh.t.metadata.tables.values():  # built at the end, on full tables
        for index in table.indexes:
            index.drop(engine)
    end = app.event_log.recorder.max_notification_id() or 0
    count = workers or (min(os.cpu_count() or 1, 4) if end >= PARALLEL_FROM else 1)
    if count == 1:
        applied = fresh.catch_up(progress, BATCH, until=end)
        fresh.write_deferred_clocks()
    else:
        applied = _in_processes(app, engine, count, end, progress)
        with engine.begin() as conn:
            fresh.store_position(conn, end)
    _swap(engine, fresh)
    return applied


def _in_processes(app: Store, engine: Engine, count: int, end: int,
                  progress: Progress | None) -> int:
    context = multiprocessing.get_context("spawn")
    done = [context.Value("q", 0) for _ in range(count)]
    url = engine.url.render_as_string(hide_password=False)
    processes = [context.Process(target=_replay_share, name=f"replay-{i}",
                                 args=(app.policy_store.policies, dict(app.env), url,
                                       (i, count), end,
                                       done[i]))
                 for i in range(count)]
    for process in processes:
        process.start()
    while any(process.is_alive() for process in processes):
        if progress:
            progress(sum(value.value for value in done))
        time.sleep(0.2)
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"replay process {', '.join(failed)} failed (its error is above);"
                           " the read models in use are unchanged: run the replay again")
    return sum(value.value for value in done)


def _replay_share(policies: Any, env: dict[str, str], url: str, share: tuple[int, int],
                  end: int, done: Any) -> None:
    """One process's share of a replay (runs in a child process)."""
    with ReadStore(policies, env) as app:
        engine = engine_for(url)
        projector = Projector(app, engine, suffix=NEXT, private=True,
                              position=f"{POSITION}#{share[0]}")
        projector.catch_up(lambda n: setattr(done, "value", n), BATCH, until=end,
                           share=share)
        projector.write_deferred_clocks()
        engine.dispose()


def _swap(engine: Engine, fresh: Projector) -> None:
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        for table in fresh.t.metadata.tables.values():
            for index in table.indexes:
                index.create(engine)
    final = tables().metadata.tables
    with engine.begin() as conn:
        conn.execute(fresh.t.positions.delete().where(fresh.t.positions.c.name != POSITION))
        for name in NAMES:
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
            conn.execute(text(f'ALTER TABLE "{name}{NEXT}" RENAME TO "{name}"'))
            if postgres:  # index names outlive a table rename
                for index_name in [f"{name}_pkey", *(i.name for i in final[name].indexes)]:
                    built = str(index_name).replace(name, f"{name}{NEXT}", 1)
                    conn.execute(text(f'ALTER INDEX IF EXISTS "{built}"'
                                      f' RENAME TO "{index_name}"'))
            else:
                for index in final[name].indexes:
                    index.create(conn)
        article_search.swap(conn, NEXT)


def open_projector(app: Store, engine: Engine) -> Projector:
    """The live projector of a store's read models, those made by an older release
    rebuilt first (`upgrade`). Every door and worker opens its read models this way."""
    upgrade(app, engine)
    return Projector(app, engine)


def upgrade(app: Store, engine: Engine) -> bool:
    """Rebuild the read models if a table has another primary key than this release
    declares (see the module docstring); True if it did. One process upgrades at a
    time; the others wait for it, then find the tables current."""
    if not outdated(engine, tables()):
        return False
    with _upgrading(engine):
        stale = outdated(engine, tables())
        if not stale:
            return False  # another process upgraded them while this one waited
        log.warning("the read models %s were made by an older release (rows keyed by"
                    " ticket id alone, or a table or column missing); rebuilding every read"
                    " model from the event store (as `ticketflow replay --from-start` does)",
                    ", ".join(stale))
        started = time.monotonic()
        applied = rebuild(app, engine, _logged_progress())
        log.warning("read models rebuilt from %d events in %.1f s", applied,
                    time.monotonic() - started)
    return True


def _logged_progress() -> Progress:
    last = time.monotonic()

    def progress(applied: int) -> None:
        nonlocal last
        if time.monotonic() - last >= UPGRADE_PROGRESS_EVERY:
            last = time.monotonic()
            log.warning("rebuilding the read models: %d events applied", applied)
    return progress


@contextmanager
def _upgrading(engine: Engine) -> Iterator[None]:
    """Held while one process upgrades: an advisory lock on PostgreSQL, an exclusive
    lock on a file beside a SQLite database (released by the system if it dies)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": UPGRADE_LOCK})
            conn.commit()  # the lock is the session's: no transaction stays open
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": UPGRADE_LOCK})
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # one connection's database: no other process sees it
        return
    lock = Path(f"{database}.upgrade-lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
            lock.unlink(missing_ok=True)  # done: whoever still waits finds them current
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
