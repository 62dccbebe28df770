"""Tier goals (issue #19 item 4): stints folded from events, measured against GrowgrEbuddy's
goals (tier1 30 min on frontline, every day 08:00-20:00; tier2 4 h on business, Mon-Fri
09:00-17:00; UTC). Every figure below is worked out by hand in its comment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.builders import GB, PP, T0
from tests.support.instants import DAY, ZONES, instants, offsets
from ticketflow.domain.policy import PolicyError, policy_from_data
from ticketflow.domain.tiers import StintRow, StintStatus, evaluate_stint, fold_stints

MON = T0  # Monday 2026-11-16 14:00 UTC
TUE = T0 + timedelta(days=1)


def at(base: datetime, hours: float = 0, minutes: float = 0) -> str:
    return (base + timedelta(hours=hours, minutes=minutes)).isoformat()


def stints_of(*events: tuple[str, str, dict[str, Any]]) -> list[StintRow]:
    """Fold (type, at, data) events the way the read model does, tracking the level and
    whether the ticket waits for the customer as the ticket row would."""
    stints: list[StintRow] = []
    level, paused = None, False
    for kind, when, data in events:
        if kind == "TicketCreated":
            level = data.get("level", "tier1")
        elif kind == "TicketEscalated":
            level = data["level"]
        paused = {"UserInputRequested": True, "UserInputReceived": False,
                  "TicketResolved": False}.get(kind, paused)
        stints = fold_stints(stints, kind, when, data, level=level, paused=paused)
    return stints


def measure(stint: StintRow, as_of: datetime) -> Any:
    return evaluate_stint(GB, "UTC", stint, as_of)


CREATED = ("TicketCreated", at(MON), {"level": "tier1"})


def test_a_tier1_ticket_resolved_in_25_minutes_meets_its_goal() -> None:
    [stint] = stints_of(CREATED, ("TicketResolved", at(MON, minutes=25), {}))
    result = measure(stint, TUE)
    assert (result.status, result.counted_minutes) == (StintStatus.MET, 25.0)
    assert result.due_at is None  # it never fell due
    assert result.decided_at == MON + timedelta(minutes=25)


def test_the_goal_counts_frontline_hours_only() -> None:
    # created Mon 19:50: 10 min to the 20:00 close, then Tue from 08:00: the 30th
    # minute is Tue 08:20; resolved 08:25 after 35 counted minutes: missed at 08:20
    evening = MON.replace(hour=19, minute=50)
    [stint] = stints_of(("TicketCreated", evening.isoformat(), {}),
                        ("TicketResolved", TUE.replace(hour=8, minute=25).isoformat(), {}))
    result = measure(stint, TUE.replace(hour=12))
    assert (result.status, result.counted_minutes) == (StintStatus.MISSED, 35.0)
    assert result.due_at == result.decided_at == TUE.replace(hour=8, minute=20)


def test_met_exactly_at_the_due_instant_is_met() -> None:
    [stint] = stints_of(CREATED, ("TicketResolved", at(MON, minutes=30), {}))
    assert measure(stint, TUE).status is StintStatus.MET


def test_waiting_for_the_customer_does_not_count() -> None:
    # 14:00-14:10 counted, 14:10-16:00 paused, 16:00-16:25 counted: 35 min, the 30th
    # at 16:20 (without the pause it would have been 145 min)
    [stint] = stints_of(CREATED, ("UserInputRequested", at(MON, minutes=10), {}),
                        ("UserInputReceived", at(MON, hours=2), {}),
                        ("TicketResolved", at(MON, hours=2, minutes=25), {}))
    assert stint["pauses"] == [[at(MON, minutes=10), at(MON, hours=2)]]
    result = measure(stint, TUE)
    assert (result.status, result.counted_minutes) == (StintStatus.MISSED, 35.0)
    assert result.decided_at == MON + timedelta(hours=2, minutes=20)


def test_an_automatic_escalation_ends_tier1_late_and_starts_tier2() -> None:
    # tier1 14:00-15:00 (the timer escalates after 1 h on frontline): 60 min, the goal
    # fell due at 14:30, before it left. tier2 from Mon 15:00 on business hours:
    # Mon 15:00-17:00 (120) + Tue 09:00-10:30 (90) = 210 min <= 240: met
    tier1, tier2 = stints_of(CREATED, ("TicketEscalated", at(MON, hours=1), {"level": "tier2"}),
                             ("TicketResolved", TUE.replace(hour=10, minute=30).isoformat(), {}))
    assert (tier1["ended_by"], tier2["level"], tier2["started_at"]) == (
        "escalated", "tier2", at(MON, hours=1))
    first, second = measure(tier1, TUE.replace(hour=12)), measure(tier2, TUE.replace(hour=12))
    assert (first.status, first.counted_minutes, first.decided_at) == (
        StintStatus.MISSED, 60.0, MON + timedelta(minutes=30))
    assert (second.status, second.counted_minutes) == (StintStatus.MET, 210.0)
    assert second.decided_at == TUE.replace(hour=10, minute=30)


def test_leaving_before_the_goal_falls_due_is_escalated_not_met() -> None:
    # escalated by an agent after 10 minutes; tier2 then open from Mon 14:10: Mon
    # 14:10-17:00 is 170 business minutes, the other 70 run out Tue 10:10
    tier1, tier2 = stints_of(CREATED,
                             ("TicketEscalated", at(MON, minutes=10), {"level": "tier2"}))
    assert measure(tier1, TUE).status is StintStatus.ESCALATED
    before, after = measure(tier2, TUE.replace(hour=10)), measure(tier2, TUE.replace(hour=12))
    assert (before.status, before.due_at) == (StintStatus.PENDING, TUE.replace(hour=10, minute=10))
    assert (after.status, after.decided_at, after.counted_minutes) == (
        StintStatus.MISSED, TUE.replace(hour=10, minute=10), 350.0)


def test_a_critical_ticket_sent_to_tier3_at_creation_never_sat_at_tier1() -> None:
    [stint] = stints_of(CREATED, ("TicketEscalated", at(MON), {"level": "tier3"}))
    assert (stint["stint"], stint["level"]) == (1, "tier3")
    assert measure(stint, TUE) is None  # the plan gives tier3 no goal


def test_a_reopen_starts_a_new_stint_and_the_first_verdict_stands() -> None:
    first, second = stints_of(CREATED, ("TicketResolved", at(MON, minutes=20), {}),
                              ("TicketReopened", at(MON, hours=1), {}),
                              ("TicketResolved", at(MON, hours=1, minutes=40), {}))
    assert measure(first, TUE).status is StintStatus.MET
    result = measure(second, TUE)
    assert (second["stint"], result.status, result.counted_minutes, result.decided_at) == (
        2, StintStatus.MISSED, 40.0, MON + timedelta(hours=1, minutes=30))


def test_an_open_stint_is_pending_until_its_due_instant_then_missed() -> None:
    [stint] = stints_of(CREATED)
    assert measure(stint, MON + timedelta(minutes=29)).status is StintStatus.PENDING
    assert measure(stint, MON + timedelta(minutes=30)).status is StintStatus.MISSED


def test_a_paused_stint_has_no_due_instant_yet() -> None:
    [stint] = stints_of(CREATED, ("UserInputRequested", at(MON, minutes=5), {}))
    result = measure(stint, TUE)
    assert (result.status, result.due_at, result.decided_at, result.counted_minutes) == (
        StintStatus.PENDING, None, None, 5.0)


def test_an_escalation_while_waiting_starts_the_next_stint_paused() -> None:
    tier1, tier2 = stints_of(CREATED, ("UserInputRequested", at(MON, minutes=5), {}),
                             ("TicketEscalated", at(MON, hours=1), {"level": "tier2"}),
                             ("UserInputReceived", at(MON, hours=2), {}))
    assert tier1["pauses"] == [[at(MON, minutes=5), at(MON, hours=1)]]
    assert tier2["pauses"] == [[at(MON, hours=1), at(MON, hours=2)]]
    assert measure(tier1, TUE).status is StintStatus.ESCALATED  # 5 counted minutes


def test_a_ticket_at_no_level_has_no_stint() -> None:
    assert stints_of(("TicketCreated", at(MON), {"level": None})) == []


# -- the policy section ----------------------------------------------------------------


def with_goals(goals: dict[str, Any]) -> dict[str, Any]:
    return {**GB.model_dump(mode="json"), "tier_goals": goals}


def test_the_shipped_goals() -> None:
    assert {level: (g.resolve_within, g.calendar) for level, g in GB.tier_goals.items()} == {
        "tier1": (30, "frontline"), "tier2": (240, "business")}
    assert PP.tier_goals == {}


@pytest.mark.parametrize(("goals", "problem"), [
    ({"tier9": {"resolve_within": "1h", "calendar": "always"}},
     "tier_goals.tier9: 'tier9' is not a level of the escalation ladder"),
    ({"tier1": {"resolve_within": "1h", "calendar": "nights"}},
     "tier_goals.tier1.calendar: unknown calendar 'nights'"),
    ({"tier1": {"resolve_within": "0m", "calendar": "always"}}, "must be positive"),
    ({"tier1": {"resolve_within": "1h"}}, "calendar"),
])
def test_a_goal_that_cannot_be_measured_is_refused(goals: dict[str, Any], problem: str) -> None:
    with pytest.raises(PolicyError) as raised:
        policy_from_data(with_goals(goals), "gb.toml")
    assert problem in str(raised.value)


def test_a_goal_must_fall_due_within_the_horizon() -> None:
    document = with_goals({"tier1": {"resolve_within": "366d", "calendar": "saturdays"}})
    document["calendars"]["saturdays"] = {"hours": {"sat": ["10:00-12:00"]}}
    with pytest.raises(PolicyError, match=r"tier_goals\.tier1\.resolve_within: 527040 min"):
        policy_from_data(document, "gb.toml")


def test_a_policy_without_goals_keeps_the_content_hash_it_had() -> None:
    document = PP.model_dump(mode="json")
    assert document["tier_goals"] == {}
    assert "tier_goals" not in PP.hashed_document()


# -- invariants (hypothesis) ------------------------------------------------------------

#: A ticket's possible next events by whether it is open, waiting or resolved.
NEXT = {"open": ["TicketEscalated", "UserInputRequested", "TicketResolved"],
        "waiting": ["TicketEscalated", "UserInputReceived", "TicketResolved"],
        "resolved": ["TicketReopened"]}
AFTER = {"UserInputRequested": "waiting", "UserInputReceived": "open",
         "TicketResolved": "resolved", "TicketReopened": "open"}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, str, dict[str, Any]]], datetime]:
    at_ = draw(instants())
    events: list[tuple[str, str, dict[str, Any]]] = [("TicketCreated", at_.isoformat(), {})]
    state, level = "open", 0
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(NEXT[state]))
        if kind == "TicketEscalated" and level == 2:
            continue
        at_ += timedelta(seconds=draw(offsets(0, 3 * DAY)))
        data = {}
        if kind == "TicketEscalated":
            level += 1
            data = {"level": f"tier{level + 1}"}
        events.append((kind, at_.isoformat(), data))
        state = AFTER.get(kind, state)
    return events, at_ + timedelta(seconds=draw(offsets(-3 * DAY, 3 * DAY)))


@settings(max_examples=200, deadline=None)
@given(history=histories(), zone=st.sampled_from(ZONES))
def test_stints_never_count_more_than_wall_time_and_decide_inside_themselves(
        history: tuple[list[tuple[str, str, dict[str, Any]]], datetime], zone: str) -> None:
    events, as_of = history
    stints = stints_of(*events)
    assert [s["stint"] for s in stints] == list(range(1, len(stints) + 1))
    assert all(s["ended_at"] is not None for s in stints[:-1])
    for stint in stints:
        start = datetime.fromisoformat(stint["started_at"])
        result = evaluate_stint(GB, zone, stint, as_of)
        if result is None or start > as_of:
            continue
        end = datetime.fromisoformat(stint["ended_at"]) if stint["ended_at"] else None
        stop = min(end, as_of) if end else as_of
        assert 0 <= result.counted_seconds <= (stop - start).total_seconds()
        if result.status is StintStatus.MET:
            assert result.counted_seconds <= result.goal_minutes * 60
        if result.decided_at is not None and result.ended:
            assert start <= result.decided_at <= stop
        assert result.measured == (result.decided_at is not None
                                   and result.decided_at <= as_of)
