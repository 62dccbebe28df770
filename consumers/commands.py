"""The command consumer: support.commands → the application service → dead letters.

A consumer group on support.commands. Each poll's messages go through the same
application service as `ticketflow apply`, as one batch in one transaction (same
outcomes as one by one); offsets are committed only after the outcomes are durable
(the receipt and events are committed, and any dead letter acknowledged). Rejected or
unreadable messages go to support.dead-letter with their original bytes, the reason
code and message as headers; of a value over KEEP_BYTES only the head is published,
with the whole value's length and SHA-256 in headers (as the store keeps it), so no
sender can fill the forever-kept topic with big records. A redelivered message is
answered `duplicate`; if it had been rejected, its dead letter is published again (at
least once), so a crash between the receipt and the dead letter cannot lose it.

With keys required (TICKETFLOW_REQUIRE_KEYS=1, SPEC §8) each message must carry the
headers of a key's signature over its exact value (docs/kafka.md, "Signed commands"):
the key that signed it bounds what it may say (`forbidden` outside its tenant, roles
and actor); an unsigned or badly signed message, or one signed with an unknown,
revoked or expired key, is rejected `unauthenticated` unread. Both are dead-lettered.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from kafka.consumer import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer import KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from ticketflow import metrics
from ticketflow.application import Outcome, TicketingApp
from ticketflow.consumers.group import close_and_leave, record_lag, subscribe_when_known
from ticketflow.domain.errors import Unauthenticated
from ticketflow.domain.receipt import KEEP_BYTES
from ticketflow.keys import KEY_ID_HEADER, SIGNATURE_HEADER, Bounds, Key, Keys, Refused
from ticketflow.logs import event
from ticketflow.producers.topics import DEAD_LETTER, Topics
from ticketflow.schemas.commands import peek_identity

log = logging.getLogger(__name__)

GROUP = "ticketflow-commands"
#: The headers of a dead letter, in order: the code, the reason, the command's message
#: id (empty if none could be read) and where it was read (topic/partition/offset).
DEAD_LETTER_HEADERS = ("error_code", "error_message", "message_id", "source")
#: Added after those when the command's value was over KEEP_BYTES and the dead letter's
#: value is only its head: the whole value's length in bytes (decimal) and SHA-256 (hex),
#: the `original_length` and `original_sha256` of `ticketflow dead-letters --json`.
TRUNCATION_HEADERS = ("original_length", "original_sha256")
#: The command's own headers a dead letter carries on, verbatim, after those above: who
#: signed it, so an operator sees the key and can publish the letter again as it came
#: (its signature still holds, unless the value was cut to its head). Others are
#: dropped, and so is one longer than `MAX_CARRIED_HEADER` bytes (a well-formed one is
#: at most 88).
CARRIED_HEADERS = (KEY_ID_HEADER, SIGNATURE_HEADER)
MAX_CARRIED_HEADER = 128


def consumer_config(client_config: dict[str, Any], group: str = GROUP) -> dict[str, Any]:
    """The group is named after the topic it reads, so prefixed environments don't mix."""
    return {**client_config, "group_id": f"{GROUP}:{group}", "enable_auto_commit": False,
            "auto_offset_reset": "earliest", "max_poll_records": 500}


def dead_letter(
    record: ConsumerRecord, error: dict[str, str], message_id: str | None
) -> dict[str, Any]:
    """The dead-letter record: the original key and bytes (the first KEEP_BYTES of a
    longer value, with its length and SHA-256), the reason in headers."""
    raw = _bytes(record)
    reason = dict(zip(DEAD_LETTER_HEADERS, (
        error["code"], error["message"], message_id or "",
        f"{record.topic}/{record.partition}/{record.offset}"), strict=True))
    if len(raw) > KEEP_BYTES:
        reason.update(zip(TRUNCATION_HEADERS, (str(len(raw)), hashlib.sha256(raw).hexdigest()),
                          strict=True))
    carried = [(name, value) for name, value in record.headers or ()
               if name in CARRIED_HEADERS and isinstance(value, bytes)
               and len(value) <= MAX_CARRIED_HEADER]
    return {
        "key": record.key,
        "value": raw[:KEEP_BYTES],
        "headers": [*((name, value.encode("utf-8")) for name, value in reason.items()),
                    *dict(carried).items()],
    }


def _bytes(record: ConsumerRecord) -> bytes:
    return record.value if record.value is not None else b""


def _signer(keys: Keys, record: ConsumerRecord, read: dict[str, Key | None]) -> Bounds:
    """The key that signed the record's value, or why none did (`read`: the keys read
    for this poll's batch, each once)."""
    try:
        return keys.verified(record.headers, _bytes(record), read)
    except Unauthenticated as refused:
        return Refused(refused)


