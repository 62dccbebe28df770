"""SLA clocks (SPEC §2 targets, §4 rules): first response and resolution.

Expected figures are either worked out by hand (the comments show the arithmetic) or
taken from `tests/support/oracle.py`, a naive minute-by-minute walk over the policy TOML
that shares no code with `domain/calendar.py` or `domain/sla.py`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import oracle
from tests.support.instants import ZONES, instants, offsets
from ticketflow.domain.policy import Policy, policy_from_data, shipped_policies
from ticketflow.domain.sla import CLOCKS, ClockStatus, Fact, SlaResult, evaluate, facts_from_event

POLICIES = shipped_policies()
RAW = {pid: oracle.load_policy(pid) for pid in POLICIES}
PP, GB = "personalysispro", "growgrebuddy"


def with_holidays(policy_id: str, holidays: list[date]) -> tuple[dict[str, Any], Policy]:
    """A shipped policy whose every calendar (24x7 too) closes on `holidays`."""
    raw = copy.deepcopy(RAW[policy_id])
    for spec in raw["calendars"].values():
        spec["holidays"] = holidays
    return raw, policy_from_data(raw, f"{policy_id} with holidays")


# Random tickets also run under this variant: holidays on and next to DST days.
PP_HOLIDAYS = "personalysispro+holidays"
RAW[PP_HOLIDAYS], POLICIES[PP_HOLIDAYS] = with_holidays(PP, [
    date(2026, 1, 1), date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 30),
    date(2026, 10, 25), date(2026, 11, 2), date(2026, 12, 25),
])
NEW_YORK, BERLIN = "America/New_York", "Europe/Berlin"
HOUR, DAY = 3600, 86400

# SPEC §2.1 first-response targets in minutes (standard critical: high's 4 h applies).
PP_FIRST_RESPONSE = {
    ("standard", "critical"): 240, ("standard", "high"): 240,
    ("standard", "medium"): 720, ("standard", "low"): 1440,
    ("professional", "critical"): 120, ("professional", "high"): 180,
    ("professional", "medium"): 480, ("professional", "low"): 960,
    ("enterprise", "critical"): 30, ("enterprise", "high"): 60,
    ("enterprise", "medium"): 240, ("enterprise", "low"): 480,
}
PP_RESOLUTION = {"critical": 240, "high": 480, "medium": 1440, "low": 4320}
PP_CALENDAR = {
    ("standard", "critical"): "business", ("standard", "high"): "business",
    ("standard", "medium"): "business", ("standard", "low"): "business",
    ("professional", "critical"): "extended", ("professional", "high"): "extended",
    ("professional", "medium"): "extended", ("professional", "low"): "extended",
    ("enterprise", "critical"): "always", ("enterprise", "high"): "extended",
    ("enterprise", "medium"): "extended", ("enterprise", "low"): "extended",
}
# SPEC §2.2: critical 1 h on always, high 4 h on frontline, medium 1 and low 2
# business days of 8 h on business; no resolution target.
GB_FIRST_RESPONSE = {
    "critical": (60, "always"), "high": (240, "frontline"),
    "medium": (480, "business"), "low": (960, "business"),
}


def at(tz: str, text: str) -> datetime:
    """Local wall time `YYYY-MM-DD HH:MM[:SS]` in `tz`."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ticket(created: datetime, priority: str, *events: tuple[Any, ...]) -> list[Fact]:
    """Facts of a ticket created at `created`, then events (type, at[, priority|clock])."""
    facts = facts_from_event("TicketCreated", created, {"priority": priority})
    for event in events:
        kind, instant, *value = event
        data = {"priority": value[0]} if kind == "PriorityChanged" else {}
        if kind == "SlaBreached":
            data = {"clock": value[0]}
        facts += facts_from_event(kind, instant, data)
    return facts


def sla(policy_id: str, plan: str, tz: str, facts: list[Fact], as_of: datetime,
        *, explain: bool = False, policy: Policy | None = None) -> SlaResult:
    return evaluate(policy or POLICIES[policy_id], plan, tz, facts, as_of, explain=explain)


def assert_matches_oracle(result: SlaResult, expected: oracle.OracleResult) -> None:
    assert (result.priority, result.calendar) == (expected.priority, expected.calendar)
    for name in CLOCKS:
        got, want = result.clock(name), expected.clock(name)
        assert got.status.value == want.status, name
        assert got.target_minutes == want.target_minutes, name
        assert got.met_at == want.met_at, name
        assert got.breached_at == want.breached_at, name
        assert got.counted_seconds == pytest.approx(want.counted_seconds, abs=1e-6), name
        # A clock met while paused shows no due instant in the oracle (nothing to compare).
        if want.status != "met" or want.met_due is not None:
            assert got.due_at == want.due_at, name


def checked(policy_id: str, plan: str, tz: str, facts: list[Fact], as_of: datetime,
            *, raw: dict[str, Any] | None = None, policy: Policy | None = None) -> SlaResult:
    """Evaluate, check against the oracle, and hand the result back for more checks."""
    result = sla(policy_id, plan, tz, facts, as_of, policy=policy)
    assert_matches_oracle(result, oracle.simulate(raw or RAW[policy_id], plan, tz, facts, as_of))
    return result


# --- targets and due instants per SPEC table ------------------------------------------------

PP_CREATED = [
    "2026-03-06 16:30",  # Friday afternoon before New York springs forward
    "2026-10-31 10:00",  # Saturday before New York falls back
    "2026-06-01 08:59",  # Monday, a minute before business hours
]


