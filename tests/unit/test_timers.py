"""Given a ticket, which time-driven commands fall due, and when (worked by hand)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.bad_input import in_memory_app
from tests.support.builders import POLICIES, PP, T0, Story, command_line, create_payload
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.policy import policy_from_data
from ticketflow.domain.sla import SlaError
from ticketflow.domain.timers import due_commands
from ticketflow.schemas.fields import STREAM_ID_MAX
from ticketflow.timers import Timers


def dues(story: Story) -> list[tuple[str, datetime]]:
    return [(d.rule, d.at) for d in due_commands(story.ticket, story.policy)]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_both_clocks_of_a_new_ticket_are_due_to_breach() -> None:
    # professional/high on `extended` (08-20 New York); created Mon 09:00 (14:00Z):
    # first response 3 h → 12:00 (17:00Z); resolution 8 h → 17:00 (22:00Z)
    assert dues(Story()) == [("breach:first_response", utc(2026, 11, 16, 17)),
                             ("breach:resolution", utc(2026, 11, 16, 22))]


def test_a_met_clock_and_a_paused_clock_fall_due_for_nothing() -> None:
    story = Story().do("acknowledge").do("request_user_input")
    assert dues(story) == []


def test_answering_moves_the_resolution_due_by_the_paused_time() -> None:
    story = Story().do("acknowledge", after=timedelta(0))
    story.do("request_user_input", after=timedelta(hours=1))  # 10:00, 1 h counted
    story.do("receive_user_input", after=timedelta(hours=2))  # 12:00, paused 2 h
    assert dues(story) == [("breach:resolution", utc(2026, 11, 17, 0))]  # 19:00 New York


def test_a_resolved_ticket_is_due_to_auto_close_seven_days_later() -> None:
    story = Story().do("resolve")
    assert dues(story) == [("auto_close", story.at + timedelta(days=7))]
    assert due_commands(story.ticket, PP)[0].payload == {"reason": "auto_closed"}


def test_a_recorded_breach_is_not_due_again() -> None:
    story = Story().do("record_sla_breach", clock="first_response", due_at=T0,
                       after=timedelta(hours=3))
    assert [rule for rule, _ in dues(story)] == ["breach:resolution"]


def test_growgrebuddy_escalates_to_tier2_after_one_frontline_hour_across_the_night() -> None:
    # high on `frontline` (every day 08-20 UTC); created Sat 19:30: 30 min on Saturday,
    # 30 min on Sunday from 08:00 → Sun 08:30
    story = Story("growgrebuddy", at=utc(2026, 11, 21, 19, 30), priority="high")
    assert ("escalate:tier2", utc(2026, 11, 22, 8, 30)) in dues(story)


def test_growgrebuddy_escalates_to_tier3_one_business_day_after_reaching_tier2() -> None:
    story = Story("growgrebuddy", at=utc(2026, 11, 20, 15, 30), priority="high")  # Friday
    story.do("escalate", level="tier2", after=timedelta(minutes=30))
    # 8 h on `business` (Mon-Fri 09-17 UTC) from Fri 16:00: 1 h Friday, 7 h Monday
    assert ("escalate:tier3", utc(2026, 11, 23, 16)) in dues(story)
    assert not [rule for rule, _ in dues(story) if rule == "escalate:tier2"]


def test_a_critical_growgrebuddy_ticket_is_due_for_tier3_at_creation() -> None:
    story = Story("growgrebuddy", priority="critical")
    assert ("escalate:tier3", T0) in dues(story)


def test_a_ticket_raised_to_critical_is_due_for_tier3_at_the_change() -> None:
    story = Story("growgrebuddy", priority="low").do("change_priority", priority="critical",
                                                      after=timedelta(minutes=5))
    assert ("escalate:tier3", T0 + timedelta(minutes=5)) in dues(story)


def test_first_response_due_crosses_a_weekend_and_the_end_of_summer_time() -> None:
    # medium: 8 h on `business` in Europe/Berlin. Created Fri 2026-10-23 16:00 CEST
    # (14:00Z): 1 h Friday, then Mon 26th 09:00-16:00 CET (UTC+1 after the change on
    # Sunday 25th) → Mon 16:00 CET = 15:00Z
    story = Story("growgrebuddy", at=utc(2026, 10, 23, 14), priority="medium",
                  timezone="Europe/Berlin")
    assert ("breach:first_response", utc(2026, 10, 26, 15)) in dues(story)


def test_system_escalation_may_skip_a_level_for_a_non_critical_ticket() -> None:
    story = Story().do("record_sla_breach", clock="resolution", due_at=T0,
                       after=timedelta(days=2), role=Role.SYSTEM)
    assert story.ticket.level == "management"


# --- a stored policy version the evaluator cannot serve (issue 13.6) ----------------------


def stored_version(policy_id: str, calendar: str) -> dict[str, Any]:
    """A shipped policy as an older version kept in the event store, its `calendar` open
    one minute a week (no longer accepted from a file with the targets set below)."""
    document = POLICIES[policy_id].model_dump(mode="json") | {"version": "0.9.0"}
    document["calendars"][calendar] = {"hours": {"sat": ["10:00-10:01"]}, "holidays": []}
    return document


def test_clocks_a_stored_version_cannot_serve_are_an_sla_error_naming_it() -> None:
    document = stored_version("personalysispro", "extended")
    document["resolution"]["high"] = 366 * 1440
    old = policy_from_data(document, "stored", stored=True)

    with pytest.raises(SlaError, match=re.escape(
            "policy personalysispro 0.9.0 cannot evaluate the SLA clocks of plan"
            " 'professional' in America/New_York: calendar 'extended' has less than 527040"
            " open minutes in the 36524 days")):
        due_commands(Story().ticket, old)


def test_an_escalation_a_stored_version_cannot_time_is_an_sla_error_naming_the_ticket() -> None:
    document = stored_version("growgrebuddy", "business")
    document["escalation"]["automatic"][2]["after"] = 366 * 1440  # tier3 after tier2
    old = policy_from_data(document, "stored", stored=True)
    story = Story("growgrebuddy", ticket_id="G-7", priority="high")
    story.do("escalate", level="tier2", reason="stuck")

    with pytest.raises(SlaError, match="cannot evaluate the time-driven commands of ticket G-7"):
        due_commands(story.ticket, old)


@pytest.mark.parametrize("tenant", ["personalysispro", "growgrebuddy"])
def test_the_longest_ticket_id_leaves_room_for_its_timers_message_ids(tenant: str) -> None:
    app = in_memory_app()
    at = T0 + timedelta(microseconds=123_456)  # the longest instant in a timer's id
    create = command_line("m-1", "create_ticket", "T" * STREAM_ID_MAX, at, "customer",
                          create_payload(tenant, priority="high"), tenant=tenant)
    assert app.apply(create).status == "accepted"
    fired = Timers(app).fire_until(T0 + timedelta(days=30))
    assert len(fired) >= 2 and {o.status for o in fired} == {"accepted"}


def test_a_ticket_whose_timer_command_cannot_be_sent_does_not_stop_the_others() -> None:
    # a ticket stored before ids were checked as they are now (a zero-width space)
    app = in_memory_app()
    legacy = Story(ticket_id="T-\u200b1").ticket
    app.save(legacy)
    create = command_line("m-1", "create_ticket", "T-2", T0, "customer", create_payload())
    assert app.apply(create).status == "accepted"
    fired = Timers(app).fire_until(T0 + timedelta(days=1))
    refused = [o for o in fired if o.ticket_id == "T-\u200b1"]
    assert [o.error["code"] for o in refused if o.error] == ["invalid_message"]
    assert {o.status for o in fired if o.ticket_id == "T-2"} == {"accepted"}
