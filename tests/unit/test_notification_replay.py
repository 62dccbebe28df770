"""Notifications recorded live (with their events, and by the timer) are exactly those
the ticket's history gives when replayed, whenever the timer ran (SPEC §10)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.builders import POLICIES, T0, create_payload
from tests.support.notifications import END, EXPECTED, H, M, done_when_story, listed, send
from ticketflow.application import TicketingApp
from ticketflow.clock import SystemClock
from ticketflow.notifications import recorded, replayed
from ticketflow.timers import Timers


def engine() -> TicketingApp:
    """The write service in memory, its clock past every story."""
    return TicketingApp(POLICIES, {"PERSISTENCE_MODULE": "eventsourcing.popo"},
                        clock=SystemClock.frozen(END))


def test_the_done_when_ticket_gets_exactly_the_notifications_the_policy_names() -> None:
    app = engine()
    done_when_story(app, live=True)
    # Mon 09:00 New York created; 09:30 first level; 17:00 the resolution breach
    # escalates to management; updates every 4 h on `extended` (08-20): Tue 09:00,
    # 13:00, 17:00; resolved Tue 17:30: the survey. The internal comment: nothing.
    assert listed(list(recorded(app.event_log))) == EXPECTED
    assert "INTERNAL" not in str(list(recorded(app.event_log)))
    assert "threatens" not in str(list(recorded(app.event_log)))


def test_live_late_and_replayed_runs_give_the_same_notifications() -> None:
    live, late = engine(), engine()
    done_when_story(live, live=True)
    done_when_story(late, live=False)  # no timer until the end: the resolve fires them
    stored = list(recorded(live.event_log))
    assert list(recorded(late.event_log)) == stored
    assert replayed(live.event_log, live.policy_store, "personalysispro", "T-1", END) == stored


def test_firing_again_records_nothing_twice() -> None:
    app = engine()
    done_when_story(app, live=True)
    before = list(recorded(app.event_log))
    assert Timers(app).fire_until(END) == []
    assert list(recorded(app.event_log)) == before


def test_a_command_dated_at_an_updates_due_instant_after_the_timer_fired_it_keeps_the_update(
) -> None:
    """The race docs/decisions.md describes: live, the timer fires the update due at T
    when the clock reaches T, and a resolve dated T arriving after it is still accepted
    (same instant as the last fact); late (no timer), the resolve at T comes first and
    the update at T is no longer due. Replay follows the late order."""
    due = T0 + 24 * H  # update 1: Tue 09:00 New York (management since Mon 17:00)
    runs = {}
    for name, timer_ran in (("live", True), ("late", False)):
        app = engine()
        send(app, 1, "create_ticket", T0, "customer", create_payload(), actor="u-42")
        send(app, 2, "acknowledge", T0 + 10 * M, "agent", {})
        Timers(app).fire_until(T0 + 12 * H)  # the breach escalates to management
        if timer_ran:
            assert [o.status for o in Timers(app).fire_until(due)] == ["accepted"]
        assert send(app, 3, "resolve", due, "agent", {"resolution": "done"}) == "accepted"
        Timers(app).fire_until(END)
        runs[name] = (list(recorded(app.event_log)),
                      replayed(app.event_log, app.policy_store, "personalysispro", "T-1", END))
    (live, live_replay), (late, late_replay) = runs["live"], runs["late"]
    updates = [d for d in live if d["rule"] == "management_update"]
    assert [(d["at"], d["audience"]) for d in updates] == [
        (due.isoformat(), "customer"), (due.isoformat(), "account_manager")]
    assert [d for d in live if d["rule"] != "management_update"] == late
    assert live_replay == late_replay == late


step = st.tuples(
    st.sampled_from(["acknowledge", "escalate", "escalate", "resolve", "reopen", "assign",
                     "change_priority", "request_user_input", "receive_user_input",
                     "comment_public", "comment_internal"]),
    st.integers(min_value=1, max_value=36 * 60),  # minutes after the previous command
    st.booleans(),  # whether the timer runs (just) before the command
    st.integers(min_value=0, max_value=3),  # picks a level / a priority
)


def _command(name: str, pick: int) -> tuple[str, str, dict[str, Any]]:
    levels = POLICIES["personalysispro"].escalation.levels
    match name:
        case "escalate":
            return "escalate", "manager", {"level": levels[pick % 3], "reason": "why"}
        case "change_priority":
            priority = ["critical", "high", "medium", "low"][pick]
            return name, "manager", {"priority": priority, "reason": "why"}
        case "assign":
            return name, "agent", {"agent_id": f"agent-{pick}"}
        case "comment_public" | "comment_internal":
            visibility = name.removeprefix("comment_")
            return "add_comment", "agent", {"body": f"{visibility} words",
                                            "visibility": visibility}
        case "request_user_input":
            return name, "agent", {"question": "which export?"}
        case "receive_user_input" | "reopen":
            return name, "customer", {"reason": "still broken"} if name == "reopen" else {}
        case "resolve":
            return name, "agent", {"resolution": "fixed"}
    return name, "agent", {}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=12), st.sampled_from(["professional", "enterprise"]))
def test_recorded_notifications_equal_the_replayed_history(steps: list[Any], plan: str) -> None:
    live, late = engine(), engine()
    for app in (live, late):
        send(app, 0, "create_ticket", T0, "customer", create_payload(plan=plan), actor="u-1")
    at = T0
    for n, (name, minutes, timer_runs, pick) in enumerate(steps, start=1):
        at += timedelta(minutes=minutes)
        type_, role, payload = _command(name, pick)
        if timer_runs:  # a live timer fires what fell due, up to just before the command
            Timers(live).fire_until(at - timedelta(seconds=1))
        for app in (live, late):
            send(app, n, type_, at, role, payload)
    for app in (live, late):
        Timers(app).fire_until(at + timedelta(days=2))
    stored = list(recorded(live.event_log))
    assert list(recorded(late.event_log)) == stored
    assert replayed(live.event_log, live.policy_store, "personalysispro", "T-1",
                    at + timedelta(days=2)) == stored
    assert "internal words" not in str(stored)
