"""Volume and satisfaction by the periods of a time zone (SPEC §12): with UTC they are
the daily reports exactly; in another zone each event counts in its local period, so
a local day may be 23 or 25 hours."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from tests.support.builders import command_line, create_payload
from tests.support.tenants import fixed_clock
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.projections.db import engine_for
from ticketflow.projections.periods import BY
from ticketflow.projections.reports import satisfaction_report, volume_report
from ticketflow.projections.runner import Projector
from ticketflow.projections.zoned_reports import satisfaction_in_zone, volume_in_zone
from ticketflow.settings import Settings
from ticketflow.timers import Timers
from ticketflow.tools.workload import generate_workload

START = datetime(2026, 10, 5, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def workload(db_url: str) -> Iterator[tuple[Projector, Engine]]:
    with build_app(Settings(db=db_url)) as app:
        raws = [json.dumps(c).encode() for c in generate_workload(11, tickets=60, start=START,
                                                                 days=20)]
        for first in range(0, len(raws), 200):
            app.apply_batch(raws[first:first + 200])
        Timers(app).fire_until(START + timedelta(days=20))
        engine = engine_for(db_url)
        projector = Projector(app, engine)
        projector.catch_up()
        yield projector, engine


@pytest.mark.parametrize("by", BY)
def test_in_utc_the_reports_by_instant_equal_the_daily_ones(
    workload: tuple[Projector, Engine], by: str,
) -> None:
    projector, engine = workload
    utc = ZoneInfo("UTC")  # not the `UTC` object: the path by instant
    windows = [(date(2026, 10, 5), date(2026, 10, 25)), (date(2026, 10, 9), date(2026, 10, 16))]
    with engine.connect() as conn:
        for since, until in windows:
            for tenant in (None, "growgrebuddy"):
                daily = volume_report(conn, projector.t, since=since, until=until, by=by,
                                      tenant=tenant)
                assert daily and volume_in_zone(conn, projector.t, since=since, until=until,
                                                by=by, zone=utc, tenant=tenant) == daily
                answers = satisfaction_report(conn, projector.t, since=since, until=until,
                                              by=by, tenant=tenant)
                assert answers["satisfaction"] and answers["self_service"]
                assert satisfaction_in_zone(conn, projector.t, since=since, until=until,
                                            by=by, zone=utc, tenant=tenant) == answers


@pytest.fixture
def around_the_dst_change(db_url: str) -> Iterator[tuple[TicketingApp, Projector]]:
    """US daylight saving ends on 1 November 2026 at 06:00Z (02:00 EDT → 01:00 EST)."""
    steps = [
        ("create_ticket", "T-1", datetime(2026, 11, 1, 3, 30, tzinfo=UTC), "customer",
         create_payload()),  # 31 October, 23:30 EDT
        ("create_ticket", "T-2", datetime(2026, 11, 1, 4, 30, tzinfo=UTC), "customer",
         create_payload()),  # 1 November, 00:30 EDT
        ("resolve", "T-2", datetime(2026, 11, 2, 4, 30, tzinfo=UTC), "agent",
         {"resolution": "done"}),  # 1 November, 23:30 EST: the 25-hour day
        ("record_satisfaction", "T-2", datetime(2026, 11, 2, 4, 40, tzinfo=UTC), "customer",
         {"score": 5, "nps": 10}),
    ]
    with build_app(Settings(db=db_url), clock=fixed_clock) as app:
        for n, (kind, ticket_id, at, role, payload) in enumerate(steps):
            assert app.apply(command_line(f"m-{n}", kind, ticket_id, at, role, payload)
                             ).status == "accepted"
        session = json.loads(command_line("ss", "record_self_service", "x",
                                          datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "customer",
                                          {"articles_viewed": [], "outcome": "solved"}))
        session["session_id"] = "SS-1"
        del session["ticket_id"]
        assert app.apply(json.dumps(session).encode()).status == "accepted"
        projector = Projector(app, engine_for(db_url))
        projector.catch_up()
        yield app, projector


def test_a_local_day_counts_the_events_of_its_own_hours(
    around_the_dst_change: tuple[TicketingApp, Projector],
) -> None:
    _, projector = around_the_dst_change
    window = {"since": date(2026, 10, 31), "until": date(2026, 11, 3), "by": "day"}
    with projector.engine.connect() as conn:
        local = volume_in_zone(conn, projector.t, zone=NEW_YORK, **window)  # type: ignore[arg-type]
        utc = volume_report(conn, projector.t, **window)  # type: ignore[arg-type]
        answers = satisfaction_in_zone(conn, projector.t, zone=NEW_YORK, **window)  # type: ignore[arg-type]
        daily = satisfaction_report(conn, projector.t, **window)  # type: ignore[arg-type]
    assert [(r["period"], r["created"], r["resolved"], r["backlog"]) for r in local] == [
        ("2026-10-31", 1, 0, 1), ("2026-11-01", 1, 1, 1), ("2026-11-02", 0, 0, 1)]
    assert [(r["period"], r["created"], r["resolved"], r["backlog"]) for r in utc] == [
        ("2026-11-01", 2, 0, 2), ("2026-11-02", 0, 1, 1)]
    assert [(r["period"], r["responses"]) for r in answers["satisfaction"]] == [
        ("2026-11-01", 1)]
    assert [(r["period"], r["responses"]) for r in daily["satisfaction"]] == [("2026-11-02", 1)]
    assert [(r["period"], r["sessions"]) for r in answers["self_service"]] == [
        ("2026-11-01", 1)]  # 01:30 EDT


def test_a_local_week_and_month_start_at_local_midnight(
    around_the_dst_change: tuple[TicketingApp, Projector],
) -> None:
    _, projector = around_the_dst_change
    with projector.engine.connect() as conn:
        weeks = volume_in_zone(conn, projector.t, since=date(2026, 10, 1),
                               until=date(2026, 12, 1), by="week", zone=NEW_YORK)
        months = volume_in_zone(conn, projector.t, since=date(2026, 10, 1),
                                until=date(2026, 12, 1), by="month", zone=NEW_YORK)
    # Saturday 31 October is the week of Monday 26 October; Sunday 1 November too
    assert [(r["period"], r["created"]) for r in weeks if r["created"]] == [("2026-10-26", 2)]
    assert [(r["period"], r["created"], r["resolved"]) for r in months] == [
        ("2026-10-01", 1, 0, ), ("2026-11-01", 1, 1)]
