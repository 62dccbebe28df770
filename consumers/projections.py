"""Projection runner over Kafka: support.ticket-events → the read models.

A consumer group per read-model database. The same `Projector.apply` as the local
runner writes the rows, and the partitions' offsets go into the read-model database
in the same transaction, so a rebalance or restart never applies an event twice or
skips one: records below the stored offset are skipped, and the per-ticket version
guard makes the relay's at-least-once duplicates no-ops. Kafka's own committed offsets
are only a head start after a restart.
"""

from __future__ import annotations

import json
from typing import Any

from kafka.consumer import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import Connection, Engine, select

from ticketflow.application import TicketingApp
from ticketflow.consumers.commands import subscribe_when_known
from ticketflow.producers.topics import Topics
from ticketflow.projections.db import insert
from ticketflow.projections.runner import Projector

GROUP = "ticketflow-read-models"


class KafkaProjectionRunner:
    def __init__(self, projector: Projector, consumer: KafkaConsumer, topic: str) -> None:
        self.projector = projector
        self.consumer = consumer
        self.topic = topic

    @classmethod
    def subscribe(cls, app: TicketingApp, engine: Engine, client_config: dict[str, Any],
                  topics: Topics | None = None) -> KafkaProjectionRunner:
        topic = (topics or Topics()).ticket_events
        consumer = KafkaConsumer(**client_config, group_id=f"{GROUP}:{topic}",
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=2000)
        subscribe_when_known(consumer, topic)
        return cls(Projector(app, engine), consumer, topic)

    def run_once(self) -> int:
        """Apply one poll's worth of events; returns how many were new."""
        batches = self.consumer.poll(timeout_ms=200)
        if not batches:
            return 0
        with self.projector.engine.begin() as conn:
            stored = self._stored(conn)
            envelopes, positions = [], {}
            for partition, records in batches.items():
                for record in records:
                    if record.offset >= stored.get(partition.partition, 0):
                        envelopes.append(json.loads(record.value))
                    positions[partition] = record.offset + 1
            self.projector.apply(conn, envelopes)
            self._store(conn, positions)
        self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)
                              for tp, offset in positions.items()})
        return len(envelopes)

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
