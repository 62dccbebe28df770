"""The outbox relay's bookkeeping, with a fake producer and an in-memory store: the
position only moves past events the broker acknowledged, and a failed send starts
again from the stored position (at least once, never a gap)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.event_log import STREAM_TOPICS
from ticketflow.producers import relay as relay_module
from ticketflow.producers.relay import OutboxRelay
from ticketflow.settings import Settings


class Future:
    def __init__(self, producer: FakeProducer, version: int) -> None:
        self.producer, self.version, self.is_done = producer, version, False

    def get(self, timeout: float | None = None) -> None:
        if self.version in self.producer.refused:
            raise RuntimeError(f"the broker refused v{self.version}")


class FakeProducer:
    """Sends are acknowledged only at flush(), or by `acknowledge`."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.pending: list[Future] = []
        self.refused: set[int] = set()

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> Future:
        envelope = json.loads(value)
        self.sent.append((envelope["ticket_id"], envelope["version"]))
        future = Future(self, envelope["version"])
        self.pending.append(future)
        return future

    def acknowledge(self, count: int) -> None:
        for future in self.pending[:count]:
            future.is_done = True
        self.pending = self.pending[count:]

    def flush(self, timeout: float | None = None) -> None:
        self.acknowledge(len(self.pending))


@pytest.fixture
def app() -> Iterator[TicketingApp]:
    with build_app(Settings(db="sqlite:///:memory:")) as store:
        store.apply(command_line("c", "create_ticket", "T-1", T0, "customer", create_payload()))
        for n in range(9):
            store.apply(command_line(f"m-{n}", "add_comment", "T-1", T0, "customer",
                                     {"body": str(n)}))
        yield store


def stream_ids(app: TicketingApp) -> list[int]:
    """Notification ids of the ticket's events, in order (receipts lie between them)."""
    return [n.id for n in app.recorder.select_notifications(1, 100, topics=STREAM_TOPICS)]


def test_the_position_waits_for_every_acknowledgement_up_to_it(
    app: TicketingApp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay_module, "MAX_IN_FLIGHT", 10)  # never flush on its own
    ids = stream_ids(app)
    producer = FakeProducer()
    relay = OutboxRelay(app, producer, batch_size=3)  # type: ignore[arg-type]
    assert (relay.run_once(), relay.run_once()) == (3, 3)
    assert relay.position == 0  # sent, nothing acknowledged yet
    producer.acknowledge(4)  # all of the first batch, one of the second
    assert relay.run_once() == 3
    assert relay.position == ids[2]  # the end of the first batch, not beyond
    while relay.run_once():
        pass
    assert relay.position == ids[-1] and not relay.in_flight
    assert [v for _, v in producer.sent] == list(range(1, 11))


def test_a_refused_send_starts_again_after_the_last_acknowledged_batch(
    app: TicketingApp,
) -> None:
    ids = stream_ids(app)
    producer = FakeProducer()
    producer.refused = {5}
    relay = OutboxRelay(app, producer, batch_size=4)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="refused v5"):
        while relay.run_once():
            pass
    assert relay.position == ids[3] and not relay.in_flight  # v1-4 made it
    producer.refused.clear()
    while relay.run_once():
        pass
    versions = [v for _, v in producer.sent]
    assert versions == [*range(1, 11), *range(5, 11)]  # v5 on: again, none skipped
    assert relay.position == ids[-1]


def test_the_relay_reports_its_position_and_lag_as_it_goes(
    app: TicketingApp, caplog: pytest.LogCaptureFixture,
) -> None:
    relay = OutboxRelay(app, FakeProducer(), batch_size=100)  # type: ignore[arg-type]
    last = app.recorder.max_notification_id() or 0
    with caplog.at_level("INFO", logger="ticketflow.producers.relay"):
        while relay.run_once():
            pass
    stored = [getattr(r, "ticketflow_fields", {}) for r in caplog.records
              if getattr(r, "ticketflow_event", None) == "relay_position_stored"]
    assert stored and stored[-1]["position"] == stream_ids(app)[-1]
    topic = {"topic": relay.topic}
    assert REGISTRY.get_sample_value("ticketflow_relay_position", topic) == stream_ids(app)[-1]
    # while it works: an upper bound (the receipts after the last event count too) …
    assert REGISTRY.get_sample_value("ticketflow_relay_lag", topic) == last - stream_ids(app)[-1]
    relay.lag_due = 0.0  # … and once idle with nothing in flight: caught up, 0
    assert relay.run_once() == 0
    assert REGISTRY.get_sample_value("ticketflow_relay_lag", topic) == 0
