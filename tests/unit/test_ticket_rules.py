"""Given a ticket, when a command breaks a policy or isolation rule, then it is
rejected with its stable code and nothing changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.builders import GB, PP, T0, Story, created, ctx
from ticketflow.domain.commands import ACKNOWLEDGE, FreeText
from ticketflow.domain.errors import Rejected
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.ticket import Ticket

WEEK = timedelta(days=7)


def rejected(story: Story, command: str, code: str, **kwargs: Any) -> str:
    before = (story.ticket.state(), story.ticket.version, len(story.ticket.pending_events))
    with pytest.raises(Rejected) as refused:
        story.do(command, **kwargs)
    assert refused.value.code == code, refused.value.message
    assert (story.ticket.state(), story.ticket.version, len(story.ticket.pending_events)) == before
    return refused.value.message


def create_rejected(tenant: str, code: str, **payload: Any) -> str:
    policy = PP if tenant == "personalysispro" else GB
    with pytest.raises(Rejected) as refused:
        Ticket.create(ctx(T0, Role.CUSTOMER, tenant), policy, "T-9",
                      created(tenant, **payload))
    assert refused.value.code == code, refused.value.message
    return refused.value.message


# -- creation against the policy ------------------------------------------------------


def test_create_is_rejected_on_a_channel_the_plan_lacks() -> None:
    message = create_rejected("personalysispro", "policy_violation", plan="standard",
                              channel="phone")
    assert "standard" in message and "phone" in message


@pytest.mark.parametrize("field, value", [
    ("plan", "platinum"), ("channel", "fax"), ("category", "hardware"),
    ("subcategory", "billing_typo"), ("priority", "urgent"),
])
def test_create_is_rejected_for_values_outside_the_policy(field: str, value: str) -> None:
    assert value in create_rejected("personalysispro", "policy_violation", **{field: value})


def test_personalysispro_needs_a_subcategory_and_the_account_time_zone() -> None:
    create_rejected("personalysispro", "policy_violation", subcategory=None)
    create_rejected("personalysispro", "policy_violation", timezone=None)


def test_an_unknown_time_zone_is_an_invalid_message() -> None:
    create_rejected("personalysispro", "invalid_message", timezone="Mars/Olympus_Mons")


def test_a_folder_of_the_zone_database_is_an_invalid_message_not_a_crash() -> None:
    create_rejected("personalysispro", "invalid_message", timezone="America")


def test_growgrebuddy_categories_have_no_subcategories() -> None:
    create_rejected("growgrebuddy", "policy_violation", subcategory="login")


def test_growgrebuddy_social_needs_a_known_platform_and_only_social_takes_one() -> None:
    create_rejected("growgrebuddy", "policy_violation", channel="social")
    create_rejected("growgrebuddy", "policy_violation", channel="social", platform="myspace")
    create_rejected("growgrebuddy", "policy_violation", channel="email", platform="twitter")
    ticket = Ticket.create(ctx(T0, Role.CUSTOMER, "growgrebuddy"), GB, "T-9",
                           created("growgrebuddy", channel="social", platform="twitter"))
    assert ticket.pending_events[0].data["platform"] == "twitter"  # type: ignore[attr-defined]


def test_creation_records_the_policy_identity_timezone_calendar_and_level() -> None:
    grow = Story("growgrebuddy", priority="high").ticket
    data = grow.pending_events[0].data  # type: ignore[attr-defined]
    assert data["policy"] == {"id": "growgrebuddy", "version": GB.version,
                              "hash": GB.content_hash}
    assert (data["timezone"], data["calendar"], data["level"]) == ("UTC", "frontline", "tier1")
    pro = Story(plan="enterprise", priority="critical").ticket
    assert pro.pending_events[0].data["calendar"] == "always"  # type: ignore[attr-defined]
    assert pro.level is None


# -- isolation and time order ----------------------------------------------------------


def test_an_actor_of_another_tenant_is_forbidden() -> None:
    story = Story()
    before = story.ticket.version
    with pytest.raises(Rejected) as refused:
        story.ticket.handle(ACKNOWLEDGE, ctx(T0 + WEEK, Role.AGENT, "growgrebuddy"), PP,
                            FreeText())
    assert refused.value.code == "forbidden"
    assert story.ticket.version == before


def test_a_command_older_than_the_last_event_is_an_invalid_message() -> None:
    story = Story().do("acknowledge", after=timedelta(hours=2))
    rejected(story, "start_work", "invalid_message", after=timedelta(hours=-1))


def test_a_command_at_the_same_instant_as_the_last_event_is_accepted() -> None:
    story = Story().do("acknowledge").do("start_work", after=timedelta(0))
    assert story.ticket.status == "in_progress"


# -- escalation ------------------------------------------------------------------------


def test_escalation_levels_only_rise() -> None:
    story = Story().do("escalate").do("escalate", level="second_level", role=Role.MANAGER)
    assert "only rise" in rejected(story, "escalate", "policy_violation", level="first_level")
    assert "only rise" in rejected(story, "escalate", "policy_violation", level="second_level")


def test_only_critical_tickets_may_skip_a_level() -> None:
    assert "first_level" in rejected(Story(), "escalate", "policy_violation",
                                     level="second_level")
    critical = Story(priority="critical").do("escalate", level="management")
    assert critical.ticket.level == "management"


def test_escalating_to_an_unknown_level_is_a_policy_violation() -> None:
    rejected(Story(), "escalate", "policy_violation", level="tier2")


def test_growgrebuddy_tickets_start_at_tier1_and_climb_one_tier_at_a_time() -> None:
    story = Story("growgrebuddy").do("escalate", level="tier2")
    assert story.ticket.level == "tier2"
    assert story.event_types[-1] == "TicketEscalated"


def test_assigning_to_a_tier_other_than_the_current_level_is_refused() -> None:
    story = Story("growgrebuddy")
    rejected(story, "assign", "policy_violation", agent_id="a-2", tier="tier2")
    story.do("assign", agent_id="a-2", tier="tier1")
    assert story.ticket.assignee == "a-2"


# -- priority --------------------------------------------------------------------------


def test_changing_to_the_same_or_an_unknown_priority_is_refused() -> None:
    rejected(Story(), "change_priority", "policy_violation", priority="high")
    rejected(Story(), "change_priority", "policy_violation", priority="urgent")


def test_a_priority_change_records_the_new_calendar() -> None:
    story = Story(plan="enterprise", priority="high").do("change_priority", priority="critical")
    assert story.ticket.pending_events[-1].data["calendar"] == "always"  # type: ignore[attr-defined]
    assert story.ticket.priority == "critical"


# -- comments, satisfaction, publication -------------------------------------------------


def test_a_customer_may_not_add_an_internal_comment() -> None:
    rejected(Story(), "add_comment", "forbidden", visibility="internal")
    story = Story().do("add_comment", role=Role.AGENT, visibility="internal")
    assert story.event_types[-1] == "CommentAdded"


def test_satisfaction_is_recorded_once_per_resolution() -> None:
    story = Story().do("resolve").do("record_satisfaction")
    rejected(story, "record_satisfaction", "policy_violation")
    story.do("reopen").do("resolve").do("record_satisfaction", score=2)
    assert story.event_types.count("SatisfactionRecorded") == 2


def test_publishing_needs_the_customers_consent_first() -> None:
    story = Story().do("resolve")
    assert "consent" in rejected(story, "publish_as_article", "policy_violation")
    story.do("consent_to_publish").do("publish_as_article")
    assert story.event_types[-1] == "PublishedAsArticle"
    rejected(story, "consent_to_publish", "policy_violation")


# -- closing ---------------------------------------------------------------------------


def test_auto_close_is_the_systems_and_only_after_seven_days_resolved() -> None:
    story = Story().do("resolve")
    rejected(story, "close", "forbidden", reason="auto_closed", role=Role.AGENT)
    rejected(story, "close", "policy_violation", reason="auto_closed", role=Role.SYSTEM,
             after=WEEK - timedelta(seconds=1) - timedelta(minutes=1))
    story = Story().do("resolve").do("close", reason="auto_closed", role=Role.SYSTEM, after=WEEK)
    assert story.ticket.status == "closed"
    assert story.ticket.pending_events[-1].data["reason"] == "auto_closed"  # type: ignore[attr-defined]


def test_close_defaults_to_confirmed() -> None:
    story = Story().do("resolve").do("close", reason=None)
    assert story.ticket.pending_events[-1].data["reason"] == "confirmed"  # type: ignore[attr-defined]


# -- SLA breaches ----------------------------------------------------------------------


def test_a_breach_cannot_be_recorded_before_the_clock_is_due() -> None:
    story = Story()  # professional/high: first response due 3 h into extended hours
    assert "not breached" in rejected(story, "record_sla_breach", "policy_violation",
                                      clock="first_response", due_at=T0)


def test_a_breach_is_recorded_once_per_clock() -> None:
    story = Story().do("record_sla_breach", clock="first_response", due_at=T0,
                       after=timedelta(hours=4))
    rejected(story, "record_sla_breach", "already_exists", clock="first_response", due_at=T0)


def test_a_personalysispro_resolution_breach_escalates_to_management() -> None:
    story = Story().do("record_sla_breach", clock="resolution", due_at=T0, after=timedelta(days=3))
    assert story.event_types[-2:] == ["SlaBreached", "TicketEscalated"]
    assert story.ticket.level == "management"


def test_growgrebuddy_has_no_resolution_clock_to_breach() -> None:
    rejected(Story("growgrebuddy"), "record_sla_breach", "policy_violation", clock="resolution",
             due_at=T0, after=timedelta(days=30))


# -- upcasting -------------------------------------------------------------------------


def test_a_v1_comment_is_upcast_to_visibility() -> None:
    state = {"data": {"body": "hi", "public": False}}
    Ticket.CommentAdded.upcast_v1_v2(state)
    assert state["data"] == {"body": "hi", "visibility": "internal"}
