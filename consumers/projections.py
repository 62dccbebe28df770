"""Projection runner over Kafka: support.ticket-events → the read models.

A consumer group per read-model database. The same `Projector.apply` as the local
runner writes the rows, and the partitions' offsets go into the read-model database
in the same transaction, so a rebalance or restart never applies an event twice or
skips one: records below the stored offset are skipped, and the per-ticket version
guard makes the relay's at-least-once duplicates no-ops. Kafka's own committed offsets
are only a head start after a restart.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from kafka.consumer import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import Connection, Engine, select

from ticketflow.consumers.group import subscribe_when_known
from ticketflow.event_log import Store
from ticketflow.producers.topics import Topics
from ticketflow.projections.db import insert
from ticketflow.projections.runner import Projector

log = logging.getLogger(__name__)

GROUP = "ticketflow-read-models"
BATCH = 10_000  # events applied in one transaction at most


def _log_commit_failure(offsets: Any, response: Any) -> None:
    if isinstance(response, Exception):
        log.info("committing offsets to Kafka failed (%s); the read models keep theirs",
                 response)


class KafkaProjectionRunner:
    def __init__(self, projector: Projector, consumer: KafkaConsumer, topic: str) -> None:
        self.projector = projector
        self.consumer = consumer
        self.topic = topic

    @classmethod
    def subscribe(cls, app: Store, engine: Engine, client_config: dict[str, Any],
                  topics: Topics | None = None) -> KafkaProjectionRunner:
        topic = (topics or Topics()).ticket_events
        consumer = KafkaConsumer(**client_config, group_id=f"{GROUP}:{topic}",
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=5000)
        subscribe_when_known(consumer, topic)
        return cls(Projector(app, engine), consumer, topic)

    def run_once(self) -> int:
        """Apply what the broker has (up to `BATCH` events, one transaction); returns
        how many events were new. A consumer that is behind takes bigger batches, one
        that keeps up applies each event as soon as it arrives."""
        batches = self._poll()
        if not batches:
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
        return len(envelopes)

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

    def close(self) -> None:
        self.consumer.close()
