"""`ticketflow serve` and `ticketflow worker ROLE`: the long-running processes.

Roles: `commands` (support.commands → the application service), `relay` (event store
→ support.ticket-events), `projections` (support.ticket-events → the read models) and
`timers` (time-driven commands, checked every second).

Each role runs in its own thread with its own application instance and Kafka
clients. A failing step (broker or database away) is logged and retried with
exponential backoff; SIGINT / SIGTERM stop every role after its current step.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from kafka.producer import KafkaProducer

from ticketflow.bootstrap import build_app
from ticketflow.consumers.commands import CommandConsumer
from ticketflow.consumers.projections import KafkaProjectionRunner
from ticketflow.consumers.timers import Timers
from ticketflow.producers.relay import OutboxRelay, producer_config
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings, kafka_client_config

log = logging.getLogger("ticketflow.serve")
logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per-partition chatter

Step = Callable[[], int]
MAX_BACKOFF = 30.0


class Role:
    """One loop: a step to repeat, and what to close at the end."""

    def __init__(
        self, name: str, step: Step, closers: list[Callable[[], Any]], idle: float = 0.1
    ) -> None:
        self.name, self.step, self.closers, self.idle = name, step, closers, idle

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                if self.step() == 0:
                    stop.wait(self.idle)
                backoff = 0.5
            except Exception:  # keep serving: log, back off, retry
                log.exception("%s failed; retrying in %.1f s", self.name, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        for close in self.closers:
            close()


def build_role(name: str, settings: Settings) -> Role:
    config = kafka_client_config(settings.kafka)
    topics = Topics.named(settings.topic_prefix)
    app = build_app(settings)
    producer = KafkaProducer(**producer_config(config))
    if name == "relay":
        relay = OutboxRelay(app, producer, topic=topics.ticket_events)
        return Role(name, relay.run_once, [producer.close, app.close])
    if name == "commands":
        consumer = CommandConsumer.subscribe(app, config, producer, topics)
        return Role(name, consumer.run_once, [consumer.close, producer.close, app.close])
    if name == "projections":
        runner = KafkaProjectionRunner.subscribe(app, engine_for(settings.db), config, topics)
        return Role(name, runner.run_once, [runner.close, producer.close, app.close])
    if name == "timers":
        timers = Timers(app)
        return Role(name, timers.run_once, [producer.close, app.close], idle=1.0)
    raise ValueError(f"unknown role {name!r}; roles: {', '.join(ROLES)}")


ROLES = ("commands", "relay", "projections", "timers")


def serve(settings: Settings, roles: tuple[str, ...] = ROLES, partitions: int = 6,
          stop: threading.Event | None = None) -> int:
    """Run `roles` until SIGINT/SIGTERM (or `stop` is set)."""
    stop = stop or threading.Event()
    topics = Topics.named(settings.topic_prefix)
    created = ensure_topics(kafka_client_config(settings.kafka), topics, partitions)
    if created:
        log.info("created topics %s", ", ".join(created))
    threads = [threading.Thread(target=build_role(name, settings).run, args=(stop,),
                                name=name, daemon=True) for name in roles]
    _stop_on_signals(stop)
    for thread in threads:
        thread.start()
    log.info("serving %s against Kafka %s", ", ".join(roles), settings.kafka)
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.5)
    log.info("stopped")
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled by the main thread (e.g. under tests)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
