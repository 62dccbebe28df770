"""The read models on every backend: caught up from the log, idempotent under
redelivery, equal after a replay, and reports with hand-checked figures."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select, text

from tests.support.builders import T0, command_line, create_payload
from tests.support.released_read_models import NOT_RELEASED, RELEASED_KEYS, released_tables
from tests.support.tenants import GB, PP, fixed_clock, same_ids_story
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.domain.errors import NotFound
from ticketflow.event_log import TICKET_TOPIC
from ticketflow.projections import article_search
from ticketflow.projections.db import engine_for, outdated, tables
from ticketflow.projections.replay import open_projector, rebuild
from ticketflow.projections.reports import (
    satisfaction_report,
    sla_report,
    times_report,
    volume_report,
)
from ticketflow.projections.runner import Projector
from ticketflow.projections.timeline import ticket_as_of, timeline
from ticketflow.settings import Settings
from ticketflow.timers import Timers
from ticketflow.tools.workload import generate_workload

START = datetime(2026, 10, 5, tzinfo=UTC)
#: Searches of the knowledge base whose answers a replay must keep.
SEARCHED = ("export timeout", "branching logic skips a page", "crash app data")


def loaded(db_url: str, tickets: int = 60, days: int = 10) -> TicketingApp:
    app = build_app(Settings(db=db_url))
    for command in generate_workload(5, tickets=tickets, start=START, days=days):
        app.apply(json.dumps(command).encode())
    Timers(app).fire_until(START + timedelta(days=days))
    return app


def snapshot(projector: Projector) -> dict[str, list[dict[str, Any]]]:
    t = projector.t
    with projector.engine.connect() as conn:
        return {
            **{name: [dict(r._mapping) for r in conn.execute(
                select(table).order_by(*table.primary_key.columns))]
               for name, table in (("tickets", t.tickets), ("volume", t.volume),
                                   ("satisfaction", t.satisfaction),
                                   ("self_service", t.self_service), ("articles", t.articles),
                                   ("timeline", t.timeline), ("sla_clocks", t.sla_clocks),
                                   ("kb_articles", t.kb_articles),
                                   ("kb_exposures", t.kb_exposures),
                                   ("ticket_terms", t.ticket_terms),
                                   ("accounts", t.accounts), ("reviews", t.reviews),
                                   ("tier_stints", t.tier_stints))},
            # the search index answers alike (SQLite: its own FTS5 table is rebuilt too)
            "search": [article_search.search(conn, t.kb_articles.name, tenant, words, 5)
                       for tenant in (PP, GB) for words in SEARCHED],
        }


def live_read_models(app: TicketingApp, db_url: str) -> tuple[Any, dict[str, Any]]:
    """The read models caught up live, and a snapshot of them."""
    engine = engine_for(db_url)
    live = Projector(app, engine)
    live.catch_up()
    return engine, snapshot(live)


def test_the_read_models_hold_every_ticket_at_its_latest_version(db_url: str) -> None:
    with loaded(db_url) as app:
        projector = Projector(app, engine_for(db_url))
        assert projector.catch_up() > 0
        rows = snapshot(projector)["tickets"]
        assert len(rows) == 60
        for row in rows:
            ticket = app.load_ticket(row["ticket_id"])
            assert (row["version"], row["status"], row["level"]) == (
                ticket.version, ticket.status, ticket.level)
        assert projector.catch_up() == 0  # nothing new


def test_the_timeline_read_model_holds_every_event_exactly_as_stored(db_url: str) -> None:
    with loaded(db_url) as app:
        projector = Projector(app, engine_for(db_url))
        projector.catch_up()
        rows = snapshot(projector)["tickets"]
        with projector.engine.connect() as conn:
            for row in rows:
                assert timeline(conn, projector.t, row["tenant"], row["ticket_id"]) == (
                    app.event_log.ticket_events(row["ticket_id"]))
            with pytest.raises(NotFound):
                timeline(conn, projector.t, rows[0]["tenant"], "T-NOBODY")


def test_ticket_as_of_from_the_timeline_equals_the_event_store_at_every_instant(
    db_url: str,
) -> None:
    with loaded(db_url, tickets=12) as app:
        projector = Projector(app, engine_for(db_url))
        projector.catch_up()
        with projector.engine.connect() as conn:
            for row in snapshot(projector)["tickets"]:
                instants = sorted({datetime.fromisoformat(e["occurred_at"])
                                   for e in app.event_log.ticket_events(row["ticket_id"])})
                for at in [*instants, instants[-1] + timedelta(days=30)]:
                    from_model = ticket_as_of(conn, projector.t, row["tenant"],
                                              row["ticket_id"], at)
                    from_store = app.load_ticket(row["ticket_id"], at)
                    assert from_model.state() == from_store.state()
                with pytest.raises(NotFound, match="did not exist yet"):
                    ticket_as_of(conn, projector.t, row["tenant"], row["ticket_id"],
                                 instants[0] - timedelta(seconds=1))


def test_the_sla_clocks_read_model_equals_the_aggregate_at_its_latest_sla_fact(
    db_url: str,
) -> None:
    with loaded(db_url) as app:
        projector = Projector(app, engine_for(db_url))
        projector.catch_up()
        clocks = {(c["ticket_id"], c["clock"]): c for c in snapshot(projector)["sla_clocks"]}
        statuses = set()
        for row in snapshot(projector)["tickets"]:
            ticket = app.load_ticket(row["ticket_id"])
            result = ticket.sla(app.policy_store.policy_of(ticket), ticket.facts[-1].at)
            for name in ("first_response", "resolution"):
                expected = result.clock(name).as_dict()
                got = clocks[(row["ticket_id"], name)]
                assert (got["status"], got["due_at"], got["met_at"], got["target_minutes"],
                        got["counted_minutes"]) == (
                    expected["status"], expected["due_at"], expected["met_at"],
                    expected["target_minutes"], expected["counted_minutes"])
                statuses.add(got["status"])
        assert {"met", "breached"} <= statuses  # the workload exercises both outcomes


def test_redelivered_events_change_nothing(db_url: str) -> None:
    with loaded(db_url) as app:
        projector = Projector(app, engine_for(db_url))
        projector.catch_up()
        before = snapshot(projector)
        envelopes = [app.event_log.envelope_of(r) for r in app.event_log.stream_records()
                     if r.topic.endswith(("TicketCreated", "TicketResolved"))]
        with projector.engine.begin() as conn:  # deliver them all again
            projector.apply(conn, envelopes)
        assert snapshot(projector) == before


def test_a_poison_event_is_parked_its_ticket_held_back_and_retried_in_order(
    db_url: str,
) -> None:
    with loaded(db_url, tickets=8) as app:
        projector = Projector(app, engine_for(db_url))
        ticket_records = [r for r in app.event_log.stream_records()
                          if r.topic.startswith(TICKET_TOPIC)]
        first = app.event_log.envelope_of(ticket_records[0])
        story = app.event_log.ticket_events(first["ticket_id"])
        other = next(app.event_log.envelope_of(r) for r in ticket_records
                     if app.event_log.envelope_of(r)["ticket_id"] != first["ticket_id"])
        assert len(story) >= 4
        with projector.engine.begin() as conn:  # v1, then v3 before v2 (a gap), v4
            projector.apply(conn, [story[0], story[2], other, story[3]])
        parked = projector.parked()
        assert [(p["ticket_id"], p["version"]) for p in parked] == [
            (first["ticket_id"], 3), (first["ticket_id"], 4)]
        assert "OutOfOrder" in parked[0]["error"]
        with projector.engine.begin() as conn:  # v2 arrives: held behind v3 as well
            projector.apply(conn, [story[1]])
        assert [p["version"] for p in projector.parked()] == [2, 3, 4]
        assert snapshot(projector)["tickets"][0]["version"] in (1, other["version"])
        assert projector.retry_parked() == (3, 0)
        rows = {r["ticket_id"]: r for r in snapshot(projector)["tickets"]}
        assert rows[first["ticket_id"]]["version"] == 4
        # an event no projection can read (its data lacks the new priority) stays parked
        broken = {**story[3], "version": 5, "type": "PriorityChanged", "data": {}}
        with projector.engine.begin() as conn:
            projector.apply(conn, [broken])
        assert "KeyError" in projector.parked()[0]["error"]
        assert projector.retry_parked() == (0, 1)
        assert rows[first["ticket_id"]]["version"] == 4


def test_a_replay_from_the_start_equals_the_live_read_models_twice_over(db_url: str) -> None:
    with loaded(db_url) as app:
        engine, expected = live_read_models(app, db_url)
        for _ in range(2):  # the second replay must cope with the first one's tables
            assert rebuild(app, engine) > 0
            assert snapshot(Projector(app, engine)) == expected


@pytest.mark.processes
def test_a_replay_split_between_processes_equals_the_live_read_models(db_url: str) -> None:
    with loaded(db_url) as app:
        engine, expected = live_read_models(app, db_url)
        assert rebuild(app, engine, workers=3) == sum(1 for _ in app.event_log.stream_records())
        replayed = Projector(app, engine)
        assert snapshot(replayed) == expected
        assert replayed.position() == app.recorder.max_notification_id()
        assert replayed.catch_up() == 0  # nothing left over, nothing applied twice


def test_reports_after_a_replay_are_identical(db_url: str) -> None:
    def reports(projector: Projector, app: TicketingApp) -> str:
        window = {"since": START, "until": START + timedelta(days=10),
                  "as_of": START + timedelta(days=10)}
        with projector.engine.connect() as conn:
            sla = sla_report(conn, projector.t, lambda r: app.policy_store.policy_version(
                r["policy_id"], r["policy_version"], r["policy_hash"]), **window)
            volume = volume_report(conn, projector.t, since=START.date(),
                                   until=START.date() + timedelta(days=10), by="day")
        return json.dumps([[r.as_dict() for r in sla], volume], sort_keys=True)

    with loaded(db_url) as app:
        engine = engine_for(db_url)
        projector = Projector(app, engine)
        projector.catch_up()
        before = reports(projector, app)
        rebuild(app, engine)
        assert reports(Projector(app, engine), app) == before


def test_hand_checked_report_figures(sqlite_url: str) -> None:
    # Three PersonalysisPro professional/high tickets created Mon 2026-11-16 09:00 New
    # York (14:00Z); first response is due 12:00 (17:00Z). T-1 acknowledged at 10:00
    # (met), T-2 at 13:00 (late: breached), T-3 never (breached by the as-of, 18:00Z).
    # T-1 is resolved at 11:00 (resolution met: 2 h of 8); T-2's and T-3's resolution
    # clocks are due 17:00 (22:00Z), inside the window but after the as-of: open.
    # Volume that day: 3 created, 1 resolved, backlog 2 at the end of the day.
    with build_app(Settings(db=sqlite_url)) as app:
        for n in (1, 2, 3):
            app.apply(command_line(f"c-{n}", "create_ticket", f"T-{n}", T0, "customer",
                                   create_payload()))
        app.apply(command_line("a-1", "acknowledge", "T-1", T0 + timedelta(hours=1),
                               "agent", {}))
        app.apply(command_line("a-2", "acknowledge", "T-2", T0 + timedelta(hours=4),
                               "agent", {}))
        app.apply(command_line("r-1", "resolve", "T-1", T0 + timedelta(hours=2), "agent",
                               {"resolution": "done"}))
        projector = Projector(app, engine_for(sqlite_url))
        projector.catch_up()
        as_of = T0 + timedelta(hours=4)
        with projector.engine.connect() as conn:
            rows = sla_report(conn, projector.t, lambda r: app.policy_store.policy_version(
                r["policy_id"], r["policy_version"], r["policy_hash"]),
                since=T0, until=T0 + timedelta(days=1), as_of=as_of)
            volume = volume_report(conn, projector.t, since=date(2026, 11, 16),
                                   until=date(2026, 11, 17), by="day")
    assert [r.as_dict() for r in rows] == [{
        "tenant": "personalysispro", "plan": "professional", "priority": "high",
        "tickets": 3,
        "first_response": {"met": 1, "breached": 2, "open": 0, "compliance_percent": 33.3},
        "resolution": {"met": 1, "breached": 0, "open": 2, "compliance_percent": 100.0},
    }]
    assert volume == [{"period": "2026-11-16", "tenant": "personalysispro",
                       "category": "technical", "channel": "email", "priority": "high",
                       "created": 3, "resolved": 1, "closed": 0, "backlog": 2,
                       "resolution_rate": 33.3}]


def test_hand_checked_satisfaction_self_service_and_times(sqlite_url: str) -> None:
    # Two growgrebuddy tickets created Mon 14:00Z, acknowledged after 30 and 90 minutes,
    # resolved and rated: scores 5 and 2, NPS 10 and 3 (one promoter, one detractor).
    # Three self-service sessions, two solved.
    with build_app(Settings(db=sqlite_url)) as app:
        for n, (ack, score, nps) in enumerate(((30, 5, 10), (90, 2, 3)), start=1):
            ticket = f"G-{n}"
            at = T0 + timedelta(minutes=ack)
            app.apply(command_line(f"c-{n}", "create_ticket", ticket, T0, "customer",
                                   create_payload("growgrebuddy"), tenant="growgrebuddy"))
            app.apply(command_line(f"a-{n}", "acknowledge", ticket, at, "agent", {},
                                   tenant="growgrebuddy"))
            app.apply(command_line(f"r-{n}", "resolve", ticket, at, "agent",
                                   {"resolution": "ok"}, tenant="growgrebuddy"))
            app.apply(command_line(f"s-{n}", "record_satisfaction", ticket, at, "customer",
                                   {"score": score, "nps": nps}, tenant="growgrebuddy"))
        for n, outcome in enumerate(("solved", "solved", "ticket_created")):
            payload = {"articles_viewed": ["KB-1"], "outcome": outcome,
                       "ticket_id": "G-1" if outcome == "ticket_created" else None}
            raw = json.loads(command_line(f"ss-{n}", "record_self_service", "x", T0,
                                          "customer", payload, tenant="growgrebuddy"))
            raw["session_id"] = f"SS-{n}"
            del raw["ticket_id"]
            assert app.apply(json.dumps(raw).encode()).status == "accepted"
        projector = Projector(app, engine_for(sqlite_url))
        projector.catch_up()
        with projector.engine.connect() as conn:
            report = satisfaction_report(conn, projector.t, since=date(2026, 11, 16),
                                         until=date(2026, 11, 23))
            times = times_report(conn, projector.t, lambda r: app.policy_store.policy_version(
                r["policy_id"], r["policy_version"], r["policy_hash"]),
                since=T0, until=T0 + timedelta(days=1))
    assert report["satisfaction"] == [{
        "period": "2026-11-16", "tenant": "growgrebuddy", "plan": "standard", "responses": 2,
        "mean_score": 3.5, "csat_percent": 50.0, "nps_responses": 2, "nps": 0.0}]
    assert report["self_service"] == [{"period": "2026-11-16", "tenant": "growgrebuddy",
                                       "sessions": 3, "solved": 2, "success_rate": 66.7}]
    # medium on `business` 09-17 UTC from 14:00: 30 and 90 counted minutes
    assert times == [{"tenant": "growgrebuddy", "plan": "standard", "priority": "medium",
                      "first_response": {"count": 2, "mean": 60.0, "p50": 30.0, "p90": 90.0},
                      "resolution": {"count": 2, "mean": 60.0, "p50": 30.0, "p90": 90.0}}]


def test_the_articles_read_model_holds_every_link_consent_and_publication(
    sqlite_url: str,
) -> None:
    with loaded(sqlite_url, tickets=120, days=20) as app:
        projector = Projector(app, engine_for(sqlite_url))
        projector.catch_up()
        kinds = {"ArticleLinked": "linked", "PublicationConsented": "consented",
                 "PublishedAsArticle": "published"}
        expected = sorted(
            (e["ticket_id"], e["version"], kinds[e["type"]])
            for e in map(app.event_log.envelope_of, app.event_log.stream_records())
            if e["type"] in kinds)
        got = sorted((a["ticket_id"], a["version"], a["kind"])
                     for a in snapshot(projector)["articles"])
        assert got == expected and any(kind == "linked" for _, _, kind in got)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 50), redeliver=st.booleans())
def test_random_histories_projected_live_equal_a_replay(
    tmp_path_factory: pytest.TempPathFactory, seed: int, batch: int, redeliver: bool
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'store.db'}"
    with build_app(Settings(db=url)) as app:
        engine = engine_for(url)
        live = Projector(app, engine)
        for n, command in enumerate(generate_workload(seed, tickets=15, start=START, days=5)):
            app.apply(json.dumps(command).encode())
            if n % batch == 0:  # live: small, irregular catch-ups while commands arrive
                live.catch_up(batch_size=batch)
        live.catch_up(batch_size=batch)
        if redeliver:  # at-least-once delivery: everything again
            with engine.begin() as conn:
                live.apply(conn, [app.event_log.envelope_of(r)
                                  for r in app.event_log.stream_records()])
        projected = snapshot(live)
        rebuild(app, engine)
        assert snapshot(Projector(app, engine)) == projected


def test_indexes_added_since_the_tables_were_made_are_created_when_they_are_opened(
    db_url: str,
) -> None:
    with build_app(Settings(db=db_url)) as app:
        engine = engine_for(db_url)
        Projector(app, engine)
        with engine.begin() as conn:  # as a database made by an older version
            conn.execute(text('DROP INDEX "rm_sla_clocks_due"'))
        assert "rm_sla_clocks_due" not in index_names(engine, "rm_sla_clocks")
        Projector(app, engine)
        assert "rm_sla_clocks_due" in index_names(engine, "rm_sla_clocks")


def index_names(engine: Any, table: str) -> set[str]:
    return {index["name"] for index in inspect(engine).get_indexes(table)}


# -- two tenants, one ticket id (SPEC §5: ids are scoped by tenant) ----------------------


@pytest.fixture
def same_ids(db_url: str) -> Iterator[TicketingApp]:
    """personalysispro's and growgrebuddy's T-1 and SS-1 in the store (`same_ids_story`)."""
    with build_app(Settings(db=db_url), clock=fixed_clock) as app:
        same_ids_story(app)
        yield app


def keys(rows: list[dict[str, Any]], *extra: str) -> list[tuple[Any, ...]]:
    return [(r["tenant"], r.get("ticket_id", r.get("session_id")), *(r[e] for e in extra))
            for r in rows]


def test_two_tenants_tickets_with_the_same_id_are_two_tickets_in_every_read_model(
    same_ids: TicketingApp, db_url: str,
) -> None:
    app = same_ids
    projector = Projector(app, engine_for(db_url))
    projector.catch_up()
    rows = snapshot(projector)
    assert keys(rows["tickets"], "plan", "status", "version") == [
        (GB, "T-1", "standard", "resolved", 6), (PP, "T-1", "professional", "resolved", 5)]
    assert keys(rows["sla_clocks"], "clock", "status") == [
        (GB, "T-1", "first_response", "met"), (GB, "T-1", "resolution", "not_applicable"),
        (PP, "T-1", "first_response", "met"), (PP, "T-1", "resolution", "met")]
    assert keys(rows["satisfaction"], "score", "nps") == [(GB, "T-1", 2, 3), (PP, "T-1", 5, 9)]
    assert keys(rows["articles"], "article_id") == [(GB, "T-1", "KB-8"), (PP, "T-1", "KB-7")]
    assert keys(rows["self_service"], "outcome") == [(GB, "SS-1", "ticket_created"),
                                                     (PP, "SS-1", "solved")]
    assert len(rows["timeline"]) == 11  # GB's escalation to tier2 fell due at 60 minutes
    with projector.engine.connect() as conn:
        assert timeline(conn, projector.t, PP, "T-1") == \
            app.event_log.ticket_events("T-1", tenant=PP)
        assert timeline(conn, projector.t, GB, "T-1") == \
            same_ids.event_log.ticket_events("T-1", tenant=GB)
        for tenant, level in ((PP, None), (GB, "tier1")):
            ticket = ticket_as_of(conn, projector.t, tenant, "T-1", T0 + timedelta(minutes=45))
            assert (ticket.tenant, ticket.status, ticket.level) == (
                tenant, "acknowledged" if tenant == GB else "created", level)


def test_a_replay_equals_the_live_read_models_of_two_tenants_using_the_same_id(
    same_ids: TicketingApp, db_url: str,
) -> None:
    engine, expected = live_read_models(same_ids, db_url)
    assert len(expected["tickets"]) == 2
    live = Projector(same_ids, engine)
    with engine.begin() as conn:  # at-least-once: everything again, one tenant's first
        live.apply(conn, sorted((same_ids.event_log.envelope_of(r)
                                 for r in same_ids.event_log.stream_records()),
                                key=lambda e: e["tenant"]))
    assert snapshot(live) == expected
    assert rebuild(same_ids, engine) == 13
    assert snapshot(Projector(same_ids, engine)) == expected


def test_parked_events_of_one_tenants_ticket_do_not_hold_back_anothers_with_the_same_id(
    same_ids: TicketingApp, db_url: str,
) -> None:
    pp, gb = (same_ids.event_log.ticket_events("T-1", tenant=tenant) for tenant in (PP, GB))
    projector = Projector(same_ids, engine_for(db_url))

    def versions() -> list[tuple[Any, ...]]:
        return keys(snapshot(projector)["tickets"], "version")

    with projector.engine.begin() as conn:  # PP's v3 before its v2; GB's in order
        projector.apply(conn, [pp[0], pp[2], gb[0], gb[1]])
    assert keys(projector.parked(), "version") == [(PP, "T-1", 3)]
    assert versions() == [(GB, "T-1", 2), (PP, "T-1", 1)]
    with projector.engine.begin() as conn:  # PP's v2: held behind its parked v3
        projector.apply(conn, [pp[1], *gb[2:]])
    assert keys(projector.parked(PP, "T-1"), "version") == [(PP, "T-1", 2), (PP, "T-1", 3)]
    assert projector.parked(GB) == [] and projector.parked(GB, "T-1") == []
    assert versions() == [(GB, "T-1", 6), (PP, "T-1", 1)]
    assert projector.retry_parked() == (2, 0)
    with projector.engine.begin() as conn:
        projector.apply(conn, pp[3:])
    assert versions() == [(GB, "T-1", 6), (PP, "T-1", 5)]


def test_reports_count_both_tenants_tickets_with_the_same_id(
    same_ids: TicketingApp, db_url: str,
) -> None:
    app = same_ids
    projector = Projector(app, engine_for(db_url))
    projector.catch_up()

    def policy_of(r: dict[str, Any]) -> Any:
        return app.policy_store.policy_version(r["policy_id"], r["policy_version"],
                                               r["policy_hash"])

    day, since, until = T0.date(), T0, T0 + timedelta(days=2)  # GB's first response: Tue
    with projector.engine.connect() as conn:
        sla = sla_report(conn, projector.t, policy_of, since=since, until=until, as_of=until)
        times = times_report(conn, projector.t, policy_of, since=since, until=until)
        volume = volume_report(conn, projector.t, since=day, until=day + timedelta(days=1),
                               by="day")
        answers = satisfaction_report(conn, projector.t, since=day,
                                      until=day + timedelta(days=1), by="day")
    assert [(r.tenant, r.tickets, r.clocks["first_response"].met) for r in sla] == [
        (GB, 1, 1), (PP, 1, 1)]
    assert [(r["tenant"], r["first_response"]["count"], r["first_response"]["mean"])
            for r in times] == [(GB, 1, 30.0), (PP, 1, 60.0)]
    assert [(r["tenant"], r["created"], r["resolved"], r["backlog"]) for r in volume] == [
        (GB, 1, 1, 0), (PP, 1, 1, 0)]
    assert [(r["tenant"], r["responses"], r["mean_score"])
            for r in answers["satisfaction"]] == [(GB, 1, 2.0), (PP, 1, 5.0)]
    assert [(r["tenant"], r["sessions"], r["solved"]) for r in answers["self_service"]] == [
        (GB, 1, 0), (PP, 1, 1)]


# -- read models made by the released version (keyed by ticket id alone) -----------------


@pytest.fixture
def released_db(db_url: str) -> Iterator[tuple[TicketingApp, dict[str, Any]]]:
    """A store with a workload, and its read models in the released shape (made by
    today's projection, then copied into tables keyed as release 0.1.0 keyed them);
    with a snapshot of what they hold."""
    with build_app(Settings(db=db_url), clock=fixed_clock) as app:
        for command in generate_workload(5, tickets=12, start=START, days=5):
            app.apply(json.dumps(command).encode())
        engine = engine_for(db_url)
        made = Projector(app, engine, suffix="__made")
        made.catch_up()
        expected = snapshot(made)
        released = released_tables()
        released.create_all(engine)
        with engine.begin() as conn:
            for name, table in released.tables.items():
                rows = [dict(r._mapping) for r in conn.execute(select(tables("__made").metadata
                                                                     .tables[f"{name}__made"]))]
                if rows:
                    conn.execute(table.insert(), [{c.name: row[c.name] for c in table.columns}
                                                  for row in rows])
        made.t.metadata.drop_all(engine)
        assert outdated(engine, tables()) == [*RELEASED_KEYS, *NOT_RELEASED]
        yield app, expected


def test_read_models_of_the_released_version_are_rebuilt_when_opened(
    released_db: tuple[TicketingApp, dict[str, Any]], db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, expected = released_db
    engine = engine_for(db_url)
    with caplog.at_level(logging.WARNING, logger="ticketflow.projections.replay"):
        projector = open_projector(app, engine)
    assert outdated(engine, tables()) == []
    assert "made by an older release" in caplog.text and "rm_tickets" in caplog.text
    assert f"rebuilt from {len(list(app.event_log.stream_records()))} events" in caplog.text
    assert snapshot(projector) == expected
    assert projector.catch_up() == 0  # its position came with the rebuilt tables
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ticketflow.projections.replay"):
        open_projector(app, engine)  # current now: opened as it is
    assert caplog.text == ""


def test_processes_opening_released_read_models_at_once_rebuild_them_once(
    released_db: tuple[TicketingApp, dict[str, Any]], db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, expected = released_db
    engine = engine_for(db_url)
    opened: list[Projector] = []
    with caplog.at_level(logging.WARNING, logger="ticketflow.projections.replay"):
        threads = [threading.Thread(target=lambda: opened.append(open_projector(app, engine)))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(opened) == 3
    assert caplog.text.count("rebuilt from") == 1
    assert snapshot(opened[0]) == expected


def test_parked_retry_confined_to_a_tenant_leaves_the_other_tenants_parked_events(
    same_ids: TicketingApp, db_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    pp, gb = (same_ids.event_log.ticket_events("T-1", tenant=tenant) for tenant in (PP, GB))
    projector = Projector(same_ids, engine_for(db_url))
    with projector.engine.begin() as conn:  # each tenant's v3 before its v2: both parked
        projector.apply(conn, [pp[0], pp[2], gb[0], gb[2]])
    with projector.engine.begin() as conn:
        projector.apply(conn, [pp[1], gb[1]])
    assert keys(projector.parked(), "version") == [
        (GB, "T-1", 2), (GB, "T-1", 3), (PP, "T-1", 2), (PP, "T-1", 3)]

    assert main(["parked", "--retry", "--tenant", GB, "--db", db_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # GB's own list, now empty
    assert keys(projector.parked(), "version") == [(PP, "T-1", 2), (PP, "T-1", 3)]
    assert main(["parked", "--retry", "--db", db_url, "--json"]) == 0
    assert projector.parked() == []
