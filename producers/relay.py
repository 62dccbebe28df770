"""The outbox relay: the event store's notification log → support.ticket-events, and
its notification records → support.notifications (SPEC §10).

Every ticket and session event is published in recording order, keyed by its stream
(ticket) id, as the SPEC §5 envelope exactly as stored (so its hash verifies; JSON with
sorted keys, UTF-8), with `type` and `schema_version` headers. Every notification is
published the same way, keyed by its ticket id, to the notifications topic: one log,
one position, so both topics get the same guarantees. The relay's position
is an eventsourcing Tracking record in the event store, written only once the broker
acknowledged every event up to it: a crash between send and store republishes
(consumers dedupe by ticket_id + version), it never skips.

Batches are pipelined: the next one is read and sent while earlier ones are still in
flight (at most `MAX_IN_FLIGHT` batches), and the position moves on as soon as the
oldest batches are all acknowledged. A failed send drops what is in flight and starts
again from the stored position.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import orjson
from eventsourcing.persistence import IntegrityError, Tracking
from kafka.producer import KafkaProducer

from ticketflow import metrics
from ticketflow.domain.notifications import NOTIFICATION_TOPIC
from ticketflow.event_log import STREAM_TOPICS, Store
from ticketflow.logs import event
from ticketflow.producers.topics import NOTIFICATIONS, TICKET_EVENTS

log = logging.getLogger(__name__)

TRACKING_NAME = "ticketflow-relay"
MAX_IN_FLIGHT = 4  # batches sent but not yet all acknowledged


def producer_config(client_config: dict[str, Any]) -> dict[str, Any]:
    """Idempotent, fully acknowledged, order-preserving (≤ 5 in flight), whatever the
    user's options say; batches of up to 256 KiB per partition, waiting at most 5 ms
    to fill, unless the user's options say otherwise (kafka-python's 16 KiB default
    halves the throughput)."""
    return {"linger_ms": 5, "batch_size": 262_144, **client_config,
            "enable_idempotence": True, "acks": "all",
            "max_in_flight_requests_per_connection": 5, "retries": 2_147_483_647}


#: The headers of an event record: the envelope's fields of these names, as text.
EVENT_HEADERS = ("type", "schema_version", "event_id")


def event_message(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Kafka record for one envelope: key, value and headers."""
    return {
        "key": envelope["ticket_id"].encode("utf-8"),
        "value": orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS),
        "headers": [(name, str(envelope[name]).encode()) for name in EVENT_HEADERS],
    }


#: The headers of a notification's record: each the document's field of that name.
NOTIFICATION_HEADERS = ("notification_id", "tenant", "rule")


def notification_message(document: dict[str, Any]) -> dict[str, Any]:
    """The Kafka record for one notification (SPEC §10): keyed by its ticket id."""
    return {
        "key": document["ticket_id"].encode("utf-8"),
        "value": orjson.dumps(document, option=orjson.OPT_SORT_KEYS),
        "headers": [(name, str(document[name]).encode("utf-8"))
                    for name in NOTIFICATION_HEADERS],
    }


#: What the relay follows: every stream event, and every notification.
RELAYED_TOPICS = (*STREAM_TOPICS, NOTIFICATION_TOPIC)


class OutboxRelay:
    def __init__(
        self, app: Store, producer: KafkaProducer, *, batch_size: int = 1000,
        topic: str = TICKET_EVENTS, notifications_topic: str = NOTIFICATIONS,
        ack_timeout: float = 60.0,
    ) -> None:
        self.app = app
        self.producer = producer
        self.batch_size = batch_size
        self.topic = topic
        self.notifications_topic = notifications_topic
        self.ack_timeout = ack_timeout
        self.in_flight: deque[tuple[int, list[Any]]] = deque()  # (last id, futures)
        self.sent: int | None = None  # the last notification id sent (None: ask the store)
        self.stored: int | None = None  # the last position stored (None: not yet known)
        self.lag_due = 0.0  # when to measure the lag again while idle (monotonic)

    @property
    def position(self) -> int:
        """The last notification id whose events the broker has acknowledged."""
        return self.app.process_recorder.max_tracking_id(TRACKING_NAME) or 0

    def run_once(self) -> int:
        """Send the next batch; returns how many events were sent (0: all sent and
        acknowledged, and the position stored)."""
        try:
            if self.sent is None:
                self.sent = self.stored = self.position
                event(log, "relay_started", position=self.sent, topic=self.topic)
            notifications = self.app.event_log.recorder.select_notifications(
                self.sent + 1, self.batch_size, topics=RELAYED_TOPICS)
            if notifications:
                self.in_flight.append((notifications[-1].id, [
                    self._send(n) for n in notifications]))
                self.sent = notifications[-1].id
            if not notifications or len(self.in_flight) > MAX_IN_FLIGHT:
                self.producer.flush(timeout=self.ack_timeout)
            self._settle()
            if notifications:
                metrics.BATCH_SIZE.labels("relay").observe(len(notifications))
            elif self.stored is not None and time.monotonic() > self.lag_due:
                # idle: at most once a second; nothing left to send or in flight is 0
                self._measure_lag(self.stored, caught_up=not self.in_flight)
        except Exception:
            self.in_flight.clear()  # resend from the stored position
            self.sent = None
            raise
        return len(notifications)

    def _send(self, record: Any) -> Any:
        """Publish one record of the log: an event, or a notification."""
        log_ = self.app.event_log
        if record.topic == NOTIFICATION_TOPIC:
            return self.producer.send(self.notifications_topic,
                                      **notification_message(log_.decode(record)["document"]))
        return self.producer.send(self.topic, **event_message(log_.envelope_of(record)))

    def _settle(self) -> None:
        """Store the position after the oldest batches whose events are all acknowledged."""
        acknowledged = None
        try:
            while self.in_flight and all(f.is_done for f in self.in_flight[0][1]):
                position, futures = self.in_flight[0]
                for future in futures:
                    future.get(timeout=0)  # raises if the broker refused one
                self.in_flight.popleft()
                acknowledged = position
        finally:
            if acknowledged is not None:
                self._store(acknowledged)

    def _store(self, position: int) -> None:
        try:
            self.app.process_recorder.insert_events([], tracking=Tracking(TRACKING_NAME, position))
        except IntegrityError:
            event(log, "relay_position_taken", position=position,
                  note="already stored by another relay")
        else:
            event(log, "relay_position_stored", position=position,
                  advanced=position - (self.stored or 0))
        self.stored = position
        metrics.RELAY_POSITION.labels(topic=self.topic).set(position)
        self._measure_lag(position)

    def _measure_lag(self, position: int, caught_up: bool = False) -> None:
        """Records in the store after the acknowledged position (the metric): 0 once every
        event is sent and acknowledged, else an upper bound (the receipts and policy
        copies between events count too: it costs one indexed read, not a scan)."""
        last = self.app.event_log.recorder.max_notification_id() or 0
        lag = 0 if caught_up else max(last - position, 0)
        metrics.RELAY_LAG.labels(topic=self.topic).set(lag)
        self.lag_due = time.monotonic() + 1.0

    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        """Follow the log until `stop` is set."""
        while not stop.is_set():
            if self.run_once() == 0:
                stop.wait(idle)
