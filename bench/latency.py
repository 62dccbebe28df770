"""Latency: a command published to support.commands → visible in the read model, at a
steady rate through Kafka, against the plain kafka-python produce → consume latency at
the same rate.

Ours: `ticketflow worker commands`, `relay` and `projections` as separate processes
on PostgreSQL; a publisher sends at the target rate (tickets created first, then
comments spread over them, `occurred_at` = now by the engine's clock, which the workers
are handed too, so no timer falls due), and a watcher polls the ticket rows every few
milliseconds: a command is visible when its ticket's row reaches the version the
command produced. Baseline: a plain producer sending the
same number of records at the same rate and a plain consumer receiving them.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka.consumer import KafkaConsumer
from kafka.producer import KafkaProducer
from sqlalchemy import text

from bench.common import Figures, say
from bench.relay import create_topic
from ticketflow.clock import Clock
from ticketflow.producers.relay import producer_config
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.projections.db import engine_for, tables
from ticketflow.settings import Settings
from ticketflow.tools.workers import WorkerProcess

ROLES = ("commands", "relay", "projections")
TICKETS = 200
CREATE = {"account_id": "bench", "plan": "standard", "channel": "in_app_chat",
          "category": "bug_report", "priority": "low", "subject": "latency",
          "description": "steady load"}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 1)


def steady(rate: int, count: int, send: Callable[[int], None]) -> None:
    """Call send(0 … count-1) at `rate` per second, on a fixed schedule (a send that
    is late goes at once; none is skipped)."""
    start = time.perf_counter()
    for n in range(count):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(n)


def command(n: int, ticket: str, kind: str, clock: Clock) -> dict[str, Any]:
    """One command, dated now by `clock` (the engine's, which the workers share)."""
    payload = CREATE if kind == "create_ticket" else {"body": f"#{n}", "visibility": "public"}
    return {"message_id": f"lat-{uuid.uuid4().hex}", "type": kind, "tenant": "growgrebuddy",
            "ticket_id": ticket, "occurred_at": clock().isoformat(),
            "actor": {"id": "bench", "role": "customer"}, "payload": payload}


def ours(bootstrap: str, database: str, rate: int, seconds: int) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = Settings(db=database, kafka=bootstrap, topic_prefix=prefix)
    topics = Topics.named(prefix)
    ensure_topics({"bootstrap_servers": bootstrap}, topics, 6)
    logs = Path(tempfile.mkdtemp(prefix="ticketflow-bench-latency-"))
    workers = [WorkerProcess(role, settings, logs / f"{role}.log").start() for role in ROLES]
    engine = engine_for(database)
    try:
        rows = tables().tickets
        _wait_for_tables(engine)
        published: dict[tuple[str, int], float] = {}
        seen: dict[tuple[str, int], float] = {}
        versions: dict[str, int] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(engine, rows.name, versions, seen,
                                                        stop), daemon=True)
        watcher.start()
        with CommandClient(bootstrap, topics) as client:
            tickets = [f"LAT-{uuid.uuid4().hex[:10]}" for _ in range(TICKETS)]
            expected: dict[str, int] = {}

            def send(n: int) -> None:
                ticket = tickets[n % TICKETS]
                kind = "create_ticket" if ticket not in expected else "add_comment"
                expected[ticket] = expected.get(ticket, 0) + 1
                published[(ticket, expected[ticket])] = time.perf_counter()
                client.send_document(command(n, ticket, kind, settings.clock))

            say(f"latency: {rate} commands/s for {seconds} s through Kafka (workers: "
                f"{', '.join(ROLES)})")
            steady(rate, rate * seconds, send)
            client.flush()
        deadline = time.monotonic() + 60
        while len(seen) < len(published) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        watcher.join()
    finally:
        for worker in workers:
            worker.stop()
    warm = [key for key in published if key[1] > 2]  # after each ticket's first commands
    delays = [seen[key] - published[key] for key in warm if key in seen]
    return {"commands": len(published), "visible": len(seen), "measured": len(delays),
            "p50_ms": percentile(delays, 0.5), "p99_ms": percentile(delays, 0.99),
            "max_ms": round(max(delays) * 1000, 1)}


def _wait_for_tables(engine: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text('SELECT 1 FROM "rm_tickets" LIMIT 1'))
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _watch(engine: Any, table: str, versions: dict[str, int],
           seen: dict[tuple[str, int], float], stop: threading.Event) -> None:
    """Every few ms: which (ticket, version) pairs the read model shows, and since when."""
    query = text(f'SELECT ticket_id, version FROM "{table}" WHERE ticket_id LIKE \'LAT-%\'')
    with engine.connect() as conn:
        while not stop.is_set():
            now = time.perf_counter()
            for ticket, version in conn.execute(query):
                for v in range(versions.get(ticket, 0) + 1, version + 1):
                    seen[(ticket, v)] = now
                versions[ticket] = max(version, versions.get(ticket, 0))
            conn.commit()
            time.sleep(0.003)


def baseline(bootstrap: str, rate: int, seconds: int) -> dict[str, Any]:
    """Plain kafka-python: produce at `rate`, consume, time each record's trip."""
    topic = create_topic(bootstrap, f"bench.latency.{uuid.uuid4().hex[:8]}")
    received: dict[int, float] = {}
    count = rate * seconds
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.poll(timeout_ms=1000)  # assigned before the first send

    def consume() -> None:
        while len(received) < count:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    received[int(record.key)] = time.perf_counter()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    sent: dict[int, float] = {}
    producer = KafkaProducer(**producer_config({"bootstrap_servers": bootstrap}))

    def send(n: int) -> None:
        sent[n] = time.perf_counter()
        producer.send(topic, key=str(n).encode(), value=b"x" * 600)

    steady(rate, count, send)
    producer.flush()
    thread.join(timeout=60)
    producer.close()
    consumer.close()
    delays = [received[n] - sent[n] for n in sent if n in received]
    return {"records": count, "received": len(delays), "p50_ms": percentile(delays, 0.5),
            "p99_ms": percentile(delays, 0.99)}


def run(bootstrap: str, database: str, rate: int = 500, seconds: int = 30) -> Figures:
    say(f"latency: plain kafka-python round trip at {rate}/s")
    plain = baseline(bootstrap, rate, seconds)
    measured = ours(bootstrap, database, rate, seconds)
    return {"rate_per_s": rate, "seconds": seconds, "ours": measured, "baseline": plain,
            "p99_ratio": round(measured["p99_ms"] / plain["p99_ms"], 2),
            "goal_p99_ms": 250, "goal_met": measured["p99_ms"] <= 250}
