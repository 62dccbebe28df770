"""What the projection runner over Kafka tells its operator, with a fake consumer on an
in-memory store: each batch (`projection_applied`, its size, each partition's lag) and
each event it parks (`event_parked`, once, without the event's data; the counter by
cause and the gauge of what is parked now, back to 0 once retried)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from tests.support.builders import T0, command_line, create_payload
from tests.support.observed import Said, fields, said, sample
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.consumers.projections import KafkaProjectionRunner
from ticketflow.projections.db import engine_for
from ticketflow.projections.runner import Projector
from ticketflow.settings import Settings

TOPIC = "support.ticket-events"
GROUP = f"ticketflow-read-models:{TOPIC}"
TENANT = "personalysispro"
#: A comment's body: personal data, which no log line may carry.
PRIVATE = "Jane Roe, card 4111 1111 1111 1111"


class FakeConsumer:
    """Partitions of records, each handed out once by `poll`; `behind[p]`: records on
    partition p past those delivered so far (its high watermark is that much further)."""

    config = {"group_id": GROUP}

    def __init__(self) -> None:
        self.log: dict[TopicPartition, list[ConsumerRecord]] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.behind: dict[int, int] = {}

    def deliver(self, partition: int, envelopes: list[dict[str, Any]]) -> None:
        records = self.log.setdefault(TopicPartition(TOPIC, partition), [])
        for envelope in envelopes:
            value = orjson.dumps(envelope)
            records.append(ConsumerRecord(TOPIC, partition, 0, len(records), 0, 0,
                                          envelope["ticket_id"].encode(), value, [], None,
                                          len(value), -1, -1))

    def poll(self, timeout_ms: int = 0, max_records: int = 0
             ) -> dict[TopicPartition, list[ConsumerRecord]]:
        fetched = {tp: records[self.positions.get(tp, 0):] for tp, records in self.log.items()}
        self.positions = {tp: len(records) for tp, records in self.log.items()}
        return {tp: records for tp, records in fetched.items() if records}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.positions[partition] = offset

    def commit_async(self, offsets: dict[TopicPartition, Any], callback: Any = None) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return set(self.log)

    def highwater(self, partition: TopicPartition) -> int:
        return len(self.log[partition]) + self.behind.get(partition.partition, 0)

    def position(self, partition: TopicPartition, timeout_ms: int = 0) -> int:
        return self.positions.get(partition, 0)


@pytest.fixture
def app() -> Iterator[TicketingApp]:
    with build_app(Settings(db="sqlite:///:memory:")) as store:
        store.apply(command_line("c-1", "create_ticket", "T-1", T0, "customer",
                                 create_payload()))
        store.apply(command_line("a-1", "add_comment", "T-1", T0, "customer", {"body": PRIVATE}))
        store.apply(command_line("a-2", "add_comment", "T-1", T0, "customer", {"body": "more"}))
        store.apply(command_line("c-2", "create_ticket", "T-2", T0, "customer",
                                 create_payload()))
        yield store


def runner_on(app: TicketingApp, consumer: FakeConsumer) -> KafkaProjectionRunner:
    return KafkaProjectionRunner(Projector(app, engine_for("sqlite://")), consumer,  # type: ignore[arg-type]
                                 TOPIC)


def test_a_batch_is_logged_with_each_partitions_next_offset_and_its_lag_is_reported(
    app: TicketingApp, caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer()
    consumer.deliver(0, app.event_log.ticket_events("T-1"))  # offsets 0-2
    consumer.deliver(1, app.event_log.ticket_events("T-2"))  # offset 0
    consumer.behind[0] = 2  # two more records on partition 0 than fetched
    runner = runner_on(app, consumer)
    batches = sample("ticketflow_batch_size_count", role="projections")
    with caplog.at_level(logging.INFO, logger="ticketflow"):
        assert runner.run_once() == 4
        consumer.seek(TopicPartition(TOPIC, 0), 1)  # two of them again: nothing new
        assert runner.run_once() == 0
    assert fields(caplog, "projection_applied") == [
        {"size": 4, "new": 4, "positions": {f"{TOPIC}/0": 3, f"{TOPIC}/1": 1}},
        {"size": 2, "new": 0, "positions": {f"{TOPIC}/0": 3}}]
    assert sample("ticketflow_projection_lag", topic=TOPIC, partition="0") == 2
    assert sample("ticketflow_projection_lag", topic=TOPIC, partition="1") == 0
    assert sample("ticketflow_batch_size_count", role="projections") == batches + 2


def test_a_parked_event_is_logged_once_without_its_data_and_counted_until_retried(
    app: TicketingApp, caplog: pytest.LogCaptureFixture,
) -> None:
    created, private, later = app.event_log.ticket_events("T-1")
    consumer = FakeConsumer()
    runner = runner_on(app, consumer)
    parked = sample("ticketflow_events_parked_total", cause="OutOfOrder")
    with caplog.at_level(logging.INFO, logger="ticketflow"):
        consumer.deliver(0, [created, later])  # v3 before v2: parked
        runner.run_once()
        consumer.deliver(0, [later])  # the relay's duplicate of it: parked already
        runner.run_once()
        consumer.deliver(0, [private])  # v2: held back behind the parked v3
        runner.parked_due = 0.0  # count them now (else at most every PARKED_EVERY s)
        runner.run_once()
    expected = {"tenant": TENANT, "ticket": "T-1", "event_type": "CommentAdded",
                "cause": "OutOfOrder"}
    assert said(caplog, "event_parked") == [Said("WARNING", {**expected, "version": 3}),
                                            Said("WARNING", {**expected, "version": 2})]
    assert PRIVATE not in repr([record.__dict__ for record in caplog.records])
    assert sample("ticketflow_events_parked_total", cause="OutOfOrder") == parked + 2
    assert sample("ticketflow_parked_events", group=GROUP) == 2
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ticketflow"):
        assert runner.projector.retry_parked() == (2, 0)
        runner.parked_due = 0.0
        runner.run_once()
    assert fields(caplog, "parked_retried") == [{"applied": 2, "parked": 0}]
    assert said(caplog, "event_parked") == []
    assert sample("ticketflow_parked_events", group=GROUP) == 0


def test_a_poison_events_cause_is_its_errors_class(
    app: TicketingApp, caplog: pytest.LogCaptureFixture,
) -> None:
    story = app.event_log.ticket_events("T-1")
    projector = Projector(app, engine_for("sqlite://"))
    # a priority change whose data lacks the priority: no projection can read it
    broken = {**story[-1], "version": 4, "type": "PriorityChanged", "data": {}}
    poisoned = sample("ticketflow_events_parked_total", cause="KeyError")
    with caplog.at_level(logging.WARNING, logger="ticketflow"), projector.engine.begin() as conn:
        projector.apply(conn, [*story, broken])
    assert fields(caplog, "event_parked") == [{"tenant": TENANT, "ticket": "T-1", "version": 4,
                                               "event_type": "PriorityChanged",
                                               "cause": "KeyError"}]
    assert sample("ticketflow_events_parked_total", cause="KeyError") == poisoned + 1
    assert projector.count_parked() == 1
