"""Account managers and response quality on the read side (issue 19): given the story's
events, the rows of rm_accounts and rm_reviews; redelivery changes nothing; a replay
from the start rebuilds them (and the tickets' accounts) byte for byte; `report
quality` and `--group account` figures checked by hand; the ticket view's manager."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.accounts import DAY, GB, PP, assign_manager, at, story
from tests.support.tenants import fixed_clock
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.event_log import STREAM_TOPICS
from ticketflow.projections.db import engine_for
from ticketflow.projections.replay import rebuild
from ticketflow.projections.runner import Projector
from ticketflow.queries import Queries, ReadModels, Scope
from ticketflow.settings import Settings


@pytest.fixture
def app(db_url: str) -> Iterator[TicketingApp]:
    with build_app(Settings(db=db_url), clock=fixed_clock) as app:
        for raw in story():
            outcome = app.apply(raw)
            assert outcome.status == "accepted", outcome
        yield app


def queries(app: TicketingApp, db_url: str, tenant: str | None = PP) -> Queries:
    return Queries(app, ReadModels(app, engine_for(db_url)), Scope(tenant))


def rows(projector: Projector) -> dict[str, list[dict[str, Any]]]:
    t = projector.t
    with projector.engine.connect() as conn:
        return {
            "accounts": [dict(r._mapping) for r in conn.execute(
                select(t.accounts).order_by(t.accounts.c.tenant, t.accounts.c.account_id))],
            "reviews": [dict(r._mapping) for r in conn.execute(select(t.reviews).order_by(
                t.reviews.c.tenant, t.reviews.c.ticket_id, t.reviews.c.version))],
            "tickets": [(r.tenant, r.ticket_id, r.account_id) for r in conn.execute(
                select(t.tickets).order_by(t.tickets.c.tenant, t.tickets.c.ticket_id))],
        }


def test_the_events_give_these_rows(app: TicketingApp, db_url: str) -> None:
    projector = Projector(app, engine_for(db_url))
    projector.catch_up()
    found = rows(projector)
    assert found["accounts"] == [{"tenant": PP, "account_id": "acme", "version": 1,
                                  "manager_id": "am-dana", "plan": "enterprise",
                                  "assigned_at": at(-60).isoformat()}]
    assert [(r["tenant"], r["ticket_id"], r["reviewer"], r["agent_id"], r["level"],
             r["score"], r["at"]) for r in found["reviews"]] == [
        (GB, "T-1", "boss", "agent-g", "tier1", 1, at(90).isoformat()),
        (PP, "T-1", "boss", "agent-7", None, 2, at(60).isoformat()),
        (PP, "T-1", "boss", "agent-7", None, 4, (at(60) + DAY).isoformat()),
        (PP, "T-2", "am-dana", "agent-8", "first_level", 5, at(70).isoformat()),
        (PP, "T-3", "boss", "agent-7", None, 3, at(80).isoformat())]
    assert found["reviews"][2]["rubric"] == {"accurate": True, "complete": True,
                                             "empathetic": False}
    assert found["tickets"] == [(GB, "T-1", "grow-1"), (PP, "T-1", "acme"),
                                (PP, "T-2", "acme"), (PP, "T-3", "beta")]


def test_a_later_assignment_replaces_the_row_and_a_redelivery_changes_nothing(
        app: TicketingApp, db_url: str) -> None:
    projector = Projector(app, engine_for(db_url))
    projector.catch_up()
    assert app.apply(assign_manager("a-2", "acme", "am-eli", at(100))).status == "accepted"
    projector.catch_up()
    after = rows(projector)
    assert [(r["version"], r["manager_id"]) for r in after["accounts"]] == [(2, "am-eli")]
    everything = [app.event_log.envelope_of(r) for page in app.event_log.pages(
        1, STREAM_TOPICS) for r in page]
    with projector.engine.begin() as conn:
        projector.apply(conn, everything)  # every event delivered again, oldest first
    assert rows(projector) == after


def test_a_replay_from_the_start_rebuilds_them_byte_for_byte(app: TicketingApp,
                                                             db_url: str) -> None:
    engine = engine_for(db_url)
    live = Projector(app, engine)
    live.catch_up()
    before = rows(live)
    rebuild(app, engine)
    assert rows(Projector(app, engine)) == before


def test_quality_counts_each_tickets_latest_review(app: TicketingApp, db_url: str) -> None:
    report = queries(app, db_url).report_quality(at(0), at(0) + 7 * DAY)
    # T-1's latest (4: accurate, complete), T-2 (5: all), T-3 (3: accurate, empathetic)
    assert report["rows"] == [{"tenant": PP, "reviews": 3, "mean_score": 4.0, "pass_percent": {
        "accurate": 100.0, "complete": 66.7, "empathetic": 66.7}}]


def test_quality_by_agent_and_by_tier(app: TicketingApp, db_url: str) -> None:
    ask = queries(app, db_url, None).report_quality
    by_agent = ask(at(0), at(0) + 7 * DAY, group="agent")
    assert [(r["tenant"], r["agent"], r["reviews"], r["mean_score"])
            for r in by_agent["rows"]] == [
        (GB, "agent-g", 1, 1.0), (PP, "agent-7", 2, 3.5), (PP, "agent-8", 1, 5.0)]
    by_tier = ask(at(0), at(0) + 7 * DAY, group="tier")
    assert [(r["tenant"], r["tier"], r["reviews"], r["mean_score"])
            for r in by_tier["rows"]] == [
        (GB, "tier1", 1, 1.0), (PP, None, 2, 3.5), (PP, "first_level", 1, 5.0)]
    assert by_tier["group"] == "tier"


def test_quality_by_day_counts_each_days_latest_review(app: TicketingApp,
                                                       db_url: str) -> None:
    report = queries(app, db_url).report_quality(at(0), at(0) + 7 * DAY, by="day")
    assert [(r["period"], r["reviews"], r["mean_score"]) for r in report["rows"]] == [
        ("2026-11-16", 3, 3.33), ("2026-11-17", 1, 4.0)]


def test_sla_and_times_by_account_name_the_accounts_manager(app: TicketingApp,
                                                            db_url: str) -> None:
    ask = queries(app, db_url)
    sla = ask.report_sla(at(0), at(0) + 7 * DAY, group="account")
    assert [(r["account_id"], r["manager_id"], r["tickets"]) for r in sla["rows"]] == [
        ("acme", "am-dana", 2), ("beta", None, 1)]
    assert all("plan" not in r for r in sla["rows"]) and sla["group"] == "account"
    times = ask.report_times(at(0), at(0) + 7 * DAY, group="account")
    assert [(r["account_id"], r["manager_id"], r["first_response"]["count"])
            for r in times["rows"]] == [("acme", "am-dana", 2), ("beta", None, 1)]


def test_the_ticket_view_shows_the_accounts_current_manager(app: TicketingApp,
                                                            db_url: str) -> None:
    ask = queries(app, db_url)
    ticket, _ = ask.ticket("T-1")
    assert ask.account(ticket) == {"account_id": "acme", "account_manager": "am-dana"}
    ticket, _ = ask.ticket("T-3")
    assert ask.account(ticket) == {"account_id": "beta", "account_manager": None}
    other = queries(app, db_url, GB)  # GrowgrEbuddy's ticket of its own account
    ticket, _ = other.ticket("T-1")
    assert other.account(ticket) == {"account_id": "grow-1", "account_manager": None}
    assert app.apply(assign_manager("a-2", "acme", None, at(100))).status == "accepted"
    ticket, _ = ask.ticket("T-1")
    assert ask.account(ticket)["account_manager"] is None
