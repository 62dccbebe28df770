"""Every row of the SPEC §3 table: allowed from its states, refused from the others,
refused for the roles it does not name, and a refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.builders import PATH_TO, ROLE_OF, Story
from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.errors import Forbidden, InvalidTransition, Rejected
from ticketflow.domain.lifecycle import Role, Status

EXPECTED_EVENT = {
    "acknowledge": "TicketAcknowledged", "start_work": "WorkStarted",
    "request_user_input": "UserInputRequested", "receive_user_input": "UserInputReceived",
    "resolve": "TicketResolved", "reopen": "TicketReopened", "close": "TicketClosed",
    "escalate": "TicketEscalated", "change_priority": "PriorityChanged",
    "assign": "TicketAssigned", "add_comment": "CommentAdded", "link_article": "ArticleLinked",
    "record_satisfaction": "SatisfactionRecorded", "consent_to_publish": "PublicationConsented",
    "publish_as_article": "PublishedAsArticle", "record_sla_breach": "SlaBreached",
}

# SPEC §3, written out literally (independent of domain.commands.COMMANDS).
OPEN = {"created", "acknowledged", "in_progress", "pending_user_input"}
ALLOWED_FROM = {
    "acknowledge": {"created"}, "start_work": {"acknowledged"},
    "request_user_input": {"acknowledged", "in_progress"},
    "receive_user_input": {"pending_user_input"}, "resolve": OPEN, "reopen": {"resolved"},
    "close": {"resolved"}, "escalate": OPEN, "change_priority": OPEN, "assign": OPEN,
    "add_comment": OPEN | {"resolved"}, "link_article": OPEN | {"resolved", "closed"},
    "record_satisfaction": {"resolved", "closed"}, "consent_to_publish": {"resolved", "closed"},
    "publish_as_article": {"resolved", "closed"}, "record_sla_breach": OPEN,
}
RESULT = {
    "acknowledge": "acknowledged", "start_work": "in_progress",
    "request_user_input": "pending_user_input", "receive_user_input": "in_progress",
    "resolve": "resolved", "reopen": "in_progress", "close": "closed",
}
WHO_MAY = {
    "acknowledge": {"agent"}, "start_work": {"agent"}, "request_user_input": {"agent"},
    "receive_user_input": {"customer"}, "resolve": {"agent"}, "reopen": {"customer", "agent"},
    "close": {"customer", "agent", "system"}, "escalate": {"agent", "manager", "system"},
    "change_priority": {"agent", "manager"}, "assign": {"agent", "manager", "system"},
    "add_comment": {"customer", "agent"}, "link_article": {"agent"},
    "record_satisfaction": {"customer"}, "consent_to_publish": {"customer"},
    "publish_as_article": {"agent"}, "record_sla_breach": {"system"},
}
LATE = timedelta(days=30)  # late enough for any SLA clock to have breached


def test_the_table_covers_every_command_of_the_spec() -> None:
    on_a_ticket = {name for name, command in COMMANDS.items() if not command.creates}
    assert on_a_ticket == set(ALLOWED_FROM) == set(WHO_MAY)


def _prepared(command: str, state: str) -> Story:
    if command == "record_sla_breach" and state == "pending_user_input":
        # the clocks pause while pending: breach first, then ask the customer
        return Story().do("acknowledge").do("request_user_input", after=LATE)
    story = Story().to(state)
    if command == "publish_as_article" and state in {"resolved"}:
        story.do("consent_to_publish")
    if command == "publish_as_article" and state == "closed":
        story = Story().to("resolved").do("consent_to_publish").do("close")
    return story


@pytest.mark.parametrize("state", list(PATH_TO))
@pytest.mark.parametrize("command", sorted(ALLOWED_FROM))
def test_each_command_is_allowed_exactly_from_its_states(command: str, state: str) -> None:
    story = _prepared(command, state)
    before = (story.ticket.state(), story.ticket.version, len(story.ticket.pending_events))
    if state in ALLOWED_FROM[command]:
        story.do(command, after=LATE)
        assert story.event_types[before[2]] == EXPECTED_EVENT[command]
        assert story.ticket.status == RESULT.get(command, state)
    else:
        with pytest.raises(InvalidTransition) as refused:
            story.do(command, after=LATE)
        assert refused.value.code == "invalid_transition"
        after = (story.ticket.state(), story.ticket.version, len(story.ticket.pending_events))
        assert after == before


@pytest.mark.parametrize("command", sorted(WHO_MAY))
def test_roles_the_table_does_not_name_are_forbidden(command: str) -> None:
    allowed_state = sorted(ALLOWED_FROM[command])[0]
    for role in Role:
        story = _prepared(command, allowed_state)
        version = story.ticket.version
        if role.value in WHO_MAY[command]:
            continue
        with pytest.raises(Forbidden) as refused:
            story.do(command, role=role, after=LATE)
        assert refused.value.code == "forbidden"
        assert story.ticket.version == version


def test_closed_is_terminal_for_every_state_changing_command() -> None:
    for command in ("reopen", "resolve", "acknowledge", "escalate", "add_comment"):
        story = Story().to("closed")
        with pytest.raises(Rejected):
            story.do(command, role=ROLE_OF[command])
        assert story.ticket.status == Status.CLOSED


def test_transition_events_carry_from_and_to() -> None:
    story = Story().do("acknowledge").do("start_work")
    data = story.ticket.pending_events[-1].data  # type: ignore[attr-defined]
    assert (data["from"], data["to"]) == ("acknowledged", "in_progress")
