"""`ticketflow replay`: rebuild every read model from the first event, then swap.

The fresh tables (suffix `__next`) fill up while queries keep answering from the
current ones; the swap (drop old, rename new) is one transaction. They are filled
without their secondary indexes, which are built once on the full tables: before the
swap on PostgreSQL (where the swap's DDL blocks readers, so it must stay short),
inside it on SQLite (readers keep their snapshot of the old tables until it commits).

A large history is replayed by several processes at once (one per core, up to four),
each projecting the tickets whose stream id falls to its share: a ticket's events all
go to one process, in order, so the tables end up exactly as one process leaves them.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from ticketflow.application import TicketingApp
from ticketflow.projections.db import NAMES, engine_for, tables
from ticketflow.projections.runner import POSITION, Projector

NEXT = "__next"
BATCH = 10_000
#: Below this many log entries, one process replays faster than starting more.
PARALLEL_FROM = 100_000

Progress = Callable[[int], None]


def rebuild(app: TicketingApp, engine: Engine, progress: Progress | None = None,
            workers: int | None = None) -> int:
    """Project the whole history into fresh tables and swap them in; returns events."""
    tables(NEXT).metadata.drop_all(engine)  # leftovers of an interrupted replay
    fresh = Projector(app, engine, suffix=NEXT, private=True)
    for table in fresh.t.metadata.tables.values():  # built at the end, on full tables
        for index in table.indexes:
            index.drop(engine)
    end = app.recorder.max_notification_id() or 0
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


def _in_processes(app: TicketingApp, engine: Engine, count: int, end: int,
                  progress: Progress | None) -> int:
    context = multiprocessing.get_context("spawn")
    done = [context.Value("q", 0) for _ in range(count)]
    url = engine.url.render_as_string(hide_password=False)
    processes = [context.Process(target=_replay_share, name=f"replay-{i}",
                                 args=(app.policies, dict(app.env), url, (i, count), end,
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
    with TicketingApp(policies, env) as app:
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
