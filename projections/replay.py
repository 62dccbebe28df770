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
    """Project the whole history into fresh tables and swap them in; returns events."""
    tables(NEXT).metadata.drop_all(engine)  # leftovers of an interrupted replay
    fresh = Projector(app, engine, suffix=NEXT, defer_clocks=True)
    applied = fresh.catch_up(progress, batch_size=10_000)
    fresh.write_deferred_clocks()
    final = tables().metadata.tables
    with engine.begin() as conn:
        for name in NAMES:
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
            conn.execute(text(f'ALTER TABLE "{name}{NEXT}" RENAME TO "{name}"'))
            if conn.dialect.name == "postgresql":  # index names outlive a table rename
                conn.execute(text(f'ALTER INDEX IF EXISTS "{name}{NEXT}_pkey"'
                                  f' RENAME TO "{name}_pkey"'))
            for index in final[name].indexes:  # so the next replay's names are free
                built = str(index.name).replace(name, f"{name}{NEXT}", 1)
                conn.execute(text(f'DROP INDEX IF EXISTS "{built}"'))
                index.create(conn)
    return applied
