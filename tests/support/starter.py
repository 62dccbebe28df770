"""A process starting on a store at the same moment as others: `python -m
tests.support.starter DB N` does what `ticketflow serve` does at start-up, one step at a
time, each when a line on stdin says so (so that every starter takes each step at once):

1. `store`: opens the store (creating its tables if missing);
2. `read_models`: opens the read models, as the projections role and the HTTP API do
   (their tables, the indexes added since, the search table);
3. `webhooks`: the webhooks' tables (the notifications role, the HTTP API);
4. `keys`: the keys' table (the commands role with keys required, the HTTP API);
5. `ticket`: creates ticket T-N under the tenant's policy (saving the policy version's
   first copy if missing).

It prints `ready` first, then each step's name once it is done, then the ticket's
outcome as JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.keys import Keys
from ticketflow.projections.db import engine_for
from ticketflow.projections.runner import Projector
from ticketflow.settings import Settings
from ticketflow.webhooks import Webhooks

STEPS = ("store", "read_models", "webhooks", "keys", "ticket")


class Starter:
    def __init__(self, db: str, n: str) -> None:
        self.settings, self.n = Settings(db=db), n
        self.engine = engine_for(db)
        self.app: TicketingApp | None = None
        self.outcome: dict[str, Any] = {}

    def store(self) -> None:
        self.app = build_app(self.settings)

    def read_models(self) -> None:
        assert self.app is not None
        Projector(self.app, self.engine)

    def webhooks(self) -> None:
        assert self.app is not None
        Webhooks(self.engine, self.app.clock, self.app.event_log.mapper.cipher)

    def keys(self) -> None:
        Keys(self.engine, self.settings.clock).list()

    def ticket(self) -> None:
        assert self.app is not None
        self.outcome = self.app.apply(command_line(
            f"m-{self.n}", "create_ticket", f"T-{self.n}", T0, "customer",
            create_payload())).as_dict()

    def close(self) -> None:
        if self.app is not None:
            self.app.close()
        self.engine.dispose()


def main(db: str, n: str) -> None:
    print("ready", flush=True)
    starter = Starter(db, n)
    try:
        for step in STEPS:
            sys.stdin.readline()
            getattr(starter, step)()
            print(step, flush=True)
    finally:
        starter.close()
    print(json.dumps(starter.outcome), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