@pytest.mark.parametrize("created", PP_CREATED)
@pytest.mark.parametrize(("plan", "priority"), sorted(PP_FIRST_RESPONSE))
def test_personalysispro_targets_and_due_instants_follow_the_spec_table(
    plan: str, priority: str, created: str
) -> None:
    opened = at(NEW_YORK, created)

    result = checked(PP, plan, NEW_YORK, ticket(opened, priority), opened)

    assert result.calendar == PP_CALENDAR[plan, priority]
    assert result.first_response.target_minutes == PP_FIRST_RESPONSE[plan, priority]
    assert result.resolution.target_minutes == PP_RESOLUTION[priority]
    assert result.first_response.status is ClockStatus.RUNNING
    assert result.first_response.due_at is not None and result.first_response.due_at > opened


@pytest.mark.parametrize("tz", ["UTC", BERLIN])
@pytest.mark.parametrize("created", ["2026-03-27 16:30", "2026-10-24 10:00", "2026-06-01 08:59"])
@pytest.mark.parametrize("priority", sorted(GB_FIRST_RESPONSE))
def test_growgrebuddy_targets_and_due_instants_follow_the_spec_table(
    priority: str, created: str, tz: str
) -> None:
    opened = at(tz, created)

    result = checked(GB, "standard", tz, ticket(opened, priority), opened)

    assert (result.first_response.target_minutes, result.calendar) == GB_FIRST_RESPONSE[priority]
    assert result.resolution.status is ClockStatus.NOT_APPLICABLE
    assert result.resolution.target_minutes is None and result.resolution.due_at is None


@pytest.mark.parametrize(("policy_id", "plan", "priority", "tz", "created", "due"), [
    # 30 min on Friday (16:30-17:00 EST), 3 h 30 on Monday from 09:00 EDT: 12:30 EDT.
    (PP, "standard", "high", NEW_YORK, "2026-03-06 16:30", "2026-03-09T16:30"),
    # Critical on standard has no target of its own: high's 4 h, same instant.
    (PP, "standard", "critical", NEW_YORK, "2026-03-06 16:30", "2026-03-09T16:30"),
    # 3 h 30 on Friday to 20:00, 12 h on Monday, 30 min on Tuesday: Tue 08:30 EDT.
    (PP, "professional", "low", NEW_YORK, "2026-03-06 16:30", "2026-03-10T12:30"),
    # 24x7: 30 min after Saturday 10:00 EDT.
    (PP, "enterprise", "critical", NEW_YORK, "2026-10-31 10:00", "2026-10-31T14:30"),
    # Extended opens 08:00: 08:59 + 4 h = 12:59 EDT.
    (PP, "enterprise", "medium", NEW_YORK, "2026-06-01 08:59", "2026-06-01T16:59"),
    # One business day (8 h): 30 min Friday CET, 7 h 30 from Monday 09:00 CEST: 16:30 CEST.
    (GB, "standard", "medium", BERLIN, "2026-03-27 16:30", "2026-03-30T14:30"),
    # Frontline every day 08-20: 2 h on Saturday, 2 h from Sunday 08:00 (UTC account).
    (GB, "standard", "high", "UTC", "2026-10-24 18:00", "2026-10-25T10:00"),
])
def test_first_response_due_skips_closed_time_on_the_tickets_calendar(
    policy_id: str, plan: str, priority: str, tz: str, created: str, due: str
) -> None:
    opened = at(tz, created)

    result = sla(policy_id, plan, tz, ticket(opened, priority), opened)

    assert result.first_response.due_at == utc(due)


def test_first_response_due_skips_the_weekend_on_the_business_calendar() -> None:
    opened = at(NEW_YORK, "2026-06-05 16:00")  # a Friday

    result = sla(PP, "standard", NEW_YORK, ticket(opened, "high"), opened)

    # 1 h on Friday, 3 h from Monday 09:00 EDT: Monday 12:00 EDT.
    assert result.first_response.due_at == at(NEW_YORK, "2026-06-08 12:00")


# --- met and breached at the due instant ------------------------------------------------------

# Enterprise high on extended hours, created Tue 10:00 EDT: first response due 11:00 EDT
# (15:00Z), resolution due 18:00 EDT (22:00Z).
EH_CREATED = utc("2026-06-02T14:00")
EH_FIRST_DUE, EH_RESOLUTION_DUE = utc("2026-06-02T15:00"), utc("2026-06-02T22:00")
EH_AN_HOUR_LATER = EH_FIRST_DUE + timedelta(hours=1)
SECOND = timedelta(seconds=1)


def test_a_first_response_exactly_at_the_due_instant_is_met() -> None:
    facts = ticket(EH_CREATED, "high", ("TicketAcknowledged", EH_FIRST_DUE))

    first = checked(PP, "enterprise", NEW_YORK, facts, EH_AN_HOUR_LATER).first_response

    assert first.status is ClockStatus.MET
    assert (first.met_at, first.breached_at, first.due_at) == (EH_FIRST_DUE, None, EH_FIRST_DUE)
    assert first.counted_minutes == 60


def test_a_first_response_one_second_late_is_breached_at_the_due_instant() -> None:
    facts = ticket(EH_CREATED, "high", ("TicketAcknowledged", EH_FIRST_DUE + SECOND))

    first = checked(PP, "enterprise", NEW_YORK, facts, EH_AN_HOUR_LATER).first_response

    assert first.status is ClockStatus.BREACHED
    assert (first.met_at, first.breached_at) == (EH_FIRST_DUE + SECOND, EH_FIRST_DUE)


