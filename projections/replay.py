"""`ticketflow replay`: rebuild every read model from the first event, then swap.

The fresh tables (suffix `__next`) fill up while queries keep answering from the
current ones; the swap (drop old, rename new) is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, text

from ticketflow.application import TicketingApp
from ticketflow.projections.db import NAMES, tables
from ticketflow.projections.runner import Projector

NEXT = "__next"


def rebuild(app: TicketingApp, engine: Engine,
            progress: Callable[[int], None] | None = None) -> int:
    """Project the whole history into fresh tables and swap them in; returns events.

    The fresh tables are filled without their secondary indexes, which are built once
    on the full tables: before the swap on PostgreSQL (where the swap's DDL blocks
    readers, so it must stay short), inside it on SQLite (readers keep their snapshot
    of the old tables until it commits)."""
    tables(NEXT).metadata.drop_all(engine)  # leftovers of an interrupted replay
    fresh = Projector(app, engine, suffix=NEXT, defer_clocks=True)
    for table in fresh.t.metadata.tables.values():
        for index in table.indexes:
            index.drop(engine)
    applied = fresh.catch_up(progress, batch_size=10_000)
    fresh.write_deferred_clocks()
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        for table in fresh.t.metadata.tables.values():
            for index in table.indexes:
                index.create(engine)
    final = tables().metadata.tables
    with engine.begin() as conn:
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
    return applied
