"""`ticketflow serve` and `ticketflow worker ROLE`: the long-running processes.

Roles: `commands` (support.commands → the application service), `relay` (event store
→ support.ticket-events and support.notifications), `projections`
(support.ticket-events → the read models), `timers` (time-driven commands, checked
every second) and `notifications` (webhook deliveries, `consumers/webhooks.py`).

Each role runs in its own thread with its own application instance and Kafka
clients. A failing step (broker or database away) is logged, the role's clients are
closed, and after an exponential backoff the role is built again from what is durable
(committed offsets, the relay's tracking record, the read models' stored offsets, the
event log), so no in-memory position of a failed step can skip or repeat work.
SIGINT / SIGTERM stop every role after its current step; its consumers close and
leave their groups at once (docs/operations.md: static membership, cooperative
rebalancing, what each log event and metric means).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.producer import KafkaProducer

from ticketflow import metrics
from ticketflow.bootstrap import build_app
from ticketflow.consumers.commands import CommandConsumer
from ticketflow.consumers.group import membership
from ticketflow.consumers.projections import KafkaProjectionRunner
from ticketflow.consumers.webhooks import DeliveryWorker
from ticketflow.keys import Keys
from ticketflow.logs import event
from ticketflow.producers.relay import OutboxRelay, producer_config
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings, options_for
from ticketflow.timers import Timers

log = logging.getLogger("ticketflow.serve")

Step = Callable[[], int]
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
ROLES = ("commands", "relay", "projections", "timers", "notifications")


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
IDLE = {"commands": 0.0, "projections": 0.0, "relay": 0.02, "timers": 1.0,
        "notifications": 0.2}


class Role:
    """One role: built, stepped until stopped, rebuilt after any failure."""

    def __init__(self, name: str, build: Callable[[], Loop], idle: float = 0.1) -> None:
        self.name, self.build, self.idle = name, build, idle

    def run(self, stop: threading.Event) -> None:
        loop: Loop | None = None
        backoff = Backoff()
        while not stop.is_set():
            try:
                if loop is None:
                    loop = self.build()
                    event(log, "role_started", role=self.name)
                if loop.step() == 0:
                    stop.wait(self.idle)
                backoff.reset()
            except Exception as exc:  # keep serving: log, start afresh, back off, retry
                cause = type(exc).__name__
                metrics.ROLE_RESTARTS.labels(self.name, cause).inc()
                event(log, "role_restarting", logging.ERROR, exc_info=True, role=self.name,
                      cause=cause, in_seconds=backoff.delay)
                if loop is not None:
                    loop.close()
                    loop = None
                backoff.wait(stop)
        if loop is not None:
            loop.close()
            event(log, "role_stopped", role=self.name)


def consumer_options(config: dict[str, Any], group: str = "",
                     worker: str | None = None) -> dict[str, Any]:
    """The group's membership (cooperative; static with a worker id; session and
    heartbeat), under what TICKETFLOW_KAFKA_OPT_* says."""
    return {**membership(group, worker), **options_for(KafkaConsumer, config)}


def build_loop(name: str, settings: Settings, stop: threading.Event | None = None,
               worker: str | None = None) -> Loop:
    """The role's application, Kafka clients and step, connected now (whatever was
    opened is closed again if a later part cannot be). Its consumer leaves the group
    when it is closed after `stop` was set (not when rebuilt after a failure)."""
    with ExitStack() as opened:
        step = _connect(name, settings, opened, stop or threading.Event(), worker)
        return Loop(step, opened.pop_all())


def _connect(name: str, settings: Settings, opened: ExitStack, stop: threading.Event,
             worker: str | None) -> Step:
    config = settings.kafka_config()
    admin_config = options_for(KafkaAdminClient, config)
    topics = Topics.named(settings.topic_prefix)
    app = opened.enter_context(build_app(settings))
    if name == "timers":
        return Timers(app).run_once
    if name == "notifications":  # webhook deliveries (SPEC §10)
        engine = engine_for(settings.db)
        opened.callback(engine.dispose)
        deliveries = DeliveryWorker(app, engine,
                                    private_targets=settings.webhook_private_targets)
        opened.callback(deliveries.close)
        return deliveries.run_once
    if name == "projections":
        engine = engine_for(settings.db)
        opened.callback(engine.dispose)
        runner = KafkaProjectionRunner.subscribe(
            app, engine, consumer_options(config, "ticketflow-read-models", worker), topics,
            admin_config=admin_config)
        opened.callback(lambda: runner.close(leave=stop.is_set()))
        return runner.run_once
    producer = KafkaProducer(**producer_config(options_for(KafkaProducer, config)))
    opened.callback(producer.close)
    if name == "relay":
        return OutboxRelay(app, producer, topic=topics.ticket_events,
                           notifications_topic=topics.notifications).run_once
    consumer = CommandConsumer.subscribe(
        app, consumer_options(config, "ticketflow-commands", worker), producer, topics,
        admin_config=admin_config, keys=_keys(settings, opened))
    opened.callback(lambda: consumer.close(leave=stop.is_set()))
    return consumer.run_once


def _keys(settings: Settings, opened: ExitStack) -> Keys | None:
    """The store's keys, when commands must be signed (TICKETFLOW_REQUIRE_KEYS=1)."""
    if not settings.require_keys:
        return None
    engine = engine_for(settings.db)
    opened.callback(engine.dispose)
    return Keys(engine, settings.clock)