def test_a_clock_is_running_one_second_before_its_due_instant_and_breached_at_it() -> None:
    facts = ticket(EH_CREATED, "high")

    before = checked(PP, "enterprise", NEW_YORK, facts, EH_FIRST_DUE - SECOND).first_response
    on_time = checked(PP, "enterprise", NEW_YORK, facts, EH_FIRST_DUE).first_response

    assert (before.status, before.due_at, before.breached_at) == (
        ClockStatus.RUNNING, EH_FIRST_DUE, None)
    assert before.counted_seconds == 3599
    assert (on_time.status, on_time.due_at, on_time.breached_at) == (
        ClockStatus.BREACHED, EH_FIRST_DUE, EH_FIRST_DUE)


def test_a_resolution_exactly_at_the_due_instant_is_met() -> None:
    facts = ticket(EH_CREATED, "high", ("TicketAcknowledged", utc("2026-06-02T14:30")),
                   ("TicketResolved", EH_RESOLUTION_DUE))

    resolution = checked(PP, "enterprise", NEW_YORK, facts, utc("2026-06-03T12:00")).resolution

    assert resolution.status is ClockStatus.MET
    assert (resolution.met_at, resolution.breached_at) == (EH_RESOLUTION_DUE, None)
    assert resolution.counted_minutes == 480


def test_a_resolution_one_second_late_is_breached_at_the_due_instant() -> None:
    facts = ticket(EH_CREATED, "high", ("TicketResolved", EH_RESOLUTION_DUE + SECOND))

    result = checked(PP, "enterprise", NEW_YORK, facts, utc("2026-06-03T12:00"))

    assert result.resolution.status is ClockStatus.BREACHED
    assert result.resolution.breached_at == EH_RESOLUTION_DUE
    # The same resolve is the (late) first response.
    assert result.first_response.status is ClockStatus.BREACHED
    assert result.first_response.met_at == EH_RESOLUTION_DUE + SECOND


def test_an_unresolved_ticket_is_breached_when_as_of_is_the_resolution_due_instant() -> None:
    facts = ticket(EH_CREATED, "high", ("TicketAcknowledged", utc("2026-06-02T14:30")))

    resolution = checked(PP, "enterprise", NEW_YORK, facts, EH_RESOLUTION_DUE).resolution

    assert (resolution.status, resolution.breached_at) == (ClockStatus.BREACHED, EH_RESOLUTION_DUE)


def test_asking_the_customer_at_the_resolution_due_instant_does_not_stop_the_breach() -> None:
    facts = ticket(EH_CREATED, "high", ("TicketAcknowledged", utc("2026-06-02T14:30")),
                   ("UserInputRequested", EH_RESOLUTION_DUE))

    resolution = checked(PP, "enterprise", NEW_YORK, facts, utc("2026-06-03T12:00")).resolution

    assert (resolution.status, resolution.breached_at) == (ClockStatus.BREACHED, EH_RESOLUTION_DUE)


def test_a_response_a_second_after_closing_is_late_although_no_open_time_passed() -> None:
    # Standard high (4 h business), created Mon 13:00 EDT: due at closing, 17:00 EDT.
    created, due = at(NEW_YORK, "2026-06-01 13:00"), at(NEW_YORK, "2026-06-01 17:00")
    on_time = ticket(created, "high", ("TicketAcknowledged", due))
    late = ticket(created, "high", ("TicketAcknowledged", due + SECOND))
    as_of = at(NEW_YORK, "2026-06-02 12:00")

    met = checked(PP, "standard", NEW_YORK, on_time, as_of).first_response
    breached = checked(PP, "standard", NEW_YORK, late, as_of).first_response

    assert (met.status, met.counted_seconds) == (ClockStatus.MET, 4 * HOUR)
    assert (breached.status, breached.breached_at) == (ClockStatus.BREACHED, due)
    assert breached.counted_seconds == 4 * HOUR


def test_a_ticket_resolved_at_its_creation_instant_meets_both_clocks_and_shows_their_due() -> None:
    created = at(NEW_YORK, "2026-06-02 10:00")
    facts = ticket(created, "high", ("TicketResolved", created))

    result = checked(PP, "enterprise", NEW_YORK, facts, at(NEW_YORK, "2026-06-02 12:00"))

    first, resolution = result.first_response, result.resolution
    assert (first.status, first.met_at, first.counted_seconds) == (ClockStatus.MET, created, 0)
    assert first.due_at == at(NEW_YORK, "2026-06-02 11:00")
    assert (resolution.status, resolution.met_at) == (ClockStatus.MET, created)
    assert resolution.due_at == at(NEW_YORK, "2026-06-02 18:00")


def test_the_timers_breach_fact_at_the_due_instant_changes_nothing() -> None:
    plain = ticket(EH_CREATED, "high")
    with_timer = ticket(EH_CREATED, "high", ("SlaBreached", EH_FIRST_DUE, "first_response"))
    as_of = utc("2026-06-02T18:00")

    assert sla(PP, "enterprise", NEW_YORK, with_timer, as_of) == sla(
        PP, "enterprise", NEW_YORK, plain, as_of)


# --- pause while pending_user_input -----------------------------------------------------------

