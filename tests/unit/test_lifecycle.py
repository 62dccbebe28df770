"""Every row of the SPEC §3 table (tests/support/spec.py): allowed from its states,
refused from the others, refused for the roles it does not name, and a refusal changes
nothing."""

from __future__ import annotations

import pytest

from tests.support.builders import LATE, PATH_TO, ROLE_OF, Story, prepared
from tests.support.spec import ALLOWED_FROM, EXPECTED_EVENT, RESULT, WHO_MAY
from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.errors import Forbidden, InvalidTransition, Rejected
from ticketflow.domain.lifecycle import Role, Status


def test_the_table_covers_every_command_of_the_spec() -> None:
    on_a_ticket = {name for name, command in COMMANDS.items()
                   if not command.creates and command.stream == "ticket"}
    assert on_a_ticket == set(ALLOWED_FROM) == set(WHO_MAY)


@pytest.mark.parametrize("state", list(PATH_TO))
@pytest.mark.parametrize("command", sorted(ALLOWED_FROM))
def test_each_command_is_allowed_exactly_from_its_states(command: str, state: str) -> None:
    story = prepared(command, state)
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
        story = prepared(command, allowed_state)
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
