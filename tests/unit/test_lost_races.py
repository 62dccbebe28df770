"""Lost optimistic-concurrency races, on an in-memory store whose saves collide on
demand: a command that loses is retried from fresh state, logged (`race_lost`: INFO the
first time, DEBUG after) and counted (`ticketflow_conflicts_total{kind="race_retry"}`);
one that keeps losing past the budget is answered `conflict` with nothing recorded, and
logged `race_given_up`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from tests.support.builders import T0, command_line, create_payload
from tests.support.observed import Said, said, sample
from ticketflow import application
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings

COMMENT = command_line("a-1", "add_comment", "T-1", T0, "customer", {"body": "hi"})


@pytest.fixture
def app() -> Iterator[TicketingApp]:
    with build_app(Settings(db="sqlite:///:memory:")) as store:
        store.apply(command_line("c", "create_ticket", "T-1", T0, "customer", create_payload()))
        yield store


def colliding(app: TicketingApp, monkeypatch: pytest.MonkeyPatch, times: int | None) -> None:
    """The app's next `times` saves collide with another writer's (None: every one)."""
    record, left = app._record, [times]

    def collide_first(processing: Any) -> Any:
        if left[0] is None or left[0] > 0:
            left[0] = None if left[0] is None else left[0] - 1
            raise IntegrityError("another writer saved first")
        return record(processing)

    monkeypatch.setattr(app, "_record", collide_first)


def retries() -> float:
    return sample("ticketflow_conflicts_total", kind="race_retry")


def test_a_lost_race_is_retried_logged_and_counted(
    app: TicketingApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    colliding(app, monkeypatch, times=2)
    before = retries()
    with caplog.at_level(logging.DEBUG, logger="ticketflow.application"):
        assert app.apply(COMMENT).status == "accepted"
    lost = {"message_id": "a-1", "ticket": "T-1"}
    assert said(caplog, "race_lost") == [Said("INFO", {**lost, "attempt": 1}),
                                         Said("DEBUG", {**lost, "attempt": 2})]
    assert said(caplog, "race_given_up") == []
    assert retries() == before + 2
    assert [e["causation_id"] for e in app.event_log.ticket_events("T-1")] == ["c", "a-1"]


def test_a_race_lost_past_the_budget_is_answered_conflict_and_nothing_is_recorded(
    app: TicketingApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    colliding(app, monkeypatch, times=None)
    monkeypatch.setattr(application, "RACE_BUDGET_SECONDS", 0.05)
    before = retries()
    with caplog.at_level(logging.DEBUG, logger="ticketflow.application"):
        outcome = app.apply(COMMENT)
    assert (outcome.status, (outcome.error or {}).get("code")) == ("rejected", "conflict")
    lost = said(caplog, "race_lost")
    assert said(caplog, "race_given_up") == [Said("WARNING", {
        "message_id": "a-1", "ticket": "T-1", "attempts": len(lost) + 1})]
    assert retries() == before + len(lost)
    assert [e["causation_id"] for e in app.event_log.ticket_events("T-1")] == ["c"]
