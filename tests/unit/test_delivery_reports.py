"""What the webhook delivery worker (the `notifications` role) tells its operator, with a
fake POST on an in-memory store: the notifications it queues (`deliveries_queued`), each
answer (`webhook_delivery`, `ticketflow_webhook_attempts_total` by outcome and answer),
the deliveries due and not answered yet, and the dead ones."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.support.notifications import END, EXPECTED, done_when_story
from tests.support.observed import fields, said, sample
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.clock import SystemClock
from ticketflow.consumers.webhooks import Answer, DeliveryWorker
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings
from ticketflow.webhooks import Webhooks

TENANT = "personalysispro"
ROLE = {"role": "notifications"}


@pytest.fixture
def app() -> Iterator[TicketingApp]:
    with build_app(Settings(db="sqlite:///:memory:"), clock=SystemClock.frozen(END)) as store:
        done_when_story(store, live=True)
        yield store


def attempts(outcome: str, answer: str) -> float:
    return sample("ticketflow_webhook_attempts_total", outcome=outcome, answer=answer)


def test_every_answer_is_counted_and_the_backlog_and_the_dead_deliveries_are_reported(
    app: TicketingApp, caplog: pytest.LogCaptureFixture,
) -> None:
    now = [END]

    def clock() -> datetime:
        return now[0]

    engine = engine_for("sqlite://")
    hooks = Webhooks(engine, clock)
    up, _ = hooks.add(TENANT, "https://up.example/hook")
    down, _ = hooks.add(TENANT, "https://down.example/hook")
    answers = {up.url: Answer(200, None), down.url: Answer(None, "TimeoutError: timed out")}
    worker = DeliveryWorker(app, engine, clock, max_attempts=2, rng=random.Random(7),
                            post=lambda url, body, headers, timeout: answers[url])
    before = {key: attempts(*key) for key in
              [("delivered", "2xx"), ("retrying", "error"), ("dead", "error")]}
    notifications = len(EXPECTED)
    try:
        with caplog.at_level(logging.INFO, logger="ticketflow"):
            worker.run_once()  # queued, posted: not answered yet
            assert sample("ticketflow_webhook_backlog", **ROLE) == 2 * notifications
            worker.drain()
            now[0] += timedelta(hours=1)  # past the backoff: the second (last) attempt
            worker.run_once()
            worker.drain()
            worker.measure_due = 0.0  # count now (else at most every MEASURE_EVERY s)
            worker.run_once()
    finally:
        worker.close()
    queued = fields(caplog, "deliveries_queued")
    assert [(q["notifications"], q["deliveries"]) for q in queued] == [
        (notifications, 2 * notifications)]
    assert attempts("delivered", "2xx") == before["delivered", "2xx"] + notifications
    assert attempts("retrying", "error") == before["retrying", "error"] + notifications
    assert attempts("dead", "error") == before["dead", "error"] + notifications
    assert sample("ticketflow_webhook_backlog", **ROLE) == 0
    assert sample("ticketflow_webhook_dead_deliveries", **ROLE) == notifications
    logged = said(caplog, "webhook_delivery")
    assert sorted((entry.level, entry.fields["status"]) for entry in logged) == sorted(
        [("INFO", "delivered")] * notifications + [("WARNING", "retrying")] * notifications
        + [("WARNING", "dead")] * notifications)
    dead = next(entry.fields for entry in logged if entry.fields["status"] == "dead")
    assert (dead["webhook"], dead["attempt"], dead["error"]) == (
        down.webhook_id, 2, "TimeoutError: timed out")


@pytest.mark.parametrize(("status", "kind"), [
    (204, "2xx"), (301, "3xx"), (410, "4xx"), (503, "5xx"), (None, "error"), (999, "other")])
def test_an_answer_is_counted_by_its_class(status: int | None, kind: str) -> None:
    assert Answer(status, None if status else "refused").kind == kind