# Professional high (extended 08:00-20:00, first response 3 h, resolution 8 h) created
# Tue 09:00 EDT; the agent asks at 10:00 EDT, the customer answers at 19:00 EDT.
PH_CREATED = at(NEW_YORK, "2026-06-02 09:00")
PH_ASKED, PH_ANSWERED = at(NEW_YORK, "2026-06-02 10:00"), at(NEW_YORK, "2026-06-02 19:00")
PH_FACTS = ticket(PH_CREATED, "high", ("UserInputRequested", PH_ASKED),
                  ("UserInputReceived", PH_ANSWERED))


def test_while_pending_user_input_the_clock_is_paused_with_no_due_instant() -> None:
    result = checked(PP, "professional", NEW_YORK, PH_FACTS, at(NEW_YORK, "2026-06-02 16:00"))

    assert result.resolution.status is ClockStatus.PAUSED
    assert result.resolution.due_at is None
    assert result.resolution.counted_minutes == 60
    # Asking the customer is the first response.
    assert (result.first_response.status, result.first_response.met_at) == (
        ClockStatus.MET, PH_ASKED)


def test_the_paused_stretch_is_not_counted_and_moves_the_due_instant_by_its_open_time() -> None:
    as_of = at(NEW_YORK, "2026-06-03 09:00")
    unpaused = sla(PP, "professional", NEW_YORK, ticket(PH_CREATED, "high"), PH_CREATED)

    paused = checked(PP, "professional", NEW_YORK, PH_FACTS, as_of).resolution

    # Counted: 09-10 Tue, 19-20 Tue, 08-09 Wed = 3 h; 8 h - 3 h = 5 h from Wed 09:00.
    assert paused.status is ClockStatus.RUNNING
    assert paused.counted_minutes == 180
    assert paused.due_at == at(NEW_YORK, "2026-06-03 14:00")
    assert unpaused.resolution.due_at == at(NEW_YORK, "2026-06-02 17:00")
    extended = POLICIES[PP].calendar_objects["extended"].zoned(NEW_YORK)
    paused_open = extended.open_seconds(PH_ASKED, PH_ANSWERED)
    assert paused_open == 9 * HOUR
    assert unpaused.resolution.due_at is not None and paused.due_at is not None
    assert extended.open_seconds(unpaused.resolution.due_at, paused.due_at) == paused_open


def test_a_pause_over_a_closed_night_moves_the_due_instant_by_the_open_hours_only() -> None:
    created = at(NEW_YORK, "2026-06-02 18:00")
    facts = ticket(created, "medium", ("UserInputRequested", at(NEW_YORK, "2026-06-02 19:00")),
                   ("UserInputReceived", at(NEW_YORK, "2026-06-03 09:00")))

    resolution = checked(PP, "professional", NEW_YORK, facts,
                         at(NEW_YORK, "2026-06-03 10:00")).resolution

    # Counted 18-19 Tue and 09-10 Wed; the pause held 1 h (19-20) + 1 h (08-09) of open time.
    assert resolution.counted_minutes == 120
    # 24 h - 2 h = 22 h from Wed 10:00: 10 h Wed, 12 h Thu: Thu 20:00 EDT.
    assert resolution.due_at == at(NEW_YORK, "2026-06-04 20:00")


# --- reopen -------------------------------------------------------------------------------------

# Enterprise medium (extended; resolution 24 h) created Mon 08:00 EDT, resolved Mon 12:00 EDT
# (4 h counted), reopened Wed 10:00 EDT.
EM_CREATED = at(NEW_YORK, "2026-06-01 08:00")
EM_RESOLVED, EM_REOPENED = at(NEW_YORK, "2026-06-01 12:00"), at(NEW_YORK, "2026-06-03 10:00")
EM_FACTS = ticket(EM_CREATED, "medium", ("TicketAcknowledged", at(NEW_YORK, "2026-06-01 08:30")),
                  ("TicketResolved", EM_RESOLVED), ("TicketReopened", EM_REOPENED))


def test_a_resolved_ticket_has_its_resolution_clock_met() -> None:
    resolution = checked(PP, "enterprise", NEW_YORK, EM_FACTS,
                         at(NEW_YORK, "2026-06-02 12:00")).resolution

    assert (resolution.status, resolution.met_at) == (ClockStatus.MET, EM_RESOLVED)
    assert resolution.counted_minutes == 240


def test_a_reopen_runs_the_resolution_clock_again_from_the_counted_time() -> None:
    result = checked(PP, "enterprise", NEW_YORK, EM_FACTS, at(NEW_YORK, "2026-06-03 11:00"))

    # 4 h before the resolve + 1 h since the reopen; the closed Tuesday between is skipped.
    assert result.resolution.status is ClockStatus.RUNNING
    assert result.resolution.met_at is None
    assert result.resolution.counted_minutes == 300
    # 24 h - 5 h = 19 h from Wed 11:00: 9 h Wed, 10 h Thu from 08:00 = Thu 18:00 EDT.
    assert result.resolution.due_at == at(NEW_YORK, "2026-06-04 18:00")
    assert result.first_response.status is ClockStatus.MET


def test_resolving_again_after_a_reopen_meets_the_clock_at_the_second_resolve() -> None:
    second = at(NEW_YORK, "2026-06-04 09:00")
    facts = [*EM_FACTS, *facts_from_event("TicketResolved", second, {})]

    as_of = at(NEW_YORK, "2026-06-05 09:00")

    resolution = checked(PP, "enterprise", NEW_YORK, facts, as_of).resolution

    # 4 h + Wed 10-20 (10 h) + Thu 08-09 (1 h) = 15 h.
    assert (resolution.status, resolution.met_at) == (ClockStatus.MET, second)
    assert resolution.counted_minutes == 900


