"""The pipeline's roles as real OS processes for fault tests: started, killed with
SIGKILL, restarted, and always stopped at the end (and killed with the test process,
see ticketflow.tools.workers.WorkerProcess)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.structs import TopicPartition

from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings, kafka_client_config, options_for
from ticketflow.tools.soak import Sent, Stories, Tracker, publish_steadily
from ticketflow.tools.workers import WorkerProcess

#: A killed consumer's partitions move on after 6 s (the broker's minimum) instead of
#: serve's 10 s, and clients look for a restarted broker at least every 2 s (not 30 s):
#: each fault costs less time; the guarantees are the same as in production.
RECONNECT_MS = 2000
FAST_FAILOVER = {"TICKETFLOW_KAFKA_OPT_SESSION_TIMEOUT_MS": "6000",
                 "TICKETFLOW_KAFKA_OPT_HEARTBEAT_INTERVAL_MS": "1000",
                 "TICKETFLOW_KAFKA_OPT_RECONNECT_BACKOFF_MAX_MS": str(RECONNECT_MS)}
PARTITIONS = 3


class Fleet:
    """Worker processes by role (a killed worker's `start()` runs its role again)."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.workers: list[WorkerProcess] = []

    def start(self, *roles: str) -> Fleet:
        for role in roles:
            log = self.logs / f"{role}-{len(self.workers)}.log"
            # its own worker id, kept through restarts: static group membership
            worker_id = {"TICKETFLOW_WORKER_ID": f"{role}-{len(self.workers)}"}
            self.workers.append(WorkerProcess(role, self.settings, log, partitions=PARTITIONS,
                                              env={**FAST_FAILOVER, **worker_id}).start())
        return self

    def of(self, role: str) -> list[WorkerProcess]:
        return [worker for worker in self.workers if worker.role == role]

    def kill_one(self, rng: random.Random, roles: tuple[str, ...]) -> WorkerProcess:
        """SIGKILL a randomly chosen worker of one of `roles`; returns it (dead)."""
        victim = rng.choice([w for w in self.workers if w.role in roles])
        victim.kill()
        return victim

    def exited(self) -> list[str]:
        """Workers that died on their own (not killed by the test), with their output."""
        return [f"{w.role}: exit {w.process.returncode}\n{w.output()[-3000:]}"
                for w in self.workers if w.process is not None and not w.running]

    def recovered_from_failures(self, role: str) -> bool:
        """Did a worker of `role` fail a step, back off and rebuild (ticketflow.serve)?"""
        return any("role_restarting" in w.output() for w in self.of(role))

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@contextmanager
def fleet(settings: Settings, logs: Path, *roles: str) -> Iterator[Fleet]:
    running = Fleet(settings, logs)
    try:
        yield running.start(*roles)
    finally:
        running.stop()


def pipeline_settings(kafka: str, db: str) -> Settings:
    """Settings with topics of their own on the broker, created and ready."""
    settings = Settings(db=db, kafka=kafka, topic_prefix=f"f{uuid.uuid4().hex[:8]}.")
    config = options_for(KafkaAdminClient, kafka_client_config(kafka))
    ensure_topics(config, Topics.named(settings.topic_prefix), PARTITIONS)
    return settings


class Load:
    """Seeded ticket stories published through the SDK and followed by a Tracker."""

    def __init__(self, settings: Settings, app: TicketingApp, seed: int) -> None:
        self.client = CommandClient(settings.kafka or "", Topics.named(settings.topic_prefix),
                                    reconnect_backoff_max_ms=RECONNECT_MS)
        self.stories = Stories(seed, f"L{seed}", clock=settings.clock)
        self.tracker = Tracker(app, engine_for(settings.db))
        self.stop = threading.Event()
        self.publisher: threading.Thread | None = None

    def publish(self, count: int) -> None:
        """A burst of `count` commands."""
        for _ in range(count):
            document, expected = self.stories.next()
            self.client.send_document(document)
            self.tracker.add(Sent(document["message_id"], document["ticket_id"], expected,
                                  time.monotonic()))
        self.client.flush()

    def handled(self) -> bool:
        """Every message has its outcome (in the store; maybe not in the read model)."""
        self.tracker.caught_up()
        return all(sent.status for sent in self.tracker.sent)

    def steadily(self, rate: float, seconds: float) -> threading.Thread:
        """Publish `rate` commands a second for `seconds`, in the background."""
        self.publisher = threading.Thread(target=publish_steadily, args=(
            self.client, self.stories, self.tracker, rate, seconds, self.stop))
        self.publisher.start()
        return self.publisher

    def settle(self, timeout: float = 180.0) -> list[Sent]:
        """Wait until every message has its outcome and shows in the read model, and
        the timers' breaches of the overdue tickets are there too (quiescent)."""
        if self.publisher is not None:
            self.publisher.join()
        self.tracker.drain(timeout, self.stories.overdue)
        return list(self.tracker.sent)

    def close(self) -> None:
        self.stop.set()
        if self.publisher is not None:
            self.publisher.join()
        self.client.close()


@contextmanager
def load(settings: Settings, seed: int) -> Iterator[tuple[TicketingApp, Load]]:
    with build_app(settings) as app:
        publisher = Load(settings, app, seed)
        try:
            yield app, publisher
        finally:
            publisher.close()


class TopicEnds:
    """How many records a topic holds: the sum of its partitions' end offsets."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka, group_id=None)
        self.partitions = [TopicPartition(topic, p)
                           for p in self.consumer.partitions_for_topic(topic) or ()]

    def total(self) -> int:
        return sum(self.consumer.end_offsets(self.partitions).values())

    def close(self) -> None:
        self.consumer.close()
