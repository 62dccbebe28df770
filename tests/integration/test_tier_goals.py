"""Tier goals (issue #19 item 4) end to end: events → rm_tier_stints rows → attainment in
`report sla` and `report times` (whole window and by period), a replay equal to the live
read models, and a tenant without goals left as it was.

GrowgrEbuddy, zone UTC: tier1 goal 30 min on frontline (every day 08:00-20:00), tier2
4 h on business (Mon-Fri 09:00-17:00); the timer escalates to tier2 after 1 h on
frontline since creation and to tier3 after 8 h on business since tier2; critical
tickets go to tier3 at creation. Mon = 2026-11-16. Every figure is worked by hand:

- G-1: created Mon 14:00, resolved 14:25 → tier1 met (25 min), decided 14:25.
- G-2: created 14:00, acknowledged 14:05, waits for the customer from 14:10; the timer
  escalates it at 15:00 (escalation does not pause) → tier1 escalated (10 min counted:
  left before its goal fell due), decided 15:00. tier2 starts paused, resumes 16:00,
  resolved 16:25 → tier2 met (25 min), decided 16:25.
- G-3: created 14:00, acknowledged 14:05, never resolved at tier1: escalated 15:00 →
  tier1 missed (60 min; due 14:30), decided 14:30. tier2 Mon 15:00-17:00 (120) + Tue
  09:00-11:00 (120): due Tue 11:00; escalated to tier3 Tue 15:00 (8 business hours) →
  tier2 missed (480 min: 120 + 360), decided Tue 11:00. Resolved Tue 16:00 at tier3 (no goal).
- G-4: critical, tier3 from creation: no measured stint.
- G-5: created Tue 19:50, resolved Wed 08:25 → 10 + 25 = 35 frontline min, due Wed
  08:20 → tier1 missed, decided Wed 08:20 (it started on Tuesday).
- G-6: created Mon 14:00, resolved 14:20 (met, 20 min); reopened 14:40 → a new tier1
  stint, resolved 14:55 (met, 15 min).

Whole window Mon-Thu, as of Thu 00:00: tier1 6 stints, met 3 (G-1, G-6 ×2), missed 2
(G-3, G-5), escalated 1 (G-2) → 3/6 = 50.0 %; minutes [10, 15, 20, 25, 35, 60], median
(nearest rank, 3rd) 20.0. tier2: met 1 (G-2), missed 1 (G-3) → 50.0 %, median of
[25, 480] is 25.0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.support.builders import T0, command_line, create_payload
from tests.support.postgres import create_database
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.projections.db import engine_for
from ticketflow.projections.replay import rebuild
from ticketflow.projections.runner import Projector
from ticketflow.projections.tier_stints import tier_rows_by
from ticketflow.queries import Queries, ReadModels, Scope
from ticketflow.settings import Settings
from ticketflow.timers import Timers

MON = T0.replace(hour=0)  # Monday 2026-11-16 00:00Z
THU = MON + timedelta(days=3)
GB = "growgrebuddy"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MON + timedelta(days=day, hours=hour, minutes=minute)


#: (ticket, command, day, hour, minute, extra create fields or payload)
STORY: list[tuple[str, str, int, int, int, dict[str, Any]]] = [
    ("G-1", "create_ticket", 0, 14, 0, {}),
    ("G-1", "resolve", 0, 14, 25, {"resolution": "done"}),
    ("G-2", "create_ticket", 0, 14, 0, {}),
    ("G-2", "acknowledge", 0, 14, 5, {}),
    ("G-2", "request_user_input", 0, 14, 10, {"question": "Which phone?"}),
    ("G-2", "receive_user_input", 0, 16, 0, {}),
    ("G-2", "resolve", 0, 16, 25, {"resolution": "done"}),
    ("G-3", "create_ticket", 0, 14, 0, {}),
    ("G-3", "acknowledge", 0, 14, 5, {}),
    ("G-3", "resolve", 1, 16, 0, {"resolution": "fixed by the developers"}),
    ("G-4", "create_ticket", 0, 14, 0, {"priority": "critical"}),
    ("G-5", "create_ticket", 1, 19, 50, {}),
    ("G-5", "resolve", 2, 8, 25, {"resolution": "done"}),
    ("G-6", "create_ticket", 0, 14, 0, {}),
    ("G-6", "resolve", 0, 14, 20, {"resolution": "done"}),
    ("G-6", "reopen", 0, 14, 40, {"reason": "still crashing"}),
    ("G-6", "resolve", 0, 14, 55, {"resolution": "done again"}),
]
ROLES = {"create_ticket": "customer", "receive_user_input": "customer", "reopen": "customer"}


def apply_story(app: TicketingApp) -> None:
    for n, (ticket, command, day, hour, minute, extra) in enumerate(STORY):
        payload = create_payload(GB, **extra) if command == "create_ticket" else extra
        outcome = app.apply(command_line(f"m-{n}", command, ticket, at(day, hour, minute),
                                         ROLES.get(command, "agent"), payload, tenant=GB))
        assert outcome.status == "accepted", outcome
    # a PersonalysisPro ticket escalated to first_level: a stint, but no goal to measure
    app.apply(command_line("p-1", "create_ticket", "P-1", at(0, 14), "customer",
                           create_payload()))
    app.apply(command_line("p-2", "escalate", "P-1", at(0, 15), "agent",
                           {"level": "first_level", "reason": "senior"}))
    Timers(app).fire_until(THU)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def story(tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[tuple[TicketingApp, str]]:
    """The story on each backend (the reports compare instants as stored text)."""
    url = (f"sqlite:///{tmp_path_factory.mktemp('tiers') / 'store.db'}"
           if request.param == "sqlite" else
           create_database(request.getfixturevalue("postgres_server")))
    with build_app(Settings(db=url)) as app:
        apply_story(app)
        yield app, url


def stint_rows(projector: Projector) -> list[dict[str, Any]]:
    table = projector.t.tier_stints
    with projector.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(table).order_by(*table.primary_key.columns))]


def live(story: tuple[TicketingApp, str]) -> Projector:
    app, url = story
    projector = Projector(app, engine_for(url))
    projector.catch_up()
    return projector


def test_events_become_one_row_per_stint(story: tuple[TicketingApp, str]) -> None:
    rows = {(r["tenant"], r["ticket_id"], r["stint"]): r for r in stint_rows(live(story))}
    brief = {key: (r["level"], r["started_at"][11:16], r["ended_at"] and r["ended_at"][8:16],
                   r["ended_by"]) for key, r in rows.items()}
    assert brief == {
        (GB, "G-1", 1): ("tier1", "14:00", "16T14:25", "resolved"),
        (GB, "G-2", 1): ("tier1", "14:00", "16T15:00", "escalated"),
        (GB, "G-2", 2): ("tier2", "15:00", "16T16:25", "resolved"),
        (GB, "G-3", 1): ("tier1", "14:00", "16T15:00", "escalated"),
        (GB, "G-3", 2): ("tier2", "15:00", "17T15:00", "escalated"),
        (GB, "G-3", 3): ("tier3", "15:00", "17T16:00", "resolved"),
        (GB, "G-4", 1): ("tier3", "14:00", None, None),
        (GB, "G-5", 1): ("tier1", "19:50", "18T08:25", "resolved"),
        (GB, "G-6", 1): ("tier1", "14:00", "16T14:20", "resolved"),
        (GB, "G-6", 2): ("tier1", "14:40", "16T14:55", "resolved"),
        # its resolution breach (8 h on extended, 22:00Z) raises it to management
        ("personalysispro", "P-1", 1): ("first_level", "15:00", "16T22:00", "escalated"),
        ("personalysispro", "P-1", 2): ("management", "22:00", None, None),
    }
    assert rows[(GB, "G-2", 1)]["pauses"] == [[at(0, 14, 10).isoformat(),
                                               at(0, 15).isoformat()]]
    assert rows[(GB, "G-2", 2)]["pauses"] == [[at(0, 15).isoformat(), at(0, 16).isoformat()]]


def brief(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r.get("period"), r["level"], r["met"], r["missed"], r["escalated"], r["pending"],
             r["attainment_percent"], r["median_minutes"]) for r in rows]


def queries(story: tuple[TicketingApp, str], tenant: str | None = None) -> Queries:
    app, url = story
    live(story)
    return Queries(app, ReadModels(app, engine_for(url)), Scope(tenant))


def test_report_sla_shows_hand_checked_attainment_per_tier(
        story: tuple[TicketingApp, str]) -> None:
    report = queries(story).report_sla(MON, THU, as_of=THU)
    assert brief(report["tiers"]) == [
        (None, "tier1", 3, 2, 1, 0, 50.0, 20.0),
        (None, "tier2", 1, 1, 0, 0, 50.0, 25.0),
    ]
    assert report["tiers"][0] == {
        "tenant": GB, "level": "tier1", "goal_minutes": 30, "calendar": "frontline",
        "stints": 6, "met": 3, "missed": 2, "escalated": 1, "pending": 0, "measured": 6,
        "attainment_percent": 50.0, "median_minutes": 20.0}


def test_by_day_a_stint_counts_on_the_day_its_verdict_falls(
        story: tuple[TicketingApp, str]) -> None:
    report = queries(story).report_sla(MON, THU, as_of=THU, by="day")
    assert brief(report["tiers"]) == [
        ("2026-11-16", "tier1", 3, 1, 1, 0, 60.0, 20.0),  # G-3's 14:30, G-2's 15:00
        ("2026-11-16", "tier2", 1, 0, 0, 0, 100.0, 25.0),
        ("2026-11-17", "tier2", 0, 1, 0, 0, 0.0, 480.0),  # G-3's tier2 due Tue 11:00
        ("2026-11-18", "tier1", 0, 1, 0, 0, 0.0, 35.0),  # G-5: created Tue, due Wed 08:20
    ]


def test_a_stint_decided_exactly_at_a_period_boundary_belongs_to_the_later_period(
        story: tuple[TicketingApp, str]) -> None:
    app, _ = story
    projector = live(story)
    cut = at(0, 14, 30)  # G-3's tier1 goal falls due at 14:30 exactly
    cuts = [("before", at(0, 0), cut), ("after", cut, at(1, 0))]
    with projector.engine.connect() as conn:
        found = tier_rows_by(conn, projector.t, policy_of(app), periods=cuts, as_of=THU)
    assert [(label, r["level"], r["met"], r["missed"], r["escalated"])
            for label, r in found] == [
        ("before", "tier1", 2, 0, 0),  # G-6 at 14:20, G-1 at 14:25
        ("after", "tier1", 1, 1, 1),  # G-3 at 14:30, G-6's second at 14:55, G-2 at 15:00
        ("after", "tier2", 1, 0, 0)]


def policy_of(app: TicketingApp) -> Any:
    return lambda row: app.policy_store.policy_version(
        row["policy_id"], row["policy_version"], row["policy_hash"])


def test_an_open_stint_is_pending_until_its_goal_falls_due(
        story: tuple[TicketingApp, str]) -> None:
    q = queries(story)
    # as of 14:29 G-3 (and G-2, G-6's second stint not yet begun) are still at tier1
    early = q.report_sla(at(0, 14), at(0, 15), as_of=at(0, 14, 29))
    assert brief(early["tiers"]) == [(None, "tier1", 2, 0, 0, 1, 100.0, 20.0)]
    due = q.report_sla(at(0, 14), at(0, 15), as_of=at(0, 14, 30))
    assert brief(due["tiers"]) == [(None, "tier1", 2, 1, 0, 0, 66.7, 20.0)]


def test_report_times_measures_each_period_at_its_end(story: tuple[TicketingApp, str]) -> None:
    report = queries(story).report_times(MON, THU, by="day")
    assert brief(report["tiers"]) == [
        ("2026-11-16", "tier1", 3, 1, 1, 0, 60.0, 20.0),
        ("2026-11-16", "tier2", 1, 0, 0, 0, 100.0, 25.0),
        ("2026-11-17", "tier2", 0, 1, 0, 0, 0.0, 480.0),
        ("2026-11-18", "tier1", 0, 1, 0, 0, 0.0, 35.0),
    ]
    whole = queries(story).report_times(MON, THU)
    assert brief(whole["tiers"]) == [(None, "tier1", 3, 2, 1, 0, 50.0, 20.0),
                                     (None, "tier2", 1, 1, 0, 0, 50.0, 25.0)]


def test_a_tenant_without_tier_goals_gets_no_tier_rows(story: tuple[TicketingApp, str]) -> None:
    report = queries(story, "personalysispro").report_sla(MON, THU, as_of=THU)
    assert report["tiers"] == []
    assert report["rows"]  # its SLA rows are there as before
    mine = queries(story, GB).report_sla(MON, THU, as_of=THU)
    assert {r["tenant"] for r in mine["tiers"]} == {GB}


def test_a_replay_from_the_start_rebuilds_the_stints_and_reports_identically(
        story: tuple[TicketingApp, str]) -> None:
    app, _ = story
    projector = live(story)
    before = stint_rows(projector)
    report = queries(story).report_sla(MON, THU, as_of=THU, by="day")
    assert rebuild(app, projector.engine) > 0
    assert stint_rows(Projector(app, projector.engine)) == before
    assert queries(story).report_sla(MON, THU, as_of=THU, by="day") == report


def test_the_stints_do_not_depend_on_how_events_were_batched(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with build_app(Settings(db=url)) as app:
        apply_story(app)
        one_by_one = Projector(app, engine_for(url))
        one_by_one.catch_up(batch_size=1)
        expected = stint_rows(one_by_one)
        with one_by_one.engine.begin() as conn:  # redelivered: a no-op
            one_by_one.apply(conn, [app.event_log.envelope_of(r)
                                    for r in app.event_log.stream_records()])
        assert stint_rows(one_by_one) == expected
        rebuild(app, one_by_one.engine)
        assert stint_rows(Projector(app, one_by_one.engine)) == expected


def test_periods_in_a_zone_cut_at_its_midnights(story: tuple[TicketingApp, str]) -> None:
    # Tokyo is UTC+9: its Tuesday begins Mon 15:00Z, so G-2's escalation (Mon 15:00Z),
    # its tier2 resolve (16:25Z) and G-3's tier2 due instant (Tue 11:00Z = 20:00 JST)
    # fall on Tuesday there; G-5's (Wed 08:20Z = 17:20 JST) on Wednesday
    report = queries(story).report_sla(MON, THU, as_of=THU, by="day",
                                       zone=ZoneInfo("Asia/Tokyo"))
    assert [(r["period"], r["level"], r["met"], r["missed"], r["escalated"])
            for r in report["tiers"]] == [
        ("2026-11-16", "tier1", 3, 1, 0),
        ("2026-11-17", "tier1", 0, 0, 1),
        ("2026-11-17", "tier2", 1, 1, 0),
        ("2026-11-18", "tier1", 0, 1, 0),
    ]


def test_report_times_never_calls_a_goal_missed_before_now(
        story: tuple[TicketingApp, str]) -> None:
    # a period ending after the engine's clock is measured at the clock: at 14:29 G-3's
    # tier1 goal (due 14:30) is still pending, however late the period ends
    app, _ = story
    projector = live(story)
    with projector.engine.connect() as conn:
        found = tier_rows_by(conn, projector.t, policy_of(app), periods=[(None, MON, THU)],
                             now=at(0, 14, 29))
    assert [brief([row])[0] for _, row in found] == [(None, "tier1", 2, 0, 0, 1, 100.0, 20.0)]


def test_the_human_report_shows_tiers_only_for_a_tenant_with_goals(
        story: tuple[TicketingApp, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, url = story
    for tenant, shown in (("personalysispro", False), (GB, True)):
        capsys.readouterr()
        assert main(["report", "sla", "--from", "2026-11-16", "--to", "2026-11-19",
                     "--as-of", "2026-11-19T00:00:00Z", "--tenant", tenant, "--db", url]) == 0
        assert ("tier goals" in capsys.readouterr().out) is shown


def test_a_what_if_measures_the_same_stints_under_the_file_s_goals(
        story: tuple[TicketingApp, str], capsys: pytest.CaptureFixture[str],
        tmp_path: Any) -> None:
    # tier1 within 45 min instead of 30: G-5 (35) is met now; G-3 (60, due 14:45) still
    # missed; G-2 still escalated: 4 met, 1 missed, 1 escalated = 66.7 %
    _, url = story
    shipped = resources.files("ticketflow.domain.policies").joinpath("growgrebuddy.toml")
    text = shipped.read_text(encoding="utf-8").replace('resolve_within = "30m"',
                                                       'resolve_within = "45m"')
    (tmp_path / "gb.toml").write_text(text.replace('version = "1.2.0"', 'version = "9.0.0"'),
                                      encoding="utf-8")
    capsys.readouterr()
    assert main(["report", "sla", "--from", "2026-11-16", "--to", "2026-11-19", "--as-of",
                 "2026-11-19T00:00:00Z", "--policy", str(tmp_path / "gb.toml"), "--json",
                 "--db", url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert brief(report["tiers"])[0] == (None, "tier1", 3, 2, 1, 0, 50.0, 20.0)
    assert brief(report["what_if"]["tiers"]) == [
        (None, "tier1", 4, 1, 1, 0, 66.7, 20.0),
        (None, "tier2", 1, 1, 0, 0, 50.0, 25.0)]