def test_a_reopen_after_the_target_has_been_used_up_breaches_at_once() -> None:
    # Resolved exactly at the 24 h target, then reopened: nothing is left.
    created = at(NEW_YORK, "2026-06-01 08:00")
    due = at(NEW_YORK, "2026-06-02 20:00")  # 12 h Mon + 12 h Tue
    reopened = at(NEW_YORK, "2026-06-03 10:00")
    facts = ticket(created, "medium", ("TicketResolved", due), ("TicketReopened", reopened))


    for as_of in (reopened, at(NEW_YORK, "2026-06-03 12:00")):
        resolution = checked(PP, "enterprise", NEW_YORK, facts, as_of).resolution

        assert (resolution.status, resolution.breached_at) == (ClockStatus.BREACHED, reopened)
        assert resolution.due_at == reopened


# --- priority changes ---------------------------------------------------------------------------


def test_raising_to_critical_breaches_at_once_when_the_new_target_is_used_up() -> None:
    # Enterprise low (extended, first response 8 h) created 08:00 EDT; at 09:00 EDT (1 h
    # counted) raised to critical: 30 min target, already passed -> breached at 09:00.
    created, raised = at(NEW_YORK, "2026-06-02 08:00"), at(NEW_YORK, "2026-06-02 09:00")
    facts = ticket(created, "low", ("PriorityChanged", raised, "critical"))

    result = checked(PP, "enterprise", NEW_YORK, facts, at(NEW_YORK, "2026-06-02 10:00"))

    assert (result.priority, result.calendar) == ("critical", "always")
    first = result.first_response
    assert (first.status, first.breached_at, first.target_minutes) == (
        ClockStatus.BREACHED, raised, 30)
    # Resolution: critical 4 h, 1 h counted, now on 24x7: due 12:00 EDT.
    assert result.resolution.status is ClockStatus.RUNNING
    assert result.resolution.due_at == at(NEW_YORK, "2026-06-02 12:00")


def test_a_new_target_equal_to_the_counted_time_breaches_at_the_change() -> None:
    created, raised = at(NEW_YORK, "2026-06-02 08:00"), at(NEW_YORK, "2026-06-02 08:30")
    facts = ticket(created, "medium", ("PriorityChanged", raised, "critical"))

    first = checked(PP, "enterprise", NEW_YORK, facts, raised).first_response

    assert (first.status, first.breached_at, first.counted_minutes) == (
        ClockStatus.BREACHED, raised, 30)


def test_an_answer_in_the_same_instant_as_a_change_that_uses_up_the_target_is_in_time() -> None:
    # 30 min counted when raised to critical (30 min): the change instant is the due
    # instant, and the agent answers in that very instant (events of one batch).
    created, raised = at(NEW_YORK, "2026-06-02 08:00"), at(NEW_YORK, "2026-06-02 08:30")
    facts = ticket(created, "medium", ("PriorityChanged", raised, "critical"),
                   ("TicketAcknowledged", raised))
    as_of = at(NEW_YORK, "2026-06-02 09:00")

    first = checked(PP, "enterprise", NEW_YORK, facts, as_of).first_response

    assert (first.status, first.met_at, first.breached_at) == (ClockStatus.MET, raised, None)


def test_an_answer_in_the_same_instant_as_a_change_that_overran_the_target_is_late() -> None:
    created, raised = at(NEW_YORK, "2026-06-02 08:00"), at(NEW_YORK, "2026-06-02 08:45")
    facts = ticket(created, "medium", ("PriorityChanged", raised, "critical"),
                   ("TicketAcknowledged", raised))
    as_of = at(NEW_YORK, "2026-06-02 09:00")

    first = checked(PP, "enterprise", NEW_YORK, facts, as_of).first_response

    assert (first.status, first.met_at, first.breached_at) == (ClockStatus.BREACHED, raised, raised)


def test_a_breach_stays_when_the_priority_is_lowered_again() -> None:
    created, raised = at(NEW_YORK, "2026-06-02 08:00"), at(NEW_YORK, "2026-06-02 09:00")
    lowered = at(NEW_YORK, "2026-06-02 09:30")
    facts = ticket(created, "low", ("PriorityChanged", raised, "critical"),
                   ("PriorityChanged", lowered, "low"))

    result = checked(PP, "enterprise", NEW_YORK, facts, at(NEW_YORK, "2026-06-02 10:00"))

    assert (result.priority, result.calendar) == ("low", "extended")
    assert (result.first_response.status, result.first_response.breached_at) == (
        ClockStatus.BREACHED, raised)
    assert result.first_response.target_minutes == 480


def test_raising_the_priority_while_paused_breaches_at_the_change_and_shows_it_as_due() -> None:
    # Enterprise low, created 08:00 EDT; the agent asks at 12:00 (4 h of resolution time
    # counted, then paused); raised to critical (4 h resolution target) at 13:00.
    created, raised = at(NEW_YORK, "2026-06-02 08:00"), at(NEW_YORK, "2026-06-02 13:00")
    facts = ticket(created, "low", ("UserInputRequested", at(NEW_YORK, "2026-06-02 12:00")),
                   ("PriorityChanged", raised, "critical"))

    as_of = at(NEW_YORK, "2026-06-02 14:00")

    resolution = checked(PP, "enterprise", NEW_YORK, facts, as_of).resolution

    assert (resolution.status, resolution.breached_at) == (ClockStatus.BREACHED, raised)
    assert resolution.due_at == raised  # not the paused low-priority projection (days later)


