"""A writer process for concurrency tests: `python -m tests.support.writer DB WORKER
THREADS COUNT` opens the store, prints `ready`, waits for a line on stdin (so that
every writer starts at once), then its threads add COUNT comments each to ticket T-1
through one shared application, and it prints one JSON outcome per command."""

from __future__ import annotations

import json
import sys
import threading
from datetime import timedelta

from tests.support.builders import T0, command_line
from ticketflow.application import Outcome, TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings


def comment(worker: int, thread: int, n: int) -> bytes:
    name = f"p{worker}-t{thread}-{n}"
    return command_line(name, "add_comment", "T-1", T0 + timedelta(minutes=10), "customer",
                        {"body": name})


def write(app: TicketingApp, worker: int, thread: int, count: int,
          outcomes: list[Outcome]) -> None:
    for n in range(count):
        outcomes.append(app.apply(comment(worker, thread, n)))


def main(db: str, worker: int, threads: int, count: int) -> None:
    outcomes: list[Outcome] = []
    with build_app(Settings(db=db)) as app:
        writers = [threading.Thread(target=write, args=(app, worker, t, count, outcomes))
                   for t in range(threads)]
        print("ready", flush=True)
        sys.stdin.readline()
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
    for outcome in outcomes:
        print(json.dumps(outcome.as_dict()))


if __name__ == "__main__":
    main(sys.argv[1], *(int(arg) for arg in sys.argv[2:5]))
