"""The Kafka pipeline in one process, for the integration tests: `serve()` in a thread
(`Pipeline`), and fixtures for a test's own settings, topics, running pipeline and SDK
client on the session's broker (registered for every tier by tests/conftest.py).

The engine's clock in these tests is an hour after T0 (`STORY_CLOCK`), running.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from kafka.consumer import KafkaConsumer

from tests.support.builders import T0
from ticketflow.clock import SystemClock
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.serve import serve
from ticketflow.settings import Settings, kafka_client_config

Records = list[dict[str, Any]]


class Pipeline:
    """serve() in a background thread, stoppable and restartable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> Pipeline:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=serve, args=(self.settings,),
                                       kwargs={"stop": self.stop_event, "partitions": 3},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=60)
            assert not self.thread.is_alive(), "serve did not stop"


#: The engine's clock in these tests: an hour after the stories begin, running. The
#: stories end minutes after T0, so nothing is due before the 7-day auto-close, whatever
#: the date the suite runs on (the timer role fires what is due by this clock).
STORY_CLOCK = T0 + timedelta(hours=1)


@pytest.fixture
def settings(kafka_bootstrap: str, sqlite_url: str) -> Settings:
    return Settings(db=sqlite_url, kafka=kafka_bootstrap,
                    topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
                    clock=SystemClock.starting_at(STORY_CLOCK))


@pytest.fixture
def topics(settings: Settings) -> Topics:
    """This test's topics, created and ready before anything produces or consumes."""
    named = Topics.named(settings.topic_prefix)
    ensure_topics(kafka_client_config(settings.kafka), named, partitions=3)
    return named


@pytest.fixture
def pipeline(settings: Settings, topics: Topics) -> Iterator[Pipeline]:
    running = Pipeline(settings).start()
    yield running
    running.stop()


@pytest.fixture
def client(settings: Settings, topics: Topics) -> Iterator[CommandClient]:  # topics first
    with CommandClient(settings.kafka or "", topics) as sdk:
        yield sdk


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60.0,
               **options: Any) -> Records:
    """Every record of a topic, from the beginning, once at least `expected` are there
    (`options`: a SASL login, say)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000,
                             **options)
    records: Records = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for record in consumer:
                records.append({"key": record.key, "value": record.value,
                                "headers": dict(record.headers), "partition": record.partition,
                                "offset": record.offset})
    finally:
        consumer.close()
    return records
