"""Relay: the event store's log → support.ticket-events (and its notifications →
support.notifications), against a plain kafka-python producer sending the same bytes.

Ours: `OutboxRelay` over a stored history (read the log, decode, encode the envelope,
send keyed by ticket with headers, wait for the broker's acknowledgements, store the
position). Baseline: the same records — key, value and headers computed beforehand —
sent by a plain `KafkaProducer` with the same settings (idempotent, acks=all), then
flushed. Both into fresh six-partition topics of the same broker.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.producer import KafkaProducer

from bench.common import Figures, compared, rate, say
from bench.projections import in_child
from ticketflow.bootstrap import build_app
from ticketflow.domain.notifications import NOTIFICATION_TOPIC
from ticketflow.producers.relay import (
    RELAYED_TOPICS,
    OutboxRelay,
    event_message,
    notification_message,
    producer_config,
)
from ticketflow.settings import Settings

PARTITIONS = 6


def create_topic(bootstrap: str, name: str) -> str:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        admin.close()
    return name


def relay_ours(path: str, bootstrap: str, topic: str, notifications: str) -> dict[str, Any]:
    with build_app(Settings(db=f"sqlite:///{path}")) as app:
        producer = KafkaProducer(**producer_config({"bootstrap_servers": bootstrap}))
        relay = OutboxRelay(app, producer, batch_size=5000, topic=topic,
                            notifications_topic=notifications)
        try:
            count, started = 0, time.perf_counter()
            while sent := relay.run_once():
                count += sent
            return {"events": count, "seconds": time.perf_counter() - started}
        finally:
            producer.close()


def send_plain(path: str, bootstrap: str, topic: str, notifications: str) -> dict[str, Any]:
    with build_app(Settings(db=f"sqlite:///{path}")) as app:
        messages, position = [], 0
        while records := app.recorder.select_notifications(position + 1, 10_000,
                                                           topics=RELAYED_TOPICS):
            messages += [
                (notifications, notification_message(app.event_log.decode(r)["document"]))
                if r.topic == NOTIFICATION_TOPIC
                else (topic, event_message(app.event_log.envelope_of(r)))
                for r in records]
            position = records[-1].id
    producer = KafkaProducer(**producer_config({"bootstrap_servers": bootstrap}))
    try:
        started = time.perf_counter()
        for to, message in messages:
            producer.send(to, **message)
        producer.flush()
        return {"events": len(messages), "seconds": time.perf_counter() - started,
                "ticket_events": sum(1 for to, _ in messages if to == topic)}
    finally:
        producer.close()


def run(history: Path, bootstrap: str) -> tuple[Figures, str, int]:
    """The figures, and the events topic our relay filled with how many events (for the
    Kafka projections run; the notifications went to a topic of their own)."""
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-relay-"))
    copy = folder / "store.db"
    shutil.copyfile(history, copy)
    try:
        say("relay: plain kafka-python sends of the same records")
        plain = in_child(send_plain, str(copy), bootstrap, create_topic(bootstrap, "bench.plain"),
                         create_topic(bootstrap, "bench.plain-notifications"))
        topic = create_topic(bootstrap, "bench.ticket-events")
        say("relay: outbox relay from the store")
        ours = in_child(relay_ours, str(copy), bootstrap, topic,
                        create_topic(bootstrap, "bench.notifications"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figures = compared(rate(ours["events"], ours["seconds"]),
                       rate(plain["events"], plain["seconds"]), "events/s", goal=0.8,
                       events=ours["events"], goal_events_per_s=20_000,
                       goal_rate_met=rate(ours["events"], ours["seconds"]) >= 20_000)
    return figures, topic, plain["ticket_events"]
