"""The audit log's cost on the write path (SPEC §13): the demo workload applied with the
log (each transaction also records its `MerkleLog.Appended` entry) against the same
engine with the log switched off, in alternate rounds of the same run; and the cost of
signing a checkpoint and of `verify --checkpoint` over what was written.

    python -m bench.audit_log [--tickets N] [--postgresql]

Goal: the write path with the log at ≥ 0.9× the rate without it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from multiprocessing import Process, Queue
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import Figures, alternate, compared, postgres, rate, say, timed
from bench.write import BATCH, START, commands, sqlite_maker
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.checkpoint_verification import audit, checkpoint
from ticketflow.settings import Settings


def without_log(app: TicketingApp) -> TicketingApp:
    """The same engine, its commits recording no log entry (the baseline)."""
    app._log_entry = lambda events: None  # type: ignore[method-assign]
    return app


def apply_all(url: str, raws: list[bytes], batch: int,
              adapt: Callable[[TicketingApp], TicketingApp]) -> tuple[int, float]:
    with build_app(Settings(db=url)) as app:
        adapted = adapt(app)

        def work() -> int:
            if batch == 1:
                outcomes = [adapted.apply(raw) for raw in raws]
            else:
                outcomes = [o for start in range(0, len(raws), batch)
                            for o in adapted.apply_batch(raws[start:start + batch])]
            return sum(len(o.events) for o in outcomes)
        return timed(work)


def run(fresh: Callable[[], str], tickets: int,
        postgresql: Callable[[], str] | None = None) -> Figures:
    raws = commands(tickets)
    results: Figures = {"commands": len(raws), "workload_start": START.isoformat()}
    backends = {"sqlite": fresh, **({"postgresql": postgresql} if postgresql else {})}
    for backend, maker in backends.items():
        results.update(_write_figures(backend, maker, raws))
    if postgresql is not None:
        say("audit log: postgresql, two writer processes")
        ours, base = alternate(lambda: _writers(postgresql(), True),
                               lambda: _writers(postgresql(), False), rounds=3)
        results["postgresql.two_writers"] = compared(ours, base, "commands/s", goal=0.9)
    results["checkpoint_and_verify"] = _checkpoint_figures(fresh(), raws)
    return results


def _write_figures(backend: str, fresh: Callable[[], str], raws: list[bytes]) -> Figures:
    results: Figures = {}
    for batch in (1, BATCH):
        name = "per_command" if batch == 1 else f"batch_{batch}"
        say(f"audit log: {backend}, {name}")

        def with_log(batch: int = batch) -> float:
            return rate(*apply_all(fresh(), raws, batch, lambda app: app))

        def no_log(batch: int = batch) -> float:
            return rate(*apply_all(fresh(), raws, batch, without_log))

        ours, base = alternate(with_log, no_log, rounds=5)
        results[f"{backend}.{name}"] = compared(ours, base, "events/s", goal=0.9)
    return results


def _writer(url: str, name: str, count: int, log: bool, done: Queue[float]) -> None:
    with build_app(Settings(db=url)) as app:
        adapted = app if log else without_log(app)
        for n in range(count):
            adapted.apply(json.dumps({
                "message_id": f"{name}-{n}", "type": "create_ticket",
                "tenant": "personalysispro", "ticket_id": f"{name}-{n}",
                "occurred_at": START.isoformat(), "actor": {"id": "c", "role": "customer"},
                "payload": {"account_id": "a", "plan": "professional",
                            "timezone": "America/New_York", "channel": "email",
                            "category": "technical", "priority": "high", "subject": "s",
                            "description": "d"}}))
    done.put(1.0)


def _writers(url: str, log: bool, processes: int = 2, count: int = 300) -> float:
    """Commands per second of `processes` writers at once, each its own tickets."""
    with build_app(Settings(db=url)):
        pass  # the tables, made once
    done: Queue[float] = Queue()
    workers = [Process(target=_writer, args=(url, f"W{w}", count, log, done))
               for w in range(processes)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return rate(processes * count, time.perf_counter() - started)


def _checkpoint_figures(url: str, raws: list[bytes]) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    with build_app(Settings(db=url)) as app:
        for start in range(0, len(raws), BATCH):
            app.apply_batch(raws[start:start + BATCH])
        started = time.perf_counter()
        head = checkpoint(app, key, START)
        signed = time.perf_counter() - started
        started = time.perf_counter()
        found = audit(app, head.text(), key.public_key())
        checked = time.perf_counter() - started
    return {"leaves": head.size, "checkpoint_seconds": round(signed, 3),
            "verify_checkpoint_seconds": round(checked, 3), "findings": len(found)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_log", description=__doc__)
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--postgresql", action="store_true",
                        help="also on a private PostgreSQL server")
    args = parser.parse_args()
    with ExitStack() as services:
        fresh_pg = services.enter_context(postgres()) if args.postgresql else None
        print(json.dumps(run(sqlite_maker(), args.tickets, fresh_pg), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