def build_role(name: str, settings: Settings, stop: threading.Event | None = None,
               worker: str | None = None) -> Role:
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}; roles: {', '.join(ROLES)}")
    return Role(name, lambda: build_loop(name, settings, stop, worker), idle=IDLE[name])


class Beside(Protocol):
    """Something served beside the roles, started first and stopped last (the HTTP API)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def serve(settings: Settings, roles: tuple[str, ...] = ROLES, partitions: int = 6,
          stop: threading.Event | None = None, worker: str | None = None,
          metrics_port: int | None = None, beside: Beside | None = None) -> int:
    """Run `roles` until SIGINT/SIGTERM (or `stop` is set). `worker`: this process's
    id in its consumer groups (static membership); `metrics_port`: serve /metrics;
    `beside`: also run this (`serve --http PORT`: the HTTP API), stopped with the roles."""
    stop = stop or threading.Event()
    _stop_on_signals(stop)
    metrics.serve_metrics(metrics_port)
    if beside is not None:
        beside.start()
    try:
        return _run_roles(settings, roles, partitions, stop, worker, metrics_port)
    finally:
        if beside is not None:
            beside.stop()


def _run_roles(settings: Settings, roles: tuple[str, ...], partitions: int,
               stop: threading.Event, worker: str | None, metrics_port: int | None) -> int:
    threads = [threading.Thread(target=build_role(name, settings, stop, worker).run,
                                args=(stop,), name=name, daemon=True) for name in roles]
    if _topics_ready(settings, partitions, stop):
        for thread in threads:
            thread.start()
        event(log, "serving", roles=list(roles), kafka=settings.kafka, worker=worker,
              metrics_port=metrics_port, require_keys=settings.require_keys)
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.5)
    event(log, "stopped", roles=list(roles), signal=_signals[-1] if _signals else None)
    return 0


def _topics_ready(settings: Settings, partitions: int, stop: threading.Event) -> bool:
    """Create the topics (retrying while the broker is away); False if stopped first."""
    admin_config = options_for(KafkaAdminClient, settings.kafka_config())
    topics = Topics.named(settings.topic_prefix)
    backoff = Backoff()
    while not stop.is_set():
        try:
            created = ensure_topics(admin_config, topics, partitions)
        except Exception as exc:
            event(log, "topics_not_ready", logging.ERROR, exc_info=True,
                  cause=type(exc).__name__, in_seconds=backoff.delay)
            backoff.wait(stop)
            continue
        if created:  # only the process whose request created them says so
            event(log, "created_topics", topics=created, partitions=partitions)
        return True
    return False


_signals: list[str] = []


def _stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled by the main thread (e.g. under tests)
    def stopping(signum: int, _frame: Any) -> None:  # no logging here: not signal-safe
        _signals.append(signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stopping)
