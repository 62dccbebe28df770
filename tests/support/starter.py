"""A process starting on a store at the same moment as others: `python -m
tests.support.starter DB N` prints `ready`, waits for a line on stdin (so that every
starter opens the store at once), opens it (creating its tables if missing), creates
ticket T-N under the tenant's policy (saving the policy version's first copy if
missing), and prints the outcome as JSON."""

from __future__ import annotations

import json
import sys

from tests.support.builders import T0, command_line, create_payload
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings


def main(db: str, n: str) -> None:
    print("ready", flush=True)
    sys.stdin.readline()
    with build_app(Settings(db=db)) as app:
        outcome = app.apply(command_line(f"m-{n}", "create_ticket", f"T-{n}", T0, "customer",
                                         create_payload()))
    print(json.dumps(outcome.as_dict()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
