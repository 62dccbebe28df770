"""Write side: a realistic command mix through the application service, against plain
eventsourcing saves of the same number of events, on SQLite and PostgreSQL.

Ours: the demo workload's commands (both tenants, every command type, timers pre-fired
before each command), applied one transaction per command (`apply`, what a single
message costs) and in batches of 100 (`apply_batch`, what `ticketflow apply` and the
command consumer do). Each command records its events *and* its receipt in the same
transaction (idempotency, dead letters). Baseline: a plain `eventsourcing` Application
saving a trivial aggregate's events, as many as ours recorded, with payloads of the
same size, one save per transaction and 100 per save.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.common import Figures, alternate, compared, rate, say, timed
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings, eventstore_env
from ticketflow.tools.workload import generate_workload

BATCH = 100
START = datetime(2026, 10, 5, tzinfo=UTC)


class Note(Aggregate):
    """The baseline's aggregate: one event type carrying a text."""

    @event("Noted")
    def note(self, text: str) -> None:
        self.text = text


def commands(tickets: int) -> list[bytes]:
    return [json.dumps(c).encode() for c in generate_workload(21, tickets=tickets,
                                                              start=START, days=7)]


def ours(url: str, raws: list[bytes], batch: int) -> tuple[int, float]:
    """(events recorded, seconds) applying `raws` in a fresh store."""
    with build_app(Settings(db=url)) as app:
        def work() -> int:
            if batch == 1:
                outcomes = [app.apply(raw) for raw in raws]
            else:
                outcomes = [o for start in range(0, len(raws), batch)
                            for o in app.apply_batch(raws[start:start + batch])]
            return sum(len(o.events) for o in outcomes)
        return timed(work)


def baseline(url: str, events: int, batch: int, payload: int) -> float:
    """Plain eventsourcing saves of `events` events (per second), `batch` per save."""
    with Application[object](env=eventstore_env(url)) as app:
        notes = [Note() for _ in range(500)]
        app.save(*notes)
        text = "x" * payload

        def work() -> int:
            for start in range(0, events, batch):
                touched = {}
                for n in range(start, min(events, start + batch)):
                    note = notes[n % len(notes)]
                    note.note(text=text)
                    touched[note.id] = note
                app.save(*touched.values())
            return events
        return rate(*timed(work))


def run(databases: dict[str, Callable[[], str]], tickets: int = 700) -> Figures:
    raws = commands(tickets)
    payload = sum(map(len, raws)) // len(raws)
    results: Figures = {"commands": len(raws)}
    for backend, fresh in databases.items():
        for batch in (1, BATCH):
            name = "per_command" if batch == 1 else f"batch_{batch}"
            say(f"write: {backend}, {name}")
            results[f"{backend}.{name}"] = measure(fresh, raws, batch, payload)
        batched, single = results[f"{backend}.batch_{BATCH}"], results[f"{backend}.per_command"]
        batched["ratio_to_plain_single_saves"] = round(batched["ours"] / single["baseline"], 3)
    return results


def measure(fresh: Callable[[], str], raws: list[bytes], batch: int, payload: int) -> Figures:
    """Ours against the baseline at the same batching, in alternate rounds."""
    recorded: list[int] = []

    def one_round() -> float:
        count, seconds = ours(fresh(), raws, batch)
        recorded.append(count)
        return rate(count, seconds)

    best_ours, best_base = alternate(
        one_round, lambda: baseline(fresh(), len(raws), batch, payload))
    return compared(best_ours, best_base, "events/s", goal=0.6, events=max(recorded))


def sqlite_maker() -> Callable[[], str]:
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-write-"))
    counter = iter(range(1_000_000))
    return lambda: f"sqlite:///{folder / f'store-{next(counter)}.db'}"
