"""One reducer folds a ticket's state for the aggregate (datetimes) and the read model
(the envelope's text): given the same events, both hold the same state."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

from tests.support.builders import T0, Story
from ticketflow.domain.chain import utc_iso
from ticketflow.domain.ticket_state import TicketState, changes, evolve
from ticketflow.projections.tickets import project_ticket

SHARED = ("status", "plan", "priority", "timezone", "level", "assignee", "created_at",
          "resolved_at", "closed_at", "sla_facts")
GUARDS = ("level_reached_at", "resolutions", "rated_resolution", "consented")


def a_long_story() -> Story:
    return (Story(plan="enterprise", priority="high").do("acknowledge").do("escalate")
            .do("assign", agent_id="a-9").do("request_user_input").do("receive_user_input")
            .do("change_priority", priority="critical").do("add_comment").do("resolve")
            .do("record_satisfaction").do("consent_to_publish").do("reopen").do("resolve")
            .do("close"))


def envelopes(story: Story) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(e.envelope()))  # as it arrives from the log or Kafka
            for e in story.ticket.pending_events]  # type: ignore[attr-defined]


def as_text(value: Any) -> Any:
    """An aggregate's value with its instants as the envelope writes them."""
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    return utc_iso(value) if hasattr(value, "astimezone") else value


def folded(story: Story) -> TicketState[str]:
    state: TicketState[str] | None = None
    for envelope in envelopes(story):
        state = evolve(state, envelope["type"], envelope["occurred_at"], envelope["data"])
    assert state is not None
    return state


def test_the_aggregate_holds_the_state_the_reducer_folds_from_the_envelopes() -> None:
    story = a_long_story()
    state = folded(story)
    ticket = vars(story.ticket)
    assert {name: as_text(ticket[name]) for name in SHARED + GUARDS} == {
        name: state[name] for name in SHARED + GUARDS}
    assert (state["resolutions"], state["rated_resolution"], state["consented"]) == (2, 1, True)
    assert "first_response_at" not in ticket  # snapshots keep the attributes they always had


def test_the_ticket_row_holds_the_same_state_and_the_first_response() -> None:
    story = a_long_story()
    state = folded(story)
    row = None
    for envelope in envelopes(story):
        row = project_ticket(row, envelope)
    assert row is not None
    assert {name: row[name] for name in SHARED} == {name: state[name] for name in SHARED}
    assert row["first_response_at"] == state["first_response_at"] == utc_iso(
        T0 + timedelta(minutes=1))
    assert not set(GUARDS) & set(row)


def test_evolve_leaves_the_state_it_is_given_as_it_was() -> None:
    story = a_long_story()
    history = envelopes(story)
    state: TicketState[str] | None = None
    for envelope in history:
        before = copy.deepcopy(state)
        after = evolve(state, envelope["type"], envelope["occurred_at"], envelope["data"])
        assert state == before
        state = after


def test_a_field_the_state_does_not_hold_is_not_folded() -> None:
    resolved = {"to": "resolved", "from": "created", "resolution": "done"}
    at = utc_iso(T0)
    held: TicketState[str] = {"status": "created", "sla_facts": []}
    assert set(changes(held, "TicketResolved", at, resolved)) == {
        "status", "sla_facts", "resolved_at"}
    held = {**held, "resolutions": 0, "first_response_at": None}
    assert changes(held, "TicketResolved", at, resolved) == {
        "status": "resolved", "resolved_at": at, "resolutions": 1, "first_response_at": at,
        "sla_facts": [{"at": at, "kind": "respond", "value": None},
                      {"at": at, "kind": "resolve", "value": None}]}
