"""`python -m ticketflow.tools.soak`: the whole pipeline under a steady load, audited.

    python -m ticketflow.tools.soak --minutes 30 --rate 20 [--kafka HOST:PORT] [--db URL]

Without --kafka a local broker is started on free ports (and stopped at the end);
without --db the store is a SQLite file in a temporary folder. Each role runs as its own
`ticketflow worker` process (with --no-spawn, a `ticketflow serve` already running
against the same Kafka, database and TICKETFLOW_TOPIC_PREFIX does the work). Ticket
stories are published at --rate commands per second; every message is followed to its
receipt and into the Kafka-fed read model. At the end a JSON summary is printed:

- lost: messages without the expected outcome, or accepted but never visible in the
  read model (or whose events are missing from the store);
- duplicated: messages whose events are stored more often than their receipt says;
- late: messages visible in the read model more than --late-after seconds after they
  were published; latency_ms: p50 / p99 / max of that delay;
- kafka: events of the store missing from support.ticket-events, and extra copies
  (at least once: copies are allowed, consumers dedupe);
- chain_breaks, read_model_differences (tables that differ from a fresh replay),
  workers_exited (roles that died on their own).

Exit status 1 if anything was lost, duplicated, missing, broken or different.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import PersistenceError
from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.clock import Clock, default_clock
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.projections.db import Tables, engine_for, tables
from ticketflow.projections.runner import Projector
from ticketflow.serve import ROLES
from ticketflow.settings import Settings, options_for
from ticketflow.tools.kafka_broker import LocalKafka
from ticketflow.tools.workers import WorkerProcess
from ticketflow.verification import verify_store

log = logging.getLogger("ticketflow.tools.soak")

# -- the workload -----------------------------------------------------------------------

CREATE: dict[str, dict[str, Any]] = {
    "personalysispro": {"account_id": "soak", "plan": "professional", "channel": "email",
                        "timezone": "America/New_York", "category": "technical",
                        "subcategory": "performance", "priority": "high",
                        "subject": "soak", "description": "steady load"},
    "growgrebuddy": {"account_id": "soak", "plan": "standard", "channel": "in_app_chat",
                     "category": "bug_report", "priority": "medium", "subject": "soak",
                     "description": "steady load"},
}
#: Enterprise × critical: first response due 30 min after creation, around the clock.
OVERDUE = {**CREATE["personalysispro"], "plan": "enterprise", "priority": "critical"}
Step = tuple[str, str, dict[str, Any]]
LIFE: tuple[Step, ...] = (("acknowledge", "agent", {}), ("start_work", "agent", {}),
        ("add_comment", "customer", {"body": "any news?", "visibility": "public"}),
        ("resolve", "agent", {"resolution": "fixed"}), ("close", "customer", {}))
#: Reopening a ticket nobody resolved: rejected (invalid_transition), dead-lettered.
BAD_STEP: Step = ("reopen", "customer", {"reason": "still broken"})


@dataclass
class Story:
    """One ticket's commands, in order, with the status each should get."""

    ticket_id: str
    tenant: str
    steps: list[tuple[str, str, dict[str, Any], str]]
    backdate: timedelta = timedelta(0)
    done: int = 0
    last: datetime | None = None