class CommandConsumer:
    def __init__(
        self, app: TicketingApp, consumer: KafkaConsumer, producer: KafkaProducer,
        *, dead_letter_topic: str = DEAD_LETTER, poll_ms: int = 200,
        admin_config: dict[str, Any] | None = None, keys: Keys | None = None,
    ) -> None:
        self.app = app
        #: With keys: every message must be signed by one (None: the broker's ACLs only).
        self.keys = keys
        self.consumer = consumer
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic
        self.poll_ms = poll_ms
        self.group = str(consumer.config.get("group_id"))
        #: For leaving the group as a static member (`close(leave=True)`).
        self.admin_config = admin_config
        #: This poll's dead letters, each with the command it reports: its offset is
        #: committed only once the broker has acknowledged the dead letter.
        self._dead_letters: list[tuple[ConsumerRecord, Any]] = []

    @classmethod
    def subscribe(cls, app: TicketingApp, client_config: dict[str, Any],
                  producer: KafkaProducer, topics: Topics | None = None,
                  admin_config: dict[str, Any] | None = None,
                  keys: Keys | None = None) -> CommandConsumer:
        topics = topics or Topics()
        config = consumer_config(client_config, group=topics.commands)
        consumer = KafkaConsumer(**config)
        subscribe_when_known(consumer, topics.commands, group=config["group_id"])
        return cls(app, consumer, producer, dead_letter_topic=topics.dead_letter,
                   admin_config=admin_config, keys=keys)

    def _bounds(self, records: list[ConsumerRecord]) -> list[Bounds | None] | None:
        """Each message's sender, from its signature (None: every sender is trusted)."""
        if self.keys is None:
            return None
        read: dict[str, Key | None] = {}
        return [_signer(self.keys, record, read) for record in records]

    def run_once(self) -> int:
        """Handle one poll's worth of messages in one transaction; returns how many."""
        batches = self.consumer.poll(timeout_ms=self.poll_ms)
        done: dict[TopicPartition, int] = {}
        records = [record for records in batches.values() for record in records]
        handled: list[Outcome] = []
        try:
            outcomes = self.app.apply_batch([_bytes(record) for record in records],
                                            bounds=self._bounds(records))
            for record, outcome in zip(records, outcomes, strict=True):
                if (outcome.error or {}).get("code") == "conflict":
                    event(log, "batch_cut_at_conflict", logging.WARNING,
                          partition=record.partition, offset=record.offset,
                          message_id=outcome.message_id, ticket=outcome.ticket_id)
                    metrics.CONFLICTS.labels("batch_cut").inc()
                    break  # not recorded: it and what follows are fetched again
                self._after(record, outcome)
                handled.append(outcome)
                done[TopicPartition(record.topic, record.partition)] = record.offset + 1
        finally:
            self._settle(batches, done)
        if records:
            self._report(batches, done, handled, len(records))
        record_lag(self.consumer, self.group)
        return len(records)

    def _report(self, batches: dict[TopicPartition, list[ConsumerRecord]],
                done: dict[TopicPartition, int], outcomes: list[Outcome], read: int) -> None:
        """One line per batch: its size, where it was read (offsets: first read, next to
        read), and what became of the messages handled."""
        counts: dict[str, int] = {}
        for outcome in outcomes:
            code = (outcome.error or {}).get("code", "")
            metrics.COMMANDS.labels(outcome.status, code).inc()
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        metrics.BATCH_SIZE.labels("commands").observe(read)
        event(log, "batch_applied", size=read, outcomes=counts,
              offsets={f"{tp.topic}/{tp.partition}": [records[0].offset,
                                                       done.get(tp, records[0].offset)]
                       for tp, records in batches.items()})

    def _after(self, record: ConsumerRecord, outcome: Outcome) -> None:
        """Dead-letter a rejection; a redelivered rejected message's dead letter again."""
        if outcome.status == "rejected" and outcome.error:
            self._send_dead_letter(record, outcome.error, outcome.message_id,
                                   outcome.ticket_id)
        elif outcome.status == "duplicate":
            self._republish_if_rejected(record, _bytes(record))

    def _republish_if_rejected(self, record: ConsumerRecord, raw: bytes) -> None:
        message_id = peek_identity(raw).get("message_id")
        receipt = self.app.event_log.receipt_of(raw)
        if receipt is not None and receipt.status == "rejected" and receipt.error:
            self._send_dead_letter(record, receipt.error, message_id, None, again=True)

    def _send_dead_letter(self, record: ConsumerRecord, error: dict[str, str],
                          message_id: str | None, ticket: str | None,
                          again: bool = False) -> None:
        future = self.producer.send(self.dead_letter_topic,
                                    **dead_letter(record, error, message_id))
        self._dead_letters.append((record, future))
        metrics.DEAD_LETTERS.labels(error["code"]).inc()
        event(log, "dead_letter_sent", code=error["code"], message_id=message_id,
              ticket=ticket, partition=record.partition, offset=record.offset,
              again=again or None)

    def _settle(self, batches: dict[TopicPartition, list[ConsumerRecord]],
                done: dict[TopicPartition, int]) -> None:
        """Dead letters acknowledged, then offsets committed for what was handled;
        anything not handled (an error mid-batch, or a dead letter the broker did not
        take) is fetched again next poll: answered `duplicate`, its dead letter is sent
        again."""
        try:
            self.producer.flush()
        finally:
            self._hold_back_unsent(done)
        if done:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)
                                  for tp, offset in done.items()})
        for partition, records in batches.items():
            next_offset = done.get(partition, records[0].offset)
            if next_offset <= records[-1].offset:
                self.consumer.seek(partition, next_offset)

    def _hold_back_unsent(self, done: dict[TopicPartition, int]) -> None:
        """Move each partition's commit back to its first dead letter not acknowledged
        (the broker restarted and the producer gave up on it, or a flush failed)."""
        sent, self._dead_letters = self._dead_letters, []
        for record, future in sent:
            if future.is_done and future.succeeded():
                continue
            partition = TopicPartition(record.topic, record.partition)
            if partition in done:
                done[partition] = min(done[partition], record.offset)
            event(log, "dead_letter_unacknowledged", logging.WARNING,
                  partition=record.partition, offset=record.offset,
                  error=repr(future.exception) if future.is_done else "not sent",
                  note="fetched again: its dead letter is sent again")

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_once()

    def close(self, leave: bool = False) -> None:
        """Close the consumer; `leave`: stopping for good, so leave the group now."""
        close_and_leave(self.consumer, self.admin_config, leave)
