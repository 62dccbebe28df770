"""Faults against the real components: every role is a `ticketflow worker` OS process
on a real Kafka broker and a real event store; workers are killed with SIGKILL at
seeded random moments under load, the broker and PostgreSQL are stopped mid-stream.

After each run, once quiescent: every command has its one outcome, its events are in
the store exactly once with contiguous versions and intact hash chains, every event is
on support.ticket-events at least once, every rejection is on the dead-letter topic at
least once, and the read models the projections built from Kafka equal a fresh replay
of the store.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.support.postgres import PostgresCluster, create_database
from tests.support.waiting import wait_for
from tests.support.workers import Fleet, Load, TopicEnds, fleet, load, pipeline_settings
from ticketflow.application import TicketingApp
from ticketflow.producers.relay import TRACKING_NAME
from ticketflow.producers.topics import Topics
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings, kafka_client_config
from ticketflow.tools.kafka_broker import LocalKafka
from ticketflow.tools.soak import (
    Sent,
    quiescent,
    read_topic,
    replay_differences,
    stored_events,
    topic_copies,
)
from ticketflow.tools.workers import WorkerProcess
from ticketflow.verification import verify_store

ALL_ROLES = ("commands", "commands", "relay", "projections", "timers")
KILLABLE = ("commands", "relay", "projections")


def assert_nothing_lost_or_doubled(settings: Settings, app: TicketingApp, publisher: Load,
                                   workers: Fleet) -> list[Sent]:
    sent = publisher.settle()
    assert workers.exited() == []
    unsettled = [s.message_id for s in sent if not s.settled]
    assert unsettled == [], f"no outcome, or not in the read model: {unsettled[:10]}"
    engine = engine_for(settings.db)
    assert quiescent(app, engine, publisher.stories.overdue), "timer events not projected"
    assert [s.message_id for s in sent if s.status != s.expected] == []
    events = stored_events(app)
    caused: dict[str, list[int]] = {}
    for envelope in events:
        caused.setdefault(envelope["causation_id"], []).append(envelope["version"])
    for message in sent:  # exactly once: the events its receipt names, no more, no fewer
        assert caused.get(message.message_id, []) == message.versions, message.message_id
    assert verify_store(app) == []  # versions 1, 2, … per ticket, hash chains intact
    config = kafka_client_config(settings.kafka)
    topics = Topics.named(settings.topic_prefix)
    on_kafka = topic_copies(config, topics.ticket_events)
    assert set(on_kafka) == {(e["ticket_id"], e["version"]) for e in events}
    # A rejection's outcome is durable before its dead letter is acknowledged: a worker
    # still retrying the send across the broker's restart sends it after `settle`.
    rejected = {s.message_id for s in sent if s.status == "rejected"}
    wait_for(lambda: rejected <= {dict(r.headers)["message_id"].decode()
                                  for r in read_topic(config, topics.dead_letter)},
             "every rejected message's dead letter on Kafka", timeout=150)
    assert replay_differences(app, engine) == {}
    return sent


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path


def kill_while_publishing(workers: Fleet, publisher: threading.Thread,
                          rng: random.Random) -> int:
    """While the load runs, every 0.5–2.5 s SIGKILL a random worker (commands, relay
    or projections) and start its role again 0–1 s later; returns the kill count."""
    kills = 0
    while publisher.is_alive():
        time.sleep(rng.uniform(0.5, 2.5))
        victim = workers.kill_one(rng, KILLABLE)
        time.sleep(rng.uniform(0.0, 1.0))
        victim.start()
        kills += 1
    return kills


def run_with_kills(settings: Settings, logs: Path, seed: int, seconds: float) -> int:
    """15 commands a second for `seconds` while workers are killed; returns the kills."""
    with load(settings, seed) as (app, publisher), \
            fleet(settings, logs, *ALL_ROLES) as workers:
        kills = kill_while_publishing(workers, publisher.steadily(rate=15, seconds=seconds),
                                      random.Random(seed))
        assert_nothing_lost_or_doubled(settings, app, publisher, workers)
    return kills


def test_workers_killed_at_random_moments_lose_nothing_and_double_nothing(
    kafka_bootstrap: str, postgres_url: str, logs: Path
) -> None:
    settings = pipeline_settings(kafka_bootstrap, postgres_url)
    kills = run_with_kills(settings, logs, seed=20261123, seconds=20)
    assert kills >= 8, "the faults must really have happened"


def test_several_writer_processes_on_one_sqlite_file_survive_kills(
    kafka_bootstrap: str, sqlite_url: str, logs: Path
) -> None:
    settings = pipeline_settings(kafka_bootstrap, sqlite_url)
    kills = run_with_kills(settings, logs, seed=7, seconds=8)
    assert kills >= 3, "the faults must really have happened"


def relayed_beyond_its_position(app: TicketingApp, settings: Settings) -> bool:
    """Are more events on Kafka than the relay's stored position accounts for?"""
    position = app.process_recorder.max_tracking_id(TRACKING_NAME) or 0
    accounted = sum(1 for record in app.event_log.stream_records() if record.id <= position)
    topic = Topics.named(settings.topic_prefix).ticket_events
    return len(topic_copies(kafka_client_config(settings.kafka), topic)) > accounted


