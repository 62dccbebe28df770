"""The command consumer: support.commands → the application service → dead letters.

A consumer group on support.commands. Each poll's messages go through the same
application service as `ticketflow apply`, as one batch in one transaction (same
outcomes as one by one); offsets are committed only after the outcomes are durable
(the receipt and events are committed, and any dead letter acknowledged). Rejected or
unreadable messages go to support.dead-letter with their original bytes, the reason
code and message as headers. A redelivered message is answered `duplicate`; if it had
been rejected, its dead letter is published again (at least once), so a crash between
the receipt and the dead letter cannot lose it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kafka.consumer import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer import KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from ticketflow.application import Outcome, TicketingApp
from ticketflow.consumers.group import subscribe_when_known
from ticketflow.producers.topics import DEAD_LETTER, Topics
from ticketflow.schemas.commands import peek_identity

log = logging.getLogger(__name__)

GROUP = "ticketflow-commands"


def consumer_config(client_config: dict[str, Any], group: str = GROUP) -> dict[str, Any]:
    """The group is named after the topic it reads, so prefixed environments don't mix."""
    return {**client_config, "group_id": f"{GROUP}:{group}", "enable_auto_commit": False,
            "auto_offset_reset": "earliest", "max_poll_records": 500}


def dead_letter(
    record: ConsumerRecord, error: dict[str, str], message_id: str | None
) -> dict[str, Any]:
    """The dead-letter record: the original key and bytes, the reason in headers."""
    source = f"{record.topic}/{record.partition}/{record.offset}"
    return {
        "key": record.key,
        "value": record.value if record.value is not None else b"",
        "headers": [("error_code", error["code"].encode()),
                    ("error_message", error["message"].encode("utf-8")),
                    ("message_id", (message_id or "").encode("utf-8")),
                    ("source", source.encode())],
    }


def _bytes(record: ConsumerRecord) -> bytes:
    return record.value if record.value is not None else b""


class CommandConsumer:
    def __init__(
        self, app: TicketingApp, consumer: KafkaConsumer, producer: KafkaProducer,
        *, dead_letter_topic: str = DEAD_LETTER, poll_ms: int = 200,
    ) -> None:
        self.app = app
        self.consumer = consumer
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic
        self.poll_ms = poll_ms

    @classmethod
    def subscribe(cls, app: TicketingApp, client_config: dict[str, Any],
                  producer: KafkaProducer, topics: Topics | None = None) -> CommandConsumer:
        topics = topics or Topics()
        consumer = KafkaConsumer(**consumer_config(client_config, group=topics.commands))
        subscribe_when_known(consumer, topics.commands)
        return cls(app, consumer, producer, dead_letter_topic=topics.dead_letter)

    def run_once(self) -> int:
        """Handle one poll's worth of messages in one transaction; returns how many."""
        batches = self.consumer.poll(timeout_ms=self.poll_ms)
        done: dict[TopicPartition, int] = {}
        try:
            records = [record for records in batches.values() for record in records]
            outcomes = self.app.apply_batch([_bytes(record) for record in records])
            for record, outcome in zip(records, outcomes, strict=True):
                if (outcome.error or {}).get("code") == "conflict":
                    break  # not recorded: it and what follows are fetched again
                self._after(record, outcome)
                done[TopicPartition(record.topic, record.partition)] = record.offset + 1
        finally:
            self._settle(batches, done)
        return sum(len(records) for records in batches.values())

    def _after(self, record: ConsumerRecord, outcome: Outcome) -> None:
        """Dead-letter a rejection; a redelivered rejected message's dead letter again."""
        if outcome.status == "rejected" and outcome.error:
            self.producer.send(self.dead_letter_topic,
                               **dead_letter(record, outcome.error, outcome.message_id))
        elif outcome.status == "duplicate":
            self._republish_if_rejected(record, _bytes(record))

    def _republish_if_rejected(self, record: ConsumerRecord, raw: bytes) -> None:
        message_id = peek_identity(raw).get("message_id")
        receipt = self.app.event_log.receipt_of(raw)
        if receipt is not None and receipt.status == "rejected" and receipt.error:
            self.producer.send(self.dead_letter_topic,
                               **dead_letter(record, receipt.error, message_id))

    def _settle(self, batches: dict[TopicPartition, list[ConsumerRecord]],
                done: dict[TopicPartition, int]) -> None:
        """Dead letters acknowledged, then offsets committed for what was handled;
        anything not handled (an error mid-batch) is fetched again next poll."""
        self.producer.flush()
        if done:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)
                                  for tp, offset in done.items()})
        for partition, records in batches.items():
            next_offset = done.get(partition, records[0].offset)
            if next_offset <= records[-1].offset:
                self.consumer.seek(partition, next_offset)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_once()

    def close(self) -> None:
        self.consumer.close()
