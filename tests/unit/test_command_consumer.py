"""The command consumer's offsets, with a fake consumer and producer on an in-memory
store: a rejected command's offset is committed only once the broker has taken its dead
letter; one the producer gave up on (the broker was down past the delivery timeout) is
fetched again, answered `duplicate`, and its dead letter sent again. And what it tells
its operator: each dead letter (`dead_letter_sent`, counted by code), each command by
outcome and code, and a batch cut at a command that kept losing its race."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from tests.support.builders import T0, command_line, create_payload
from tests.support.observed import Said, fields, said, sample
from ticketflow.application import Outcome, TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.consumers.commands import DEAD_LETTER_HEADERS, CommandConsumer, dead_letter
from ticketflow.domain.receipt import KEEP_BYTES
from ticketflow.settings import Settings

TOPIC = "support.commands"


class Future:
    def __init__(self, fails: bool) -> None:
        self.is_done, self.fails = True, fails
        self.exception = RuntimeError("delivery timed out") if fails else None

    def succeeded(self) -> bool:
        return not self.fails


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failing = False

    def send(self, topic: str, *, key: bytes | None, value: bytes, headers: Any) -> Future:
        self.sent.append(dict(headers)["message_id"].decode())
        return Future(self.failing)

    def flush(self, timeout: float | None = None) -> None:
        pass


class FakeConsumer:
    """One partition; `poll` hands out everything from the position on."""

    config = {"group_id": TOPIC}

    def __init__(self, values: list[bytes]) -> None:
        self.partition = TopicPartition(TOPIC, 0)
        self.records = [ConsumerRecord(TOPIC, 0, 0, offset, 0, 0, b"T-1", value, [], None,
                                       len(value), -1, -1) for offset, value in enumerate(values)]
        self.position = 0
        self.committed = 0

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[ConsumerRecord]]:
        batch = self.records[self.position:]
        self.position = len(self.records)
        return {self.partition: batch} if batch else {}

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.committed = offsets[self.partition].offset

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.position = offset


@pytest.fixture
def app() -> Iterator[TicketingApp]:
    with build_app(Settings(db="sqlite:///:memory:")) as store:
        yield store


def messages() -> list[bytes]:
    return [command_line("c", "create_ticket", "T-1", T0, "customer", create_payload()),
            command_line("r", "resolve", "T-1", T0, "customer", {"resolution": "x"}),
            command_line("a", "add_comment", "T-1", T0, "customer", {"body": "hi"})]


def consumer_on(app: TicketingApp, producer: FakeProducer,
                consumer: FakeConsumer) -> CommandConsumer:
    command_consumer = CommandConsumer(app, consumer, producer)  # type: ignore[arg-type]
    command_consumer.group = TOPIC
    return command_consumer


def test_a_dead_letter_the_broker_took_lets_the_offset_move_on(
    app: TicketingApp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ticketflow.consumers.commands.record_lag", lambda *a: None)
    producer, consumer = FakeProducer(), FakeConsumer(messages())
    assert consumer_on(app, producer, consumer).run_once() == 3
    assert producer.sent == ["r"]  # a customer may not resolve: forbidden
    assert consumer.committed == 3


def test_a_dead_letter_the_broker_never_took_is_sent_again(
    app: TicketingApp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ticketflow.consumers.commands.record_lag", lambda *a: None)
    producer, consumer = FakeProducer(), FakeConsumer(messages())
    commands = consumer_on(app, producer, consumer)
    producer.failing = True
    commands.run_once()
    assert consumer.committed == 1  # up to the rejected command, not past it
    assert consumer.position == 1  # it and what follows are fetched again
    producer.failing = False
    assert commands.run_once() == 2
    assert producer.sent == ["r", "r"]  # answered duplicate; its dead letter sent again
    assert consumer.committed == 3
    assert app.event_log.outcome("a", None).status == "accepted"


def test_a_dead_letter_is_logged_and_counted_by_its_code_and_so_is_its_command(
    app: TicketingApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("ticketflow.consumers.commands.record_lag", lambda *a: None)
    producer, consumer = FakeProducer(), FakeConsumer(messages())
    commands = consumer_on(app, producer, consumer)
    counted = {(outcome, code): sample("ticketflow_commands_total", outcome=outcome, code=code)
               for outcome, code in [("accepted", ""), ("rejected", "forbidden"),
                                     ("duplicate", "")]}
    letters = sample("ticketflow_dead_letters_total", code="forbidden")
    with caplog.at_level(logging.INFO, logger="ticketflow"):
        commands.run_once()
        consumer.position = 0  # all three again (as after a rebalance)
        commands.run_once()
    assert fields(caplog, "dead_letter_sent") == [
        {"code": "forbidden", "message_id": "r", "ticket": "T-1", "partition": 0, "offset": 1},
        {"code": "forbidden", "message_id": "r", "partition": 0, "offset": 1, "again": True}]
    assert sample("ticketflow_dead_letters_total", code="forbidden") == letters + 2
    assert {key: sample("ticketflow_commands_total", outcome=key[0], code=key[1]) - before
            for key, before in counted.items()} == {
        ("accepted", ""): 2, ("rejected", "forbidden"): 1, ("duplicate", ""): 3}
    assert [entry.fields["outcomes"] for entry in said(caplog, "batch_applied")] == [
        {"accepted": 2, "rejected": 1}, {"duplicate": 3}]


def test_a_command_that_kept_losing_its_race_cuts_the_batch_there_and_is_fetched_again(
    app: TicketingApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("ticketflow.consumers.commands.record_lag", lambda *a: None)
    comments = [command_line(f"a-{n}", "add_comment", "T-1", T0, "customer", {"body": "hi"})
                for n in (1, 2)]
    consumer = FakeConsumer([messages()[0], *comments])
    commands = consumer_on(app, FakeProducer(), consumer)
    apply_batch = app.apply_batch
    lost = Outcome("a-1", "rejected", error={"code": "conflict", "message": "still losing"},
                   ticket_id="T-1")

    def losing_the_first_comment(raws: list[bytes], bounds: Any = None) -> list[Outcome]:
        """The create recorded; the first comment answered `conflict`, not recorded;
        the second recorded (as the batch's one-by-one fallback would)."""
        return [*apply_batch(raws[:1]), lost, *apply_batch(raws[2:])]

    cuts = sample("ticketflow_conflicts_total", kind="batch_cut")
    monkeypatch.setattr(app, "apply_batch", losing_the_first_comment)
    with caplog.at_level(logging.INFO, logger="ticketflow"):
        assert commands.run_once() == 3
    assert said(caplog, "batch_cut_at_conflict") == [Said("WARNING", {
        "partition": 0, "offset": 1, "message_id": "a-1", "ticket": "T-1"})]
    assert sample("ticketflow_conflicts_total", kind="batch_cut") == cuts + 1
    assert (consumer.committed, consumer.position) == (1, 1)  # the cut: fetched again
    monkeypatch.setattr(app, "apply_batch", apply_batch)
    assert commands.run_once() == 2
    assert consumer.committed == 3
    assert [e["causation_id"] for e in app.event_log.ticket_events("T-1")] == [
        "c", "a-2", "a-1"]


def record_with(headers: list[tuple[str, bytes]], value: bytes = b"{}") -> ConsumerRecord:
    return ConsumerRecord(TOPIC, 2, 0, 41, 0, 0, b"T-1", value, headers, None, len(value),
                          -1, -1)


def test_a_dead_letter_carries_the_commands_signing_headers_verbatim() -> None:
    signed = [("ticketflow-key-id", b"abc123"), ("ticketflow-signature", b"c2ln" * 22),
              ("trace", b"x")]
    letter = dead_letter(record_with(signed, b"raw"), {"code": "forbidden", "message": "no"},
                         "m-1")
    assert letter["value"] == b"raw" and letter["key"] == b"T-1"
    assert letter["headers"] == [
        ("error_code", b"forbidden"), ("error_message", b"no"), ("message_id", b"m-1"),
        ("source", f"{TOPIC}/2/41".encode()),
        ("ticketflow-key-id", b"abc123"), ("ticketflow-signature", b"c2ln" * 22)]


def test_a_dead_letter_drops_oversized_or_spoofed_headers() -> None:
    hostile = [("error_code", b"none"), ("ticketflow-key-id", b"k" * 10_000),
               ("ticketflow-signature", b"s" * 129)]
    letter = dead_letter(record_with(hostile), {"code": "unauthenticated", "message": "?"},
                         None)
    assert letter["headers"] == [
        ("error_code", b"unauthenticated"), ("error_message", b"?"), ("message_id", b""),
        ("source", f"{TOPIC}/2/41".encode())]


def test_a_dead_letter_of_a_value_over_64_kib_keeps_its_head_length_and_sha256() -> None:
    """The dead-letter topic is kept forever: a 1 MB record costs it 64 KiB, and the
    headers say what the whole was (a sender's own `original_*` headers are dropped)."""
    value = b'{"message_id": "big", "pad": "' + b"x" * 1_000_000 + b'"}'
    spoofed = [("original_length", b"1"), ("ticketflow-key-id", b"abc123")]
    letter = dead_letter(record_with(spoofed, value),
                         {"code": "invalid_message", "message": "too big"}, "big")
    assert letter["value"] == value[:KEEP_BYTES] and len(letter["value"]) == 64 * 1024
    assert letter["headers"] == [
        ("error_code", b"invalid_message"), ("error_message", b"too big"),
        ("message_id", b"big"), ("source", f"{TOPIC}/2/41".encode()),
        ("original_length", str(len(value)).encode()),
        ("original_sha256", hashlib.sha256(value).hexdigest().encode()),
        ("ticketflow-key-id", b"abc123")]


@pytest.mark.parametrize("size", [0, KEEP_BYTES])
def test_a_dead_letter_of_at_most_64_kib_is_the_whole_value(size: int) -> None:
    value = b"x" * size
    letter = dead_letter(record_with([], value), {"code": "invalid_message", "message": "?"},
                         None)
    assert letter["value"] == value
    assert [name for name, _ in letter["headers"]] == list(DEAD_LETTER_HEADERS)
