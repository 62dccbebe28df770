"""The timer through the real store: each rule at its instant, moot timers, racing
timer processes, a restart, and tick-driven history equal to live history."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import PersistenceError
from prometheus_client import REGISTRY

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app, load_policies
from ticketflow.clock import SystemClock
from ticketflow.domain.sla import CLOCKS, ClockStatus
from ticketflow.settings import Settings, eventstore_env
from ticketflow.timers import Timers
from ticketflow.tools.workload import generate_workload
from ticketflow.verification import verify_store

SECOND = timedelta(seconds=1)
FIRST_RESPONSE_DUE = datetime(2026, 11, 16, 17, tzinfo=UTC)  # see test_timers.py (unit)


def app_at(url: str) -> TicketingApp:
    return build_app(Settings(db=url))


def history(app: TicketingApp, ticket_id: str = "T-1") -> list[tuple[str, str]]:
    return [(e["type"], e["occurred_at"]) for e in app.event_log.ticket_events(ticket_id)]


def created(app: TicketingApp, **payload: Any) -> None:
    app.apply(command_line("m-1", "create_ticket", "T-1", T0, "customer",
                           create_payload(**payload)))


def test_a_breach_fires_at_its_instant_and_not_a_second_before(sqlite_url: str) -> None:
    with app_at(sqlite_url) as app:
        created(app)
        assert Timers(app).fire_until(FIRST_RESPONSE_DUE - SECOND) == []
        fired = Timers(app).fire_until(FIRST_RESPONSE_DUE)
        assert [o.events for o in fired] == [["SlaBreached"]]
        assert history(app)[-1] == ("SlaBreached", FIRST_RESPONSE_DUE.isoformat())
        assert app.event_log.ticket_events("T-1")[-1]["actor"] == {"id": "ticketflow-timer",
                                                              "role": "system"}


def test_a_resolution_breach_escalates_to_management_through_the_timer(sqlite_url: str) -> None:
    with app_at(sqlite_url) as app:
        created(app)
        app.apply(command_line("m-2", "acknowledge", "T-1", T0 + SECOND, "agent", {}))
        Timers(app).fire_until(T0 + timedelta(days=1))
        assert [t for t, _ in history(app)][-2:] == ["SlaBreached", "TicketEscalated"]
        assert app.load_ticket("T-1").level == "management"


def test_a_ticket_paused_over_its_due_time_fires_nothing_then_fires_later(
    sqlite_url: str,
) -> None:
    with app_at(sqlite_url) as app:
        created(app)
        app.apply(command_line("m-2", "acknowledge", "T-1", T0, "agent", {}))
        app.apply(command_line("m-3", "request_user_input", "T-1", T0 + timedelta(hours=1),
                               "agent", {"question": "which export?"}))
        assert Timers(app).fire_until(T0 + timedelta(days=3)) == []  # paused: nothing due
        answered = T0 + timedelta(days=3)  # Thu 09:00 New York; 1 h of 8 h counted
        app.apply(command_line("m-4", "receive_user_input", "T-1", answered, "customer", {}))
        due = answered + timedelta(hours=7)  # 7 h left on `extended` → 16:00 New York
        assert Timers(app).fire_until(due - SECOND) == []
        assert [o.events for o in Timers(app).fire_until(due)] == [
            ["SlaBreached", "TicketEscalated"]]  # resolution breach → management
        assert history(app)[-2] == ("SlaBreached", due.isoformat())


def test_a_resolved_ticket_auto_closes_after_seven_days(sqlite_url: str) -> None:
    with app_at(sqlite_url) as app:
        created(app)
        app.apply(command_line("m-2", "resolve", "T-1", T0, "agent", {"resolution": "ok"}))
        assert Timers(app).fire_until(T0 + timedelta(days=7) - SECOND) == []
        assert Timers(app).fire_until(T0 + timedelta(days=7))[0].events == ["TicketClosed"]
        ticket = app.load_ticket("T-1")
        assert ticket.status == "closed"
        assert app.event_log.ticket_events("T-1")[-1]["data"]["reason"] == "auto_closed"


def test_a_later_command_fires_what_fell_due_before_it_first(sqlite_url: str) -> None:
    with app_at(sqlite_url) as app:
        created(app)  # no timer process runs at all
        late = FIRST_RESPONSE_DUE + timedelta(minutes=10)
        app.apply(command_line("m-2", "acknowledge", "T-1", late, "agent", {}))
        assert history(app)[1:] == [("SlaBreached", FIRST_RESPONSE_DUE.isoformat()),
                                    ("TicketAcknowledged", late.isoformat())]


def test_two_timer_processes_racing_never_double_an_event(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    with app_at(url) as app:
        for n in range(10):
            app.apply(command_line(f"c-{n}", "create_ticket", f"T-{n}", T0, "customer",
                                   create_payload()))
    apps = [app_at(url) for _ in range(2)]
    threads = [threading.Thread(target=Timers(a).fire_until, args=(T0 + timedelta(days=2),))
               for a in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app_at(url) as app:
        for n in range(10):
            types = [t for t, _ in history(app, f"T-{n}")]
            assert types.count("SlaBreached") == 2  # one per clock, not two per clock
            assert types.count("TicketEscalated") == 1
        assert list(app.event_log.rejected()) == []
        assert verify_store(app) == []
    for a in apps:
        a.close()


def _workload(limit_tickets: int = 40) -> list[dict[str, Any]]:
    start = datetime(2026, 10, 5, tzinfo=UTC)
    return generate_workload(11, tickets=limit_tickets, start=start, days=10)


def _streams(app: TicketingApp, ticket_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    return {t: history(app, t) for t in ticket_ids}


def test_tick_driven_history_equals_live_history(tmp_path: Path) -> None:
    commands = _workload()
    tickets = sorted({c["ticket_id"] for c in commands if c["type"] == "create_ticket"})
    end = datetime(2026, 10, 15, tzinfo=UTC) + timedelta(days=8)
    with app_at(f"sqlite:///{tmp_path / 'live.db'}") as live:
        timers = Timers(live)
        for command in commands:  # a live timer: everything due before each arrival
            timers.fire_until(datetime.fromisoformat(command["occurred_at"]) - SECOND)
            live.apply(json.dumps(command).encode())
        timers.fire_until(end)
        live_streams = _streams(live, tickets)
    with app_at(f"sqlite:///{tmp_path / 'ticked.db'}") as ticked:
        for command in commands:  # no timer running while the commands arrive
            ticked.apply(json.dumps(command).encode())
        Timers(ticked).fire_until(end)
        assert _streams(ticked, tickets) == live_streams
    fired = [t for stream in live_streams.values() for t, _ in stream]
    assert {"SlaBreached", "TicketClosed"} <= set(fired)


def test_a_restarted_timer_continues_where_the_first_stopped(tmp_path: Path) -> None:
    commands = _workload(20)
    tickets = sorted({c["ticket_id"] for c in commands if c["type"] == "create_ticket"})
    middle = datetime(2026, 10, 9, tzinfo=UTC)
    end = datetime(2026, 10, 25, tzinfo=UTC)
    streams = []
    for name, stops in (("once", [end]), ("restarted", [middle, end])):
        url = f"sqlite:///{tmp_path / name}.db"
        with app_at(url) as app:
            for command in commands:
                app.apply(json.dumps(command).encode())
        for until in stops:
            with app_at(url) as app:  # a fresh process each time
                Timers(app).fire_until(until)
        with app_at(url) as app:
            streams.append(_streams(app, tickets))
    assert streams[0] == streams[1]


def test_the_sla_status_counts_exactly_the_breaches_the_timer_recorded(tmp_path: Path) -> None:
    commands = _workload()
    tickets = sorted({c["ticket_id"] for c in commands if c["type"] == "create_ticket"})
    end = datetime(2026, 10, 20, tzinfo=UTC)
    with app_at(f"sqlite:///{tmp_path / 'sla.db'}") as app:
        for command in commands:
            app.apply(json.dumps(command).encode())
        Timers(app).fire_until(end)
        breaches = 0
        for ticket_id in tickets:
            ticket = app.load_ticket(ticket_id)
            result = ticket.sla(app.policy_store.policy_of(ticket), end)
            recorded = {e["data"]["clock"] for e in app.event_log.ticket_events(ticket_id)
                        if e["type"] == "SlaBreached"}
            breached = {name for name in CLOCKS
                        if result.clock(name).status is ClockStatus.BREACHED}
            assert recorded == breached, ticket_id
            breaches += len(recorded)
        assert breaches > 0


def test_a_firing_that_fails_while_the_store_is_locked_is_retried_next_round(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**eventstore_env(url), "SQLITE_LOCK_TIMEOUT": "1"}
    with TicketingApp(load_policies(Settings(db=url)), env) as app:
        created(app)  # first response due FIRST_RESPONSE_DUE
        timers = Timers(app)
        timers.follow()
        lock = sqlite3.connect(tmp_path / "store.db")
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the store
        try:
            with pytest.raises(PersistenceError):
                timers.fire_until(FIRST_RESPONSE_DUE)
        finally:
            lock.rollback()
            lock.close()
        fired = timers.fire_until(FIRST_RESPONSE_DUE)  # the store is back
        assert [o.status for o in fired] == ["accepted"]
        assert [t for t, _ in history(app)] == ["TicketCreated", "SlaBreached"]


def test_the_worker_step_fires_what_is_due_by_the_applications_clock(sqlite_url: str) -> None:
    now = {"at": FIRST_RESPONSE_DUE - SECOND}
    with build_app(Settings(db=sqlite_url), clock=lambda: now["at"]) as app:
        created(app)
        timers = Timers(app)
        assert timers.run_once() == 0  # a second early by this clock, whatever the date
        now["at"] = FIRST_RESPONSE_DUE
        assert timers.run_once() == 1
        assert history(app)[-1] == ("SlaBreached", FIRST_RESPONSE_DUE.isoformat())
        last = app.event_log.ticket_events("T-1")[-1]
        assert last["recorded_at"] == FIRST_RESPONSE_DUE.isoformat()


def test_the_worker_step_follows_ticketflow_clock(sqlite_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_CLOCK", "@" + (T0 + timedelta(days=30)).isoformat())
    with build_app(Settings.from_env(db=sqlite_url)) as app:
        created(app)
        app.apply(command_line("m-2", "resolve", "T-1", T0 + SECOND, "agent",
                               {"resolution": "done"}))
        assert Timers(app).run_once() == 1  # the 7-day auto-close, due by that clock
        assert app.load_ticket("T-1").status == "closed"


def test_the_timer_role_reports_its_backlog_and_what_it_fired(
    sqlite_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    with app_at(sqlite_url) as app:
        created(app)
        app.clock = SystemClock.frozen(FIRST_RESPONSE_DUE)  # an explicit clock: no date
        timers = Timers(app)
        timers.follow()
        assert timers.backlog(FIRST_RESPONSE_DUE) == 1
        with caplog.at_level("INFO", logger="ticketflow.timers"):
            fired = timers.run_once()
    assert fired >= 1
    said = [getattr(r, "ticketflow_fields", {}) for r in caplog.records
            if getattr(r, "ticketflow_event", None) == "timers_fired"]
    assert said and said[0]["count"] == fired and said[0]["tickets"] == ["T-1"]
    assert REGISTRY.get_sample_value("ticketflow_timer_backlog", {"role": "timers"}) == 0
