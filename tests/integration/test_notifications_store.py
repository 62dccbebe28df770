"""Notifications on both event-store backends (the `db_url` fixture: a SQLite file and a
real PostgreSQL): recorded in the transaction of their events, fired by the timer, the
same live, late and replayed, and never twice when two processes' timers race."""

from __future__ import annotations

import pytest

from tests.support.builders import T0, create_payload
from tests.support.notifications import END, EXPECTED, H, M, done_when_story, listed, send
from tests.support.postgres import create_database
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.clock import SystemClock
from ticketflow.notifications import recorded, replayed
from ticketflow.settings import Settings
from ticketflow.timers import Timers


def open_app(db_url: str) -> TicketingApp:
    return build_app(Settings(db=db_url), clock=SystemClock.frozen(END))


def another_store(db_url: str, request: pytest.FixtureRequest) -> str:
    """An empty store on the same backend."""
    if db_url.startswith("sqlite"):
        return db_url.replace("ticketflow.db", "another.db")
    return create_database(request.getfixturevalue("postgres_server"))


def test_the_done_when_story_gives_what_the_policy_names_live_late_and_replayed(
        db_url: str, request: pytest.FixtureRequest) -> None:
    with open_app(db_url) as live:
        done_when_story(live, live=True)
        stored = list(recorded(live.event_log))
        replay = replayed(live.event_log, live.policy_store, "personalysispro", "T-1", END)
        assert Timers(live).fire_until(END) == []  # firing again records nothing
        assert list(recorded(live.event_log)) == stored
    assert listed(stored) == EXPECTED
    assert replay == stored
    assert "INTERNAL" not in str(stored) and "threatens" not in str(stored)
    with open_app(db_url) as reopened:  # another process reads the same documents back
        assert list(recorded(reopened.event_log)) == stored
    with open_app(another_store(db_url, request)) as late:
        done_when_story(late, live=False)  # no timer until the end: the resolve fires them
        assert list(recorded(late.event_log)) == stored


def test_a_timer_that_lost_the_race_for_an_update_records_nothing_twice(db_url: str) -> None:
    with open_app(db_url) as first, open_app(db_url) as second:
        send(first, 1, "create_ticket", T0, "customer", create_payload(), actor="u-42")
        send(first, 2, "acknowledge", T0 + 10 * M, "agent", {})
        Timers(first).fire_until(T0 + 12 * H)  # the breach escalates to management
        ticket = second.load_ticket("T-1", tenant="personalysispro")
        due = second.notifier.next_update(ticket, [])
        assert due is not None and due.rule == "management_update"
        before = list(recorded(first.event_log))
        # the first process's timer records the update …
        assert [o.status for o in Timers(first).fire_until(due.at)] == ["accepted"]
        # … while the second had computed it already: its commit collides
        assert second._fire_update(ticket, due).status == "duplicate"
        after = list(recorded(second.event_log))
    assert len(after) == len(before) + 2  # the customer and the account manager, once
    assert [d["rule"] for d in after[len(before):]] == ["management_update"] * 2
    assert len({d["notification_id"] for d in after}) == len(after)