def kill_relay_mid_batch(app: TicketingApp, publisher: Load, relay: WorkerProcess,
                         ends: TopicEnds, settings: Settings) -> bool:
    """Stop the relay, let 300 commands' events pile up in the store, start it and
    SIGKILL it as soon as the topic grows: True if it died between the broker taking
    a batch and its position being stored."""
    relay.kill()
    publisher.publish(300)
    wait_for(publisher.handled, "the backlog applied")
    before = ends.total()
    relay.start()
    # asked every 5 ms: the kill must land while the relay's first batch is in flight
    wait_for(lambda: ends.total() != before, "the relay to publish", timeout=90, every=0.005)
    relay.kill()
    return relayed_beyond_its_position(app, settings)


def test_a_relay_killed_between_publishing_and_storing_its_position_republishes(
    kafka_bootstrap: str, postgres_url: str, logs: Path
) -> None:
    """At least once on Kafka: the batch goes out again after the restart, and the
    consumers' dedupe keeps the read models equal to a replay."""
    settings = pipeline_settings(kafka_bootstrap, postgres_url)
    topic = Topics.named(settings.topic_prefix).ticket_events
    with load(settings, seed=5) as (app, publisher), \
            fleet(settings, logs, *ALL_ROLES) as workers, \
            closing(TopicEnds(settings, topic)) as ends:
        relay = workers.of("relay")[0]
        caught = any(kill_relay_mid_batch(app, publisher, relay, ends, settings)
                     for _ in range(5))
        assert caught, "the relay was never caught between publishing and storing"
        relay.start()
        assert_nothing_lost_or_doubled(settings, app, publisher, workers)
    copies = topic_copies(kafka_client_config(settings.kafka), topic)
    assert sum(copies.values()) > len(copies)  # the batch really went out twice


@contextmanager
def mid_stream(settings: Settings, logs: Path, seed: int) -> Iterator[Fleet]:
    """Every role up, then 15 commands a second for 12 s; the body (a fault) runs 3 s
    into that load; afterwards nothing may be lost or doubled."""
    with load(settings, seed) as (app, publisher), \
            fleet(settings, logs, *ALL_ROLES) as workers:
        publisher.publish(30)
        assert publisher.tracker.drain(timeout=120), "the pipeline did not start"
        publisher.steadily(rate=15, seconds=12)
        time.sleep(3)
        yield workers
        assert_nothing_lost_or_doubled(settings, app, publisher, workers)


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
def test_the_pipeline_resumes_after_the_kafka_broker_restarts_mid_stream(
    start_extra_kafka: Callable[[], LocalKafka], postgres_url: str, logs: Path, crash: bool
) -> None:
    broker = start_extra_kafka()
    settings = pipeline_settings(broker.bootstrap, postgres_url)
    with mid_stream(settings, logs, seed=3):  # the SDK buffers; every client retries
        if crash:
            os.killpg(broker.pid() or 0, signal.SIGKILL)
            wait_for(lambda: not broker.status(), "the broker to be gone")
        else:
            assert broker.stop() is True
        time.sleep(3)
        broker.start(timeout=180)


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server this test may crash and restart (commits are durable)."""
    cluster = PostgresCluster(durable_commits=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_the_pipeline_resumes_after_postgresql_restarts_mid_stream(
    kafka_bootstrap: str, own_postgres: PostgresCluster, logs: Path, mode: str
) -> None:
    """`fast` closes every connection; `immediate` is a crash of the server."""
    settings = pipeline_settings(kafka_bootstrap, create_database(own_postgres.server_url))
    with mid_stream(settings, logs, seed=4) as workers:
        own_postgres.stop_server(mode)
        time.sleep(8)
        own_postgres.start_server()
    # The event store's pool waits for the server (up to 10 s a try, 10 tries), so
    # commands, relay and timers ride it out; the read models' connection breaks, and
    # that role fails a step, backs off and is rebuilt from its stored offsets.
    assert workers.recovered_from_failures("projections")
