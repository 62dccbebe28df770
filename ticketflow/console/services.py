"""What the console is given: the write service, the query layer for a key, the keys,
the sessions and the engine's clock.

`ConsoleServices.open(app, engine, keys)` builds them on one store; a door that already
holds a write service and read models (the HTTP API) hands in its own `apply` and
`queries` instead. One request works against the engine at a time (`serial`): the
write service keeps caches that are not shared between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ticketflow.application import Outcome, TicketingApp
from ticketflow.clock import Clock
from ticketflow.console.sessions import Sessions
from ticketflow.keys import Key, Keys
from ticketflow.projections.runner import Projector
from ticketflow.queries import Queries, ReadModels


class _SharedReadModels(ReadModels):
    """Read models caught up once per request, on a projector made once (its tables
    are made and checked when it is built)."""

    def __init__(self, app: TicketingApp, engine: Engine, projector: Projector) -> None:
        super().__init__(app, engine)
        self._shared = projector

    @property
    def projector(self) -> Projector:
        return self._shared


@dataclass
class ConsoleServices:
    app: TicketingApp
    queries: Callable[[Key], Queries]
    apply: Callable[[bytes, Key], Outcome]
    keys: Keys
    sessions: Sessions
    clock: Clock
    serial: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def open(cls, app: TicketingApp, engine: Engine, keys: Keys) -> ConsoleServices:
        """The console's services on `app`'s store, its read models in `engine`."""
        made: list[Projector] = []
        lock = threading.RLock()

        def projector() -> Projector:
            if not made:
                made.append(Projector(app, engine))
            return made[0]

        def queries(key: Key) -> Queries:
            return Queries(app, _SharedReadModels(app, engine, projector()), key.scope())

        def apply(raw: bytes, key: Key) -> Outcome:
            return app.apply(raw, bounds=key)

        return cls(app, queries, apply, keys, Sessions(engine, keys, app.clock), app.clock,
                   lock)