class Stories:
    """Seeded ticket stories, interleaved: each `next()` is an open ticket's next command.

    Every open ticket gets one command per round, in a seeded order, so a ticket lives
    about 7 × open tickets ÷ rate seconds. Every 10th ticket is created 45 minutes in
    the past as enterprise × critical, so its first-response breach is already due and
    the timers fire it; every 7th ticket gets a command its state refuses (a dead
    letter). All other instants are the engine's clock (`settings.clock`, which the
    workers share), and tickets live far shorter than the earliest SLA or escalation due
    (30 min), so nothing else falls due: a timer event can never overtake a command in
    flight and make it stale.
    """

    def __init__(self, seed: int, run: str, open_tickets: int = 20,
                 clock: Clock | None = None) -> None:
        self.rng = random.Random(seed)
        self.run, self.clock = run, clock or default_clock()
        self.created = 0
        self.open = [self._story() for _ in range(open_tickets)]
        self.round: list[int] = []
        self.overdue: set[str] = set()  # published tickets the timers must breach

    @classmethod
    def at_rate(cls, seed: int, run: str, rate: float, clock: Clock | None = None) -> Stories:
        """As many open tickets as keep each one's life near a minute (at most 20)."""
        return cls(seed, run, open_tickets=max(1, min(20, round(rate * 10))), clock=clock)

    def _story(self) -> Story:
        n = self.created
        self.created += 1
        tenant = self.rng.choice(sorted(CREATE))
        overdue = n % 10 == 3
        if overdue:
            tenant = "personalysispro"
        create = ("create_ticket", "customer", OVERDUE if overdue else CREATE[tenant])
        steps = [create, *([BAD_STEP] if n % 7 == 5 else []), *LIFE]
        return Story(f"{self.run}-T{n}", tenant,
                     [(*step, "rejected" if step is BAD_STEP else "accepted") for step in steps],
                     backdate=timedelta(minutes=45) if overdue else timedelta(0))

    def next(self) -> tuple[dict[str, Any], str]:
        """The next command (a SPEC §5 document) and the status it should get."""
        if not self.round:
            self.round = self.rng.sample(range(len(self.open)), len(self.open))
        index = self.round.pop()
        story = self.open[index]
        type_, role, payload, expected = story.steps[story.done]
        at = self.clock() - (story.backdate if story.done == 0 else timedelta(0))
        story.last = at = max(at, story.last or at)
        document = {"message_id": f"{story.ticket_id}-{story.done}", "type": type_,
                    "tenant": story.tenant, "ticket_id": story.ticket_id,
                    "occurred_at": at.isoformat(), "actor": {"id": f"{role}-1", "role": role},
                    "payload": payload}
        if story.backdate and story.done == 0:
            self.overdue.add(story.ticket_id)
        story.done += 1
        if story.done == len(story.steps):
            self.open[index] = self._story()
        return document, expected

    def __iter__(self) -> Iterator[tuple[dict[str, Any], str]]:
        while True:
            yield self.next()


# -- following each message -------------------------------------------------------------

@dataclass
class Sent:
    """One published message: what it should get, what it got, when it was seen."""

    message_id: str
    ticket_id: str
    expected: str
    published: float  # time.monotonic()
    status: str | None = None
    versions: list[int] = field(default_factory=list)
    visible: float | None = None

    @property
    def settled(self) -> bool:
        return self.status is not None and (self.status != "accepted" or self.visible is not None)


class Tracker:
    """Follows published messages to their receipt and into the read model."""

    def __init__(self, app: TicketingApp, engine: Engine) -> None:
        self.app, self.engine = app, engine
        self.sent: list[Sent] = []
        self.pending: list[Sent] = []
        self.lock = threading.Lock()

    def add(self, sent: Sent) -> None:
        with self.lock:
            self.sent.append(sent)
            self.pending.append(sent)

    def poll(self) -> int:
        """Look again at every unsettled message; returns how many remain."""
        now = time.monotonic()
        with self.lock:
            pending = list(self.pending)
        for sent in pending:
            receipts = ([] if sent.status is not None
                        else self.app.event_log.receipts_of(sent.message_id))
            if receipts:  # the soak's message ids are unique across its tenants
                sent.status, sent.versions = receipts[0].status, list(receipts[0].versions)
        shown = read_model_versions(self.engine, {s.ticket_id for s in pending
                                                  if s.status == "accepted"})
        for sent in pending:
            if sent.status == "accepted" and shown.get(sent.ticket_id, 0) >= max(sent.versions):
                sent.visible = now
        with self.lock:
            self.pending = [s for s in self.pending if not s.settled]
            return len(self.pending)

    def caught_up(self, overdue: set[str] | None = None) -> bool:
        """Poll once: True if every message is settled (and, given the overdue tickets,
        the pipeline is quiescent); False also while the database does not answer."""
        try:
            return self.poll() == 0 and (overdue is None
                                         or quiescent(self.app, self.engine, overdue))
        except (PersistenceError, SQLAlchemyError):
            log.warning("the database did not answer; polling again", exc_info=True)
            return False

    def drain(self, timeout: float, overdue: set[str] | None = None) -> bool:
        """Poll until caught up, or `timeout` seconds have passed; True if caught up."""
        deadline = time.monotonic() + timeout
        while not self.caught_up(overdue):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)
        return True


