"""The audit log's cost on the write path (SPEC §13): the demo workload applied with the
log (each transaction also records its `MerkleLog.Appended` entry, and on SQLite every
32nd the stored subtree roots of the entries since, on PostgreSQL each its own)
against the same engine with the log switched off, in alternate rounds of the same run;
and, over the logged bench history (~1 M events, built once and cached:
bench/dataset.py), a checkpoint, one ticket's bundle and `verify --checkpoint`, each
beside its baseline.

    python -m bench.audit_log [--tickets N] [--postgresql] [--events N] [--only write,proofs]

Goals: the write path with the log at ≥ 0.9× the rate without it; `verify --checkpoint`
at ≥ 0.5× the speed of a plain read of the same rows with SHA-256 of each; one ticket's
bundle (its inclusion proofs and a signed head) in ≤ 50 ms at 1 M events.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from multiprocessing import Process, Queue
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import dataset
from bench.common import Figures, alternate, compared, postgres, rate, say, timed
from bench.write import BATCH, START, commands, sqlite_maker
from ticketflow.application import TicketingApp
from ticketflow.audit_log import ROWS_PAGE, AuditLog
from ticketflow.bootstrap import build_app
from ticketflow.bundles import make_bundle
from ticketflow.checkpoint_verification import audit, checkpoint
from ticketflow.domain.audit_log import event_leaf
from ticketflow.domain.merkle import Tree
from ticketflow.event_log import STREAM_TOPICS, TICKET_TOPICS
from ticketflow.log_tree import LOG_TOPIC
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


def proofs(events: int, tickets: int = 20) -> Figures:
    """Over the logged history of `events`: a checkpoint, one ticket's bundle (the
    median and worst of `tickets` tickets spread over the log) and `verify --checkpoint`
    (what `--checkpoint` adds to `verify`), each beside its baseline."""
    path, count = dataset.logged_history(events)
    key = Ed25519PrivateKey.generate()
    with build_app(Settings(db=f"sqlite:///{path}")) as app:
        log = AuditLog(app.event_log)
        say(f"audit log: a checkpoint of {count:,} leaves")
        head_seconds, head = _best(lambda: checkpoint(app, key, START))
        recompute_seconds, _ = _best(lambda: Tree(log.logged().leaves).root(), rounds=1)
        say("audit log: bundles")
        ids = _tickets_spread(app, tickets)
        bundle_ms = sorted(1000 * _best(lambda t=t: make_bundle(app, t, None, key, START))[0]
                           for t in ids)
        leaves = log.logged().leaves  # the former design: proofs from every leaf
        before_ms = 1000 * _best(lambda: _bundle_from_leaves(app, ids[0]), rounds=1)[0]
        say("audit log: verify --checkpoint, and the plain read beside it")
        plain_seconds, rows = _best(lambda: _plain_read(app), rounds=2)
        ours_seconds, findings = _best(lambda: audit(app, head.text(), key.public_key()),
                                       rounds=2)
        library_seconds, _ = _best(lambda: _library_read(app), rounds=1)
        alone_seconds, _ = _best(lambda: audit(app, head.text(), key.public_key(),
                                               workers=1), rounds=1)
    return {
        "leaves": head.size, "events": count, "history": path.name,
        "checkpoint": {"ours_ms": round(1000 * head_seconds, 2),
                       "baseline_recomputed_from_leaves_ms": round(1000 * recompute_seconds, 1),
                       "leaves_read": len(leaves)},
        "bundle": {"tickets": len(ids), "median_ms": round(bundle_ms[len(ids) // 2], 2),
                   "max_ms": round(bundle_ms[-1], 2),
                   "baseline_from_every_leaf_ms": round(before_ms, 1),
                   "goal_ms": 50, "goal_met": bundle_ms[-1] <= 50},
        "verify_checkpoint": compared(round(rows / ours_seconds, 1),
                                      round(rows / plain_seconds, 1), "rows/s", goal=0.5,
                                      rows=rows, ours_seconds=round(ours_seconds, 1),
                                      baseline_seconds=round(plain_seconds, 1),
                                      findings=len(findings),
                                      one_process_seconds=round(alone_seconds, 1),
                                      library_pages_baseline_seconds=round(
                                          library_seconds, 1)),
    }


def _best(work: Callable[[], Any], rounds: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def _tickets_spread(app: TicketingApp, count: int) -> list[str]:
    """Ticket ids from `count` places spread over the log (first copies to the last)."""
    top = app.event_log.max_position()
    found: list[str] = []
    for n in range(count):
        page = app.recorder.select_notifications(1 + n * top // count, 1,
                                                 topics=TICKET_TOPICS)
        if page:
            found.append(app.event_log.envelope_of(page[0])["ticket_id"])
    return sorted(set(found), key=found.index)


def _bundle_from_leaves(app: TicketingApp, ticket_id: str) -> int:
    """The former bundle: every leaf read from the log's entries, proofs recomputed."""
    leaves = AuditLog(app.event_log).logged().leaves
    tree, where = Tree(leaves), {leaf: index for index, leaf in enumerate(leaves)}
    envelopes = app.event_log.ticket_events(ticket_id)
    proofs = [tree.inclusion_proof(where[event_leaf(e)]) for e in envelopes]
    tree.root()
    return len(proofs)


def _plain_read(app: TicketingApp) -> int:
    """The rows `verify --checkpoint` reads (stream events and the log's entries) read
    as it reads the stream events (bare rows, `ROWS_PAGE` a query), with SHA-256 of each
    row's bytes."""
    roots = AuditLog(app.event_log).roots
    rows = 0
    for topics in (STREAM_TOPICS, (LOG_TOPIC,)):
        start = 1
        while True:
            page = roots.record_rows(start, 2**62, topics, ROWS_PAGE)
            for row in page:
                hashlib.sha256(row[3]).digest()
            rows += len(page)
            if len(page) < ROWS_PAGE:
                break
            start = page[-1][0] + 1
    return rows


def _library_read(app: TicketingApp) -> int:
    """The same rows through the library's notification pages (the baseline before)."""
    rows = 0
    for page in app.event_log.pages(topics=[*STREAM_TOPICS, LOG_TOPIC]):
        for record in page:
            hashlib.sha256(record.state).digest()
        rows += len(page)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_log", description=__doc__)
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--postgresql", action="store_true",
                        help="also on a private PostgreSQL server")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events of the logged history the proofs run over")
    parser.add_argument("--only", default="write,proofs")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    results: Figures = {}
    with ExitStack() as services:
        fresh_pg = services.enter_context(postgres()) if args.postgresql else None
        if "write" in chosen:
            results.update(run(sqlite_maker(), args.tickets, fresh_pg))
        if "proofs" in chosen:
            results["proofs"] = proofs(args.events)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
