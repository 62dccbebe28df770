"""`ticketflow serve` and `ticketflow worker ROLE`: the long-running processes.

Roles: `commands` (support.commands → the application service), `relay` (event store
→ support.ticket-events), `projections` (support.ticket-events → the read models) and
`timers` (time-driven commands, checked every second).

Each role runs in its own thread with its own application instance and Kafka
clients. A failing step (broker or database away) is logged, the role's clients are
closed, and after an exponential backoff the role is built again from what is durable
(committed offsets, the relay's tracking record, the read models' stored offsets, the
event log), so no in-memory position of a failed step can skip or repeat work.
SIGINT / SIGTERM stop every role after its current step.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.producer import KafkaProducer

from ticketflow.bootstrap import build_app
from ticketflow.consumers.commands import CommandConsumer
from ticketflow.consumers.projections import KafkaProjectionRunner
from ticketflow.producers.relay import OutboxRelay, producer_config
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings, kafka_client_config, options_for
from ticketflow.timers import Timers

log = logging.getLogger("ticketflow.serve")
logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per-partition chatter

Step = Callable[[], int]
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
ROLES = ("commands", "relay", "projections", "timers")
#: A worker killed outright keeps its partitions until its group session expires;
#: kafka-python's default (45 s) would stall them that long. Override with
#: TICKETFLOW_KAFKA_OPT_SESSION_TIMEOUT_MS / _HEARTBEAT_INTERVAL_MS.
CONSUMER_DEFAULTS: dict[str, Any] = {"session_timeout_ms": 10_000,
                                     "heartbeat_interval_ms": 3_000}


@dataclass
class Loop:
    """A role's working parts: the step to repeat, and what it opened."""

    step: Step
    opened: ExitStack

    def close(self) -> None:
        try:
            self.opened.close()
        except Exception:  # closing after a failure: the peer may be gone
            log.warning("closing failed", exc_info=True)


class Backoff:
    """Exponential: 0.5 s, 1 s, 2 s, … up to 30 s; back to 0.5 s after a success."""

    def __init__(self) -> None:
        self.delay = FIRST_BACKOFF

    def reset(self) -> None:
        self.delay = FIRST_BACKOFF

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay)
        self.delay = min(self.delay * 2, MAX_BACKOFF)


#: How long a role rests after a step that found nothing. The consumers' polls already
#: wait for records to arrive, so they go straight back; the relay asks the store again
#: soon (an indexed read), since every event's way to the read models goes through it.
IDLE = {"commands": 0.0, "projections": 0.0, "relay": 0.02, "timers": 1.0}


class Role:
    """One role: built, stepped until stopped, rebuilt after any failure."""

    def __init__(self, name: str, build: Callable[[], Loop], idle: float = 0.1) -> None:
        self.name, self.build, self.idle = name, build, idle

    def run(self, stop: threading.Event) -> None:
        loop: Loop | None = None
        backoff = Backoff()
        while not stop.is_set():
            try:
                loop = loop or self.build()
                if loop.step() == 0:
                    stop.wait(self.idle)
                backoff.reset()
            except Exception:  # keep serving: log, start afresh, back off, retry
                log.exception("%s failed; rebuilding it in %.1f s", self.name, backoff.delay)
                if loop is not None:
                    loop.close()
                    loop = None
                backoff.wait(stop)
        if loop is not None:
            loop.close()


def consumer_options(config: dict[str, Any]) -> dict[str, Any]:
    return {**CONSUMER_DEFAULTS, **options_for(KafkaConsumer, config)}


def build_loop(name: str, settings: Settings) -> Loop:
    """The role's application, Kafka clients and step, connected now (whatever was
    opened is closed again if a later part cannot be)."""
    with ExitStack() as opened:
        step = _connect(name, settings, opened)
        return Loop(step, opened.pop_all())


def _connect(name: str, settings: Settings, opened: ExitStack) -> Step:
    config = kafka_client_config(settings.kafka)
    topics = Topics.named(settings.topic_prefix)
    app = opened.enter_context(build_app(settings))
    if name == "timers":
        return Timers(app).run_once
    if name == "projections":
        engine = engine_for(settings.db)
        opened.callback(engine.dispose)
        runner = KafkaProjectionRunner.subscribe(app, engine, consumer_options(config), topics)
        opened.callback(runner.close)
        return runner.run_once
    producer = KafkaProducer(**producer_config(options_for(KafkaProducer, config)))
    opened.callback(producer.close)
    if name == "relay":
        return OutboxRelay(app, producer, topic=topics.ticket_events).run_once
    consumer = CommandConsumer.subscribe(app, consumer_options(config), producer, topics)
    opened.callback(consumer.close)
    return consumer.run_once


def build_role(name: str, settings: Settings) -> Role:
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}; roles: {', '.join(ROLES)}")
    return Role(name, lambda: build_loop(name, settings), idle=IDLE[name])


def serve(settings: Settings, roles: tuple[str, ...] = ROLES, partitions: int = 6,
          stop: threading.Event | None = None) -> int:
    """Run `roles` until SIGINT/SIGTERM (or `stop` is set)."""
    stop = stop or threading.Event()
    _stop_on_signals(stop)
    threads = [threading.Thread(target=build_role(name, settings).run, args=(stop,),
                                name=name, daemon=True) for name in roles]
    if _topics_ready(settings, partitions, stop):
        for thread in threads:
            thread.start()
        log.info("serving %s against Kafka %s", ", ".join(roles), settings.kafka)
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.5)
    log.info("stopped")
    return 0


def _topics_ready(settings: Settings, partitions: int, stop: threading.Event) -> bool:
    """Create the topics (retrying while the broker is away); False if stopped first."""
    admin_config = options_for(KafkaAdminClient, kafka_client_config(settings.kafka))
    topics = Topics.named(settings.topic_prefix)
    backoff = Backoff()
    while not stop.is_set():
        try:
            created = ensure_topics(admin_config, topics, partitions)
        except Exception:
            log.exception("creating topics failed; retrying in %.1f s", backoff.delay)
            backoff.wait(stop)
            continue
        if created:
            log.info("created topics %s", ", ".join(created))
        return True
    return False


def _stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled by the main thread (e.g. under tests)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
