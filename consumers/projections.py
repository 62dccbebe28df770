"""Projection runner over Kafka: support.ticket-events → the read models.

A consumer group per read-model database. The same `Projector.apply` as the local
runner writes the rows, and the partitions' offsets go into the read-model database
in the same transaction, so a rebalance or restart never applies an event twice or
skips one: records below the stored offset are skipped, and the per-ticket version
guard makes the relay's at-least-once duplicates no-ops. Kafka's own committed offsets
are only a head start after a restart.

Besides its lag, the runner reports how many events are parked in the read models
(`ticketflow_parked_events`), counted again every `PARKED_EVERY` seconds: whoever parks
or retries them (this runner, the HTTP API's catch-up, `ticketflow parked --retry`), the
figure follows.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from kafka.consumer import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import Connection, Engine, select

from ticketflow import metrics
from ticketflow.consumers.group import close_and_leave, record_lag, subscribe_when_known
from ticketflow.event_log import Store
from ticketflow.logs import event
from ticketflow.producers.topics import Topics
from ticketflow.projections.db import insert
from ticketflow.projections.replay import open_projector
from ticketflow.projections.runner import Projector

log = logging.getLogger(__name__)

GROUP = "ticketflow-read-models"
BATCH = 10_000  # events applied in one transaction at most
PARKED_EVERY = 5.0  # seconds between two counts of the parked events


def _log_commit_failure(offsets: Any, response: Any) -> None:
    if isinstance(response, Exception):
        event(log, "offset_commit_failed", error=type(response).__name__,
              note="the read models keep their own offsets")


class KafkaProjectionRunner:
    def __init__(self, projector: Projector, consumer: KafkaConsumer, topic: str,
                 admin_config: dict[str, Any] | None = None) -> None:
        self.projector = projector
        self.consumer = consumer
        self.topic = topic
        self.group = str(consumer.config.get("group_id"))
        #: For leaving the group as a static member (`close(leave=True)`).
        self.admin_config = admin_config
        self.parked_due = 0.0  # when to count the parked events again (monotonic)

    @classmethod
    def subscribe(cls, app: Store, engine: Engine, client_config: dict[str, Any],
                  topics: Topics | None = None,
                  admin_config: dict[str, Any] | None = None) -> KafkaProjectionRunner:
        topic = (topics or Topics()).ticket_events
        group = f"{GROUP}:{topic}"
        consumer = KafkaConsumer(**client_config, group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=5000)
        subscribe_when_known(consumer, topic, group=group)
        return cls(open_projector(app, engine), consumer, topic, admin_config)

    def run_once(self) -> int:
        """Apply what the broker has (up to `BATCH` events, one transaction); returns
        how many events were new. A consumer that is behind takes bigger batches, one
        that keeps up applies each event as soon as it arrives."""
        batches = self._poll()
        if not batches:
            self._record_lag()
            return 0
        try:
            with self.projector.engine.begin() as conn:
                stored = self._stored(conn)
                envelopes, positions = [], {}
                for partition, records in batches.items():
                    for record in records:
                        if record.offset >= stored.get(partition.partition, 0):
                            envelopes.append(orjson.loads(record.value))
                        positions[partition] = record.offset + 1
                self.projector.apply(conn, envelopes)
                self._store(conn, positions)
        except Exception:
            for partition, records in batches.items():  # nothing applied: fetch it again
                self.consumer.seek(partition, records[0].offset)
            raise
        # Only a head start for the next assignment: the offsets that count are the
        # ones just stored with the rows, so this neither waits nor fails the batch.
        self.consumer.commit_async({tp: OffsetAndMetadata(offset, "", -1)
                                    for tp, offset in positions.items()},
                                   callback=_log_commit_failure)
        read = sum(len(records) for records in batches.values())
        metrics.BATCH_SIZE.labels("projections").observe(read)
        event(log, "projection_applied", size=read, new=len(envelopes),
              positions={f"{tp.topic}/{tp.partition}": offset
                         for tp, offset in sorted(positions.items())})
        self._record_lag()
        return len(envelopes)

    def _record_lag(self) -> None:
        for tp, lag in record_lag(self.consumer, self.group).items():
            metrics.PROJECTION_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        if time.monotonic() >= self.parked_due:
            metrics.PARKED_EVENTS.labels(self.group).set(self.projector.count_parked())
            self.parked_due = time.monotonic() + PARKED_EVERY

    def _poll(self) -> dict[TopicPartition, list[Any]]:
        """One poll (waiting up to 200 ms), then more while records are already there."""
        batches: dict[TopicPartition, list[Any]] = {}
        polled, timeout = 0, 200
        while polled < BATCH:
            fetched = self.consumer.poll(timeout_ms=timeout, max_records=BATCH - polled)
            if not fetched:
                break
            for partition, records in fetched.items():
                batches.setdefault(partition, []).extend(records)
                polled += len(records)
            timeout = 0
        return batches

    def _stored(self, conn: Connection) -> dict[int, int]:
        table = self.projector.t.offsets
        query = select(table.c.partition, table.c.offset).where(table.c.topic == self.topic)
        return {int(row.partition): int(row.offset) for row in conn.execute(query)}

    def _store(self, conn: Connection, positions: dict[TopicPartition, int]) -> None:
        table = self.projector.t.offsets
        for partition, offset in sorted(positions.items()):
            statement = insert(conn, table).values(topic=self.topic,
                                                     partition=partition.partition,
                                                     offset=offset)
            conn.execute(statement.on_conflict_do_update(
                index_elements=["topic", "partition"], set_={"offset": offset}))

    def close(self, leave: bool = False) -> None:
        """Close the consumer; `leave`: stopping for good, so leave the group now."""
        close_and_leave(self.consumer, self.admin_config, leave)