def test_a_change_to_another_calendar_counts_old_time_on_the_old_and_new_time_on_the_new() -> None:
    # Enterprise high on extended, created Fri 19:50 EDT: 10 min counted by 20:00. Raised to
    # critical (24x7) on Sat 03:00 EDT: the closed night is not counted, then 24x7 counts.
    created, raised = at(NEW_YORK, "2026-06-05 19:50"), at(NEW_YORK, "2026-06-06 03:00")
    facts = ticket(created, "high", ("PriorityChanged", raised, "critical"))

    result = checked(PP, "enterprise", NEW_YORK, facts, at(NEW_YORK, "2026-06-06 03:10"))

    first, resolution = result.first_response, result.resolution
    assert (first.status, first.counted_minutes) == (ClockStatus.RUNNING, 20)
    assert first.due_at == at(NEW_YORK, "2026-06-06 03:20")  # 30 - 10 min after 03:00
    assert resolution.due_at == at(NEW_YORK, "2026-06-06 06:50")  # 240 - 10 min after 03:00


def test_lowering_from_24x7_to_extended_hours_waits_for_the_next_opening() -> None:
    # Enterprise critical on 24x7, Sat 02:00 EDT; lowered to high at 02:20 (20 min counted):
    # 40 min left on extended hours, which open Monday 08:00 EDT.
    created, lowered = at(NEW_YORK, "2026-06-06 02:00"), at(NEW_YORK, "2026-06-06 02:20")
    facts = ticket(created, "critical", ("PriorityChanged", lowered, "high"))

    result = checked(PP, "enterprise", NEW_YORK, facts, at(NEW_YORK, "2026-06-07 12:00"))

    assert result.calendar == "extended"
    assert (result.first_response.status, result.first_response.counted_minutes) == (
        ClockStatus.RUNNING, 20)
    assert result.first_response.due_at == at(NEW_YORK, "2026-06-08 08:40")


def test_a_priority_change_across_the_fall_back_night_matches_the_oracle() -> None:
    created = at(NEW_YORK, "2026-10-30 19:00")  # Friday before New York falls back
    facts = ticket(created, "medium", ("PriorityChanged", at(NEW_YORK, "2026-10-31 23:30"),
                                       "critical"),
                   ("PriorityChanged", at(NEW_YORK, "2026-11-01 03:30"), "low"))

    result = checked(PP, "enterprise", NEW_YORK, facts, at(NEW_YORK, "2026-11-02 09:00"))

    # 1 h Fri (extended); 23:30 -> 03:30 EST on 24x7 is 5 real hours; 1 h Mon (extended).
    assert result.resolution.counted_minutes == 60 + 300 + 60


# --- GrowgrEbuddy: no resolution target --------------------------------------------------------


def test_growgrebuddy_resolution_is_not_applicable_but_its_time_is_still_counted() -> None:
    created = utc("2026-10-24T18:00")  # Saturday; frontline is open every day 08-20
    facts = ticket(created, "high")

    result = checked(GB, "standard", "UTC", facts, utc("2026-10-25T09:00"))

    assert result.resolution.status is ClockStatus.NOT_APPLICABLE
    assert (result.resolution.target_minutes, result.resolution.due_at) == (None, None)
    assert result.resolution.counted_minutes == 180  # 18-20 Sat, 08-09 Sun
    assert result.first_response.status is ClockStatus.RUNNING
    assert result.first_response.due_at == utc("2026-10-25T10:00")


# --- the --explain ledger, by hand ---------------------------------------------------------------


def test_the_explain_ledger_lists_every_interval_and_why_it_counts_or_not() -> None:
    # Standard medium (business 09-17 New York; first response 12 h, resolution 24 h).
    # Created Fri 2026-03-06 16:00 EST (21:00Z); New York springs forward on Sunday.
    # Agent asks Mon 10:00 EDT (14:00Z), customer answers 11:30 EDT (15:30Z);
    # as of Mon 18:00 EDT (22:00Z).
    #   Fri 16:00-17:00 EST  21:00Z-22:00Z   open          60 min
    #   Fri 17:00 -> Mon 09:00 EDT  22:00Z-13:00Z  out of hours (the weekend, 63 h real)
    #   Mon 09:00-10:00 EDT  13:00Z-14:00Z   open          60 min
    #   Mon 10:00-11:30 EDT  14:00Z-15:30Z   paused (first response met at 14:00Z)
    #   Mon 11:30-17:00 EDT  15:30Z-21:00Z   open         330 min
    #   Mon 17:00-18:00 EDT  21:00Z-22:00Z   out of hours
    # Resolution counted 60 + 60 + 330 = 450 min; 990 left = Tue 8 h, Wed 8 h, Thu 09:30 EDT.
    facts = ticket(utc("2026-03-06T21:00"), "medium",
                   ("UserInputRequested", utc("2026-03-09T14:00")),
                   ("UserInputReceived", utc("2026-03-09T15:30")))

    result = sla(PP, "standard", NEW_YORK, facts, utc("2026-03-09T22:00"), explain=True)

    def row(start: str, end: str, reason: str, minutes: float) -> dict[str, Any]:
        return {"from": f"2026-03-{start}:00+00:00", "to": f"2026-03-{end}:00+00:00",
                "counted": reason == "open", "reason": reason, "calendar": "business",
                "minutes": minutes}

    assert result.resolution.as_dict(explain=True) == {
        "status": "running", "target_minutes": 1440, "due_at": "2026-03-12T13:30:00+00:00",
        "met_at": None, "breached_at": None, "counted_minutes": 450.0,
        "ledger": [
            row("06T21:00", "06T22:00", "open", 60.0),
            row("06T22:00", "09T13:00", "out_of_hours", 0.0),
            row("09T13:00", "09T14:00", "open", 60.0),
            row("09T14:00", "09T15:30", "paused", 0.0),
            row("09T15:30", "09T21:00", "open", 330.0),
            row("09T21:00", "09T22:00", "out_of_hours", 0.0),
        ],
    }
    assert result.first_response.as_dict(explain=True)["ledger"] == [
        row("06T21:00", "06T22:00", "open", 60.0),
        row("06T22:00", "09T13:00", "out_of_hours", 0.0),
        row("09T13:00", "09T14:00", "open", 60.0),
        row("09T14:00", "09T22:00", "met", 0.0),
    ]
    assert result.first_response.counted_minutes == 120


