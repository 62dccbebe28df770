"""The outbox relay: the event store's notification log → support.ticket-events.

Every ticket and session event is published in recording order, keyed by its stream
(ticket) id, as the SPEC §5 envelope exactly as stored (so its hash verifies; JSON with
sorted keys, UTF-8), with
`type` and `schema_version` headers. The relay's position is an eventsourcing
Tracking record in the event store, written only after the broker acknowledged the
whole batch: a crash between send and store republishes (consumers dedupe by
ticket_id + version), it never skips.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from eventsourcing.persistence import IntegrityError, Tracking
from kafka.producer import KafkaProducer

from ticketflow.application import STREAM_TOPICS, TicketingApp
from ticketflow.producers.topics import TICKET_EVENTS

log = logging.getLogger(__name__)

TRACKING_NAME = "ticketflow-relay"


def producer_config(client_config: dict[str, Any]) -> dict[str, Any]:
    """Idempotent, fully acknowledged, order-preserving (≤ 5 in flight), whatever the
    user's options say; batches of up to 256 KiB per partition, waiting at most 10 ms
    to fill, unless the user's options say otherwise (kafka-python's 16 KiB default
    halves the throughput)."""
    return {"linger_ms": 10, "batch_size": 262_144, **client_config,
            "enable_idempotence": True, "acks": "all",
            "max_in_flight_requests_per_connection": 5, "retries": 2_147_483_647}


def event_message(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Kafka record for one envelope: key, value and headers."""
    return {
        "key": envelope["ticket_id"].encode("utf-8"),
        "value": orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS),
        "headers": [("type", envelope["type"].encode()),
                    ("schema_version", str(envelope["schema_version"]).encode()),
                    ("event_id", envelope["event_id"].encode())],
    }


class OutboxRelay:
    def __init__(
        self, app: TicketingApp, producer: KafkaProducer, *, batch_size: int = 1000,
        topic: str = TICKET_EVENTS, ack_timeout: float = 60.0,
    ) -> None:
        self.app = app
        self.producer = producer
        self.batch_size = batch_size
        self.topic = topic
        self.ack_timeout = ack_timeout

    @property
    def position(self) -> int:
        """The last notification id whose events the broker has acknowledged."""
        return self.app.process_recorder.max_tracking_id(TRACKING_NAME) or 0

    def run_once(self) -> int:
        """Publish the next batch; returns how many events were published."""
        start = self.position + 1
        notifications = self.app.recorder.select_notifications(start, self.batch_size,
                                                               topics=STREAM_TOPICS)
        if not notifications:
            return 0
        futures = [
            self.producer.send(self.topic, **event_message(self.app.envelope_of(n)))
            for n in notifications
        ]
        self.producer.flush(timeout=self.ack_timeout)
        for future in futures:
            future.get(timeout=self.ack_timeout)  # raises if the broker refused one
        self._store(notifications[-1].id)
        return len(futures)

    def _store(self, position: int) -> None:
        try:
            self.app.process_recorder.insert_events([], tracking=Tracking(TRACKING_NAME, position))
        except IntegrityError:
            log.info("relay position %s was already stored by another relay", position)

    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        """Follow the log until `stop` is set."""
        while not stop.is_set():
            if self.run_once() == 0:
                stop.wait(idle)