def quiescent(app: TicketingApp, engine: Engine, overdue: set[str]) -> bool:
    """Nothing left to do: every overdue ticket's breach is stored (nothing else falls
    due), and the read model holds every ticket event the store holds."""
    events = [e for e in stored_events(app) if e["type"] != "SelfServiceRecorded"]
    if not overdue <= {e["ticket_id"] for e in events if e["type"] == "SlaBreached"}:
        return False
    t = tables()
    with engine.connect() as conn:
        shown = {tuple(row) for row in conn.execute(
            select(t.timeline.c.tenant, t.timeline.c.ticket_id, t.timeline.c.version))}
    return {(e["tenant"], e["ticket_id"], e["version"]) for e in events} <= shown


def read_model_versions(engine: Engine, ticket_ids: set[str]) -> dict[str, int]:
    """Each ticket's version in the read model (absent: not projected yet)."""
    table, found, ids = tables().tickets, {}, sorted(ticket_ids)
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = select(table.c.ticket_id, table.c.version).where(
                table.c.ticket_id.in_(ids[start:start + 500]))
            found.update({row.ticket_id: int(row.version) for row in conn.execute(query)})
    return found


# -- the audit --------------------------------------------------------------------------

COMPARED = ("tickets", "volume", "satisfaction", "self_service", "articles", "timeline",
            "sla_clocks", "parked")
REPLAY_SUFFIX = "__audit"


def read_model_rows(engine: Engine, t: Tables) -> dict[str, list[dict[str, Any]]]:
    """Every row of every read model, in primary-key order."""
    rows = {}
    with engine.connect() as conn:
        for name in COMPARED:
            table = getattr(t, name)
            query = select(table).order_by(*table.primary_key.columns)
            rows[name] = [dict(row._mapping) for row in conn.execute(query)]
    return rows


def replay_differences(app: TicketingApp, engine: Engine) -> dict[str, str]:
    """Each read model that differs from a fresh replay of the event store's log (built
    beside them in `*__audit` tables, then dropped), with its first differing row."""
    tables(REPLAY_SUFFIX).metadata.drop_all(engine)
    fresh = Projector(app, engine, suffix=REPLAY_SUFFIX)
    try:
        fresh.catch_up()
        live, replayed = read_model_rows(engine, tables()), read_model_rows(engine, fresh.t)
    finally:
        fresh.t.metadata.drop_all(engine)
    return {name: _first_difference(live[name], replayed[name]) for name in COMPARED
            if live[name] != replayed[name]}