def test_the_explain_ledger_shows_holidays_and_the_resolved_stretch() -> None:
    # The business calendar with Monday 2026-06-08 a holiday. Standard high, created
    # Fri 2026-06-05 16:00 EDT (20:00Z); resolved Tue 10:00 EDT (14:00Z); reopened
    # Tue 15:00 EDT (19:00Z); as of Tue 16:00 EDT (20:00Z).
    #   Fri 16:00-17:00        20:00Z-21:00Z   open         60
    #   Fri 17:00 -> Mon 00:00 21:00Z-04:00Z   out of hours
    #   Mon (holiday, all day) 04:00Z-04:00Z   holiday
    #   Tue 00:00-09:00        04:00Z-13:00Z   out of hours
    #   Tue 09:00-10:00        13:00Z-14:00Z   open         60
    #   Tue 10:00-15:00        14:00Z-19:00Z   resolved
    #   Tue 15:00-16:00        19:00Z-20:00Z   open         60   (180 of 480 counted)
    raw, policy = with_holidays(PP, [date(2026, 6, 8)])
    facts = ticket(utc("2026-06-05T20:00"), "high", ("TicketResolved", utc("2026-06-09T14:00")),
                   ("TicketReopened", utc("2026-06-09T19:00")))
    as_of = utc("2026-06-09T20:00")

    result = evaluate(policy, "standard", NEW_YORK, facts, as_of, explain=True)

    assert_matches_oracle(result, oracle.simulate(raw, "standard", NEW_YORK, facts, as_of))
    ledger = [(e.start, e.end, e.counted, e.reason, e.minutes) for e in result.resolution.ledger]
    assert ledger == [
        (utc("2026-06-05T20:00"), utc("2026-06-05T21:00"), True, "open", 60),
        (utc("2026-06-05T21:00"), utc("2026-06-08T04:00"), False, "out_of_hours", 0),
        (utc("2026-06-08T04:00"), utc("2026-06-09T04:00"), False, "holiday", 0),
        (utc("2026-06-09T04:00"), utc("2026-06-09T13:00"), False, "out_of_hours", 0),
        (utc("2026-06-09T13:00"), utc("2026-06-09T14:00"), True, "open", 60),
        (utc("2026-06-09T14:00"), utc("2026-06-09T19:00"), False, "resolved", 0),
        (utc("2026-06-09T19:00"), utc("2026-06-09T20:00"), True, "open", 60),
    ]
    assert result.resolution.counted_minutes == 180


def test_the_ledger_names_the_calendar_in_force_on_each_side_of_a_priority_change() -> None:
    created, raised = at(NEW_YORK, "2026-06-05 19:50"), at(NEW_YORK, "2026-06-06 03:00")
    facts = ticket(created, "high", ("PriorityChanged", raised, "critical"))

    result = sla(PP, "enterprise", NEW_YORK, facts, at(NEW_YORK, "2026-06-06 03:10"), explain=True)

    ledger = [(e.start, e.end, e.reason, e.calendar, e.minutes) for e in result.resolution.ledger]
    assert ledger == [
        (utc("2026-06-05T23:50"), utc("2026-06-06T00:00"), "open", "extended", 10),
        (utc("2026-06-06T00:00"), utc("2026-06-06T07:00"), "out_of_hours", "extended", 0),
        (utc("2026-06-06T07:00"), utc("2026-06-06T07:10"), "open", "always", 10),
    ]


# --- properties over random tickets ------------------------------------------------------------

NEXT_STATE = {
    "TicketAcknowledged": "acknowledged", "WorkStarted": "in_progress",
    "UserInputRequested": "pending_user_input", "UserInputReceived": "in_progress",
    "TicketResolved": "resolved", "TicketReopened": "in_progress",
}
ALLOWED = {  # SPEC §3, the commands that matter to the clocks
    "created": ["TicketAcknowledged", "TicketResolved", "PriorityChanged"],
    "acknowledged": ["WorkStarted", "UserInputRequested", "TicketResolved", "PriorityChanged"],
    "in_progress": ["UserInputRequested", "TicketResolved", "PriorityChanged", "SlaBreached"],
    "pending_user_input": ["UserInputReceived", "TicketResolved", "PriorityChanged"],
    "resolved": ["TicketReopened"],
}