def _first_difference(live: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> str:
    for index, (mine, theirs) in enumerate(zip(live, replayed, strict=False)):
        if mine != theirs:
            changed = {key: (mine[key], theirs.get(key)) for key in mine
                       if mine[key] != theirs.get(key)}
            return f"row {index} (live, replay): {changed}"[:2000]
    return f"{len(live)} rows live, {len(replayed)} replayed"


def stored_events(app: TicketingApp) -> list[dict[str, Any]]:
    return [app.event_log.envelope_of(record) for record in app.event_log.stream_records()]


def read_topic(client_config: dict[str, Any], topic: str,
               timeout: float = 120.0) -> Iterator[ConsumerRecord]:
    """Every record of a topic, from the beginning to the end it has now."""
    consumer = KafkaConsumer(**options_for(KafkaConsumer, client_config), group_id=None,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while any(consumer.position(p) < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end in {timeout:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                yield from records
    finally:
        consumer.close()


def topic_copies(client_config: dict[str, Any], topic: str) -> Counter[tuple[str, int]]:
    """How often each (ticket_id, version) is on the events topic."""
    envelopes = (json.loads(record.value) for record in read_topic(client_config, topic))
    return Counter((envelope["ticket_id"], envelope["version"]) for envelope in envelopes)


def audit(app: TicketingApp, engine: Engine, sent: list[Sent], client_config: dict[str, Any],
          topics: Topics) -> dict[str, Any]:
    """Lost, duplicated, Kafka coverage, chains and replay equality after a run."""
    events = stored_events(app)
    by_cause = Counter(e["causation_id"] for e in events)
    stored = {(e["ticket_id"], e["version"]) for e in events}
    lost = [s.message_id for s in sent if s.status != s.expected
            or (s.status == "accepted" and (s.visible is None or any(
                (s.ticket_id, v) not in stored for v in s.versions)))]
    duplicated = [s.message_id for s in sent if by_cause[s.message_id] > len(s.versions)]
    copies = topic_copies(client_config, topics.ticket_events)
    return {
        "lost": len(lost), "duplicated": len(duplicated), "lost_ids": lost[:20],
        "duplicated_ids": duplicated[:20],
        "timer_events": sum(n for cause, n in by_cause.items() if cause.startswith("timer:")),
        "kafka": {"events": len(stored), "missing": len(stored - set(copies)),
                  "extra_copies": sum(copies.values()) - len(set(copies))},
        "chain_breaks": len(verify_store(app)),
        "read_model_differences": replay_differences(app, engine),
    }


def failed(summary: dict[str, Any]) -> bool:
    return bool(summary["lost"] or summary["duplicated"] or summary["kafka"]["missing"]
                or summary["chain_breaks"] or summary["read_model_differences"]
                or summary.get("workers_exited"))


# -- running it -------------------------------------------------------------------------

def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (an observed value); None without values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else None


def latency_summary(sent: list[Sent], late_after: float) -> dict[str, Any]:
    delays = [s.visible - s.published for s in sent if s.visible is not None]
    in_ms = {name: None if value is None else round(value * 1000)
             for name, value in (("p50", percentile(delays, 0.5)),
                                 ("p99", percentile(delays, 0.99)),
                                 ("max", max(delays, default=None)))}
    return {"late": sum(d > late_after for d in delays), "late_after_seconds": late_after,
            "latency_ms": in_ms}


def publish_steadily(client: CommandClient, stories: Stories, tracker: Tracker, rate: float,
                     seconds: float, stop: threading.Event) -> None:
    start = time.monotonic()
    for n, (document, expected) in enumerate(stories):
        # n / rate, not (start + n / rate) - start: the float sum may round below
        # `seconds` and send one message too many
        if n / rate >= seconds or stop.wait(max(0.0, start + n / rate - time.monotonic())):
            break
        client.send_document(document)
        tracker.add(Sent(document["message_id"], document["ticket_id"], expected,
                         time.monotonic()))
    client.flush()


def run(settings: Settings, minutes: float, rate: float, *, seed: int = 1,
        late_after: float = 5.0, drain: float = 120.0, spawn: bool = True,
        logs: Path | None = None, warm_up: float = 120.0) -> dict[str, Any]:
    """One soak; returns its summary."""
    config = settings.kafka_config()
    topics = Topics.named(settings.topic_prefix)
    ensure_topics(options_for(KafkaAdminClient, config), topics)
    run_id = f"soak{uuid.uuid4().hex[:6]}"
    with build_app(settings) as app:
        engine = engine_for(settings.db)
        with _workers(settings, logs if spawn else None) as workers, \
                CommandClient(settings.kafka or "", topics) as client:
            _wait_ready(client, Stories(seed, f"{run_id}-ready", 1, clock=settings.clock),
                        Tracker(app, engine), warm_up)
            tracker = Tracker(app, engine)
            stories = Stories.at_rate(seed, run_id, rate, clock=settings.clock)
            _publish_and_follow(client, stories, tracker, rate, minutes * 60)
            tracker.drain(drain, stories.overdue)
            exited = [worker.role for worker in workers if not worker.running]
        return {"minutes": minutes, "rate": rate, "seed": seed, "published": len(tracker.sent),
                "statuses": dict(Counter(str(s.status) for s in tracker.sent)),
                **latency_summary(tracker.sent, late_after),
                **audit(app, engine, tracker.sent, config, topics), "workers_exited": exited}


def _publish_and_follow(client: CommandClient, stories: Stories, tracker: Tracker,
                        rate: float, seconds: float) -> None:
    stop = threading.Event()
    publisher = threading.Thread(target=publish_steadily,
                                 args=(client, stories, tracker, rate, seconds, stop))
    publisher.start()
    try:
        while publisher.is_alive():
            tracker.caught_up()
            publisher.join(timeout=0.25)
    finally:
        stop.set()
        publisher.join()


def _wait_ready(client: CommandClient, stories: Stories, tracker: Tracker,
                timeout: float) -> None:
    """One ticket created and seen in the read model: every role is up."""
    document, expected = stories.next()
    client.send_document(document)
    client.flush()
    tracker.add(Sent(document["message_id"], document["ticket_id"], expected, time.monotonic()))
    if not tracker.drain(timeout):
        raise TimeoutError(f"the pipeline did not answer within {timeout:.0f} s")


@contextmanager
def _workers(settings: Settings, logs: Path | None) -> Iterator[list[WorkerProcess]]:
    """Every role as a worker process logging into `logs` (None: spawn nothing)."""
    if logs is None:
        yield []
        return
    workers = [WorkerProcess(role, settings, logs / f"{role}.log").start() for role in ROLES]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


@contextmanager
def _services(args: argparse.Namespace, folder: Path) -> Iterator[Settings]:
    """The Kafka and database to soak: given, or started here for the run."""
    broker = None
    if not args.kafka:
        broker = LocalKafka(port=_free_port(), controller_port=_free_port(),
                            data_dir=folder / "kafka", echo=None)
        broker.start(timeout=180)
    settings = Settings.from_env(db=args.db or f"sqlite:///{folder / 'soak.db'}",
                                 kafka=args.kafka or (broker.bootstrap if broker else None))
    if not args.no_spawn:  # topics of its own, so that earlier runs do not mix in
        settings = replace(settings, topic_prefix=f"soak{uuid.uuid4().hex[:8]}.")
    try:
        yield settings
    finally:
        if broker is not None:
            broker.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m ticketflow.tools.soak", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--minutes", type=float, required=True)
    cli.add_argument("--rate", type=float, required=True, help="commands per second")
    cli.add_argument("--kafka", help="bootstrap HOST:PORT (default: start a local broker)")
    cli.add_argument("--db", help="store URL (default: SQLite in a temporary folder)")
    cli.add_argument("--seed", type=int, default=1)
    cli.add_argument("--late-after", type=float, default=5.0, metavar="SECONDS")
    cli.add_argument("--drain", type=float, default=120.0, metavar="SECONDS",
                     help="how long to wait for the last messages after publishing")
    cli.add_argument("--workdir", type=Path, help="folder for the workers' logs and the"
                     " default store (default: a new temporary folder)")
    cli.add_argument("--no-spawn", action="store_true",
                     help="use a `ticketflow serve` already running (same Kafka, db, prefix)")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="ticketflow-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    with _services(args, folder) as settings:
        summary = run(settings, args.minutes, args.rate, seed=args.seed,
                      late_after=args.late_after, drain=args.drain, spawn=not args.no_spawn,
                      logs=folder)
    summary["logs"] = str(folder)
    print(json.dumps(summary, indent=2))
    return 1 if failed(summary) else 0


if __name__ == "__main__":
    raise SystemExit(main())