@dataclass(frozen=True)
class Story:
    policy_id: str
    plan: str
    tz: str
    facts: list[Fact]
    as_of: datetime

    @property
    def created(self) -> datetime:
        return self.facts[0].at

    def evaluate(self, as_of: datetime | None = None, *, explain: bool = False) -> SlaResult:
        return sla(self.policy_id, self.plan, self.tz, self.facts, as_of or self.as_of,
                   explain=explain)


@st.composite
def stories(draw: st.DrawFn, max_events: int = 6) -> Story:
    policy_id = draw(st.sampled_from([PP, GB, PP_HOLIDAYS]))
    raw = RAW[policy_id]
    plan = draw(st.sampled_from(sorted(raw["plans"])))
    tz = draw(st.sampled_from(ZONES))
    created = draw(instants())
    facts = facts_from_event("TicketCreated", created, {"priority": draw(st.sampled_from(
        raw["priorities"]))})
    state, instant = "created", created
    for _ in range(draw(st.integers(0, max_events))):
        event = draw(st.sampled_from(ALLOWED[state]))
        instant += timedelta(seconds=draw(offsets(0, 30 * HOUR)))
        data = {"priority": draw(st.sampled_from(raw["priorities"])), "clock": draw(
            st.sampled_from(CLOCKS))}
        facts += facts_from_event(event, instant, data)
        state = NEXT_STATE.get(event, state)
    span = int((instant - created).total_seconds()) + DAY
    as_of = created + timedelta(seconds=draw(offsets(0, span)))
    return Story(policy_id, plan, tz, facts, as_of)


@settings(max_examples=100, deadline=None)
@given(story=stories())
def test_evaluate_agrees_with_the_oracle_on_random_tickets(story: Story) -> None:
    expected = oracle.simulate(RAW[story.policy_id], story.plan, story.tz, story.facts,
                               story.as_of)

    assert_matches_oracle(story.evaluate(), expected)


@settings(max_examples=60, deadline=None)
@given(story=stories(), cuts=st.lists(st.floats(0, 1), min_size=2, max_size=6))
def test_counted_time_never_exceeds_wall_time_and_never_decreases(
    story: Story, cuts: list[float]
) -> None:
    wall = (story.as_of - story.created).total_seconds()
    as_ofs = sorted(story.created + timedelta(seconds=round(c * wall)) for c in cuts)
    previous = dict.fromkeys(CLOCKS, 0.0)

    for as_of in as_ofs:
        result = story.evaluate(as_of)
        for name in CLOCKS:
            counted = result.clock(name).counted_seconds
            assert 0 <= counted <= (as_of - story.created).total_seconds()
            assert counted >= previous[name]
            previous[name] = counted


@settings(max_examples=40, deadline=None)
@given(story=stories(), zone=st.sampled_from(ZONES))
def test_evaluate_is_deterministic(story: Story, zone: str) -> None:
    policy = POLICIES[story.policy_id]
    # The same facts once more, as a one-shot iterator and written in another zone.
    elsewhere = (replace(f, at=f.at.astimezone(ZoneInfo(zone))) for f in story.facts)

    first, again = story.evaluate(), story.evaluate()
    replayed = evaluate(policy, story.plan, story.tz, elsewhere, story.as_of)

    assert first == again == replayed
    assert story.evaluate(explain=True) == story.evaluate(explain=True)


@settings(max_examples=60, deadline=None)
@given(story=stories())
def test_the_explain_ledger_runs_from_creation_to_as_of_and_sums_to_the_counted_time(
    story: Story
) -> None:
    plain, explained = story.evaluate(), story.evaluate(explain=True)

    for name in CLOCKS:
        clock = explained.clock(name)
        ledger = clock.ledger
        assert clock.as_dict() == plain.clock(name).as_dict()  # explaining changes no figure
        if story.as_of == story.created:
            assert ledger == ()
            continue
        assert ledger[0].start == story.created and ledger[-1].end == story.as_of
        assert all(a.end == b.start for a, b in pairwise(ledger))
        assert all(e.start < e.end for e in ledger)
        for entry in ledger:
            span = (entry.end - entry.start).total_seconds() / 60
            assert entry.minutes == pytest.approx(span if entry.counted else 0, abs=1e-6)
            assert entry.counted == (entry.reason == "open")
        total = sum(e.minutes for e in ledger)
        assert total == pytest.approx(clock.counted_seconds / 60, abs=1e-6)
        assert round(total, 2) == pytest.approx(clock.counted_minutes, abs=0.011)


def test_facts_written_in_a_repeated_autumn_hour_give_the_same_result() -> None:
    # 2026-10-25 01:00Z is 02:00 CET (fold=1) in Berlin, an hour that occurs twice; such
    # an instant never compares equal to one in another zone (PEP 495).
    policy = POLICIES["personalysispro"]
    at = datetime(2026, 10, 25, 1, tzinfo=UTC)
    facts = [Fact(at, "created", "critical"), Fact(at, "respond")]
    berlin = [replace(f, at=f.at.astimezone(ZoneInfo("Europe/Berlin"))) for f in facts]
    assert berlin[0].at.fold == 1
    in_utc = evaluate(policy, "enterprise", "America/New_York", facts, at)
    assert evaluate(policy, "enterprise", "America/New_York", berlin, at) == in_utc
