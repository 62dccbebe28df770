"""Invariants under random command sequences (hypothesis).

- the ticket never reaches a state outside the lifecycle table, and a closed ticket
  never changes state;
- a rejected command changes nothing;
- replaying the emitted events rebuilds the same aggregate and the same SLA result;
- every envelope validates against the wire schema and the hash chain holds;
- counted SLA time never exceeds elapsed wall time.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.builders import PAYLOAD_OF, POLICIES, Story
from tests.support.spec import RESULT, STATES
from ticketflow.domain.chain import find_break
from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.errors import Rejected
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.ticket import Ticket
from ticketflow.schemas.events import validate_envelope

step = st.tuples(
    st.sampled_from(sorted(name for name, command in COMMANDS.items()
                           if not command.creates and command.stream == "ticket")),
    st.sampled_from(list(Role)),
    st.integers(min_value=0, max_value=4 * 24 * 60),  # minutes after the previous command
    st.integers(min_value=0, max_value=3),  # picks a level / priority
)
ticket_kind = st.sampled_from([
    ("personalysispro", {"plan": "standard", "channel": "email", "priority": "critical"}),
    ("personalysispro", {"plan": "professional", "priority": "low"}),
    ("personalysispro", {"plan": "enterprise", "priority": "high",
                         "timezone": "Europe/Berlin"}),
    ("growgrebuddy", {"priority": "medium"}),
    ("growgrebuddy", {"priority": "critical", "channel": "social", "platform": "instagram"}),
])


def _payload(command: str, tenant: str, pick: int, story: Story) -> dict[str, Any]:
    policy = POLICIES[tenant]
    payload = dict(PAYLOAD_OF[command])
    if command == "escalate":
        payload["level"] = policy.escalation.levels[pick % len(policy.escalation.levels)]
    if command == "change_priority":
        payload["priority"] = policy.priorities[pick]
    if command == "close" and pick == 3:
        payload["reason"] = "auto_closed"
    if command == "record_sla_breach":
        payload["clock"] = "first_response" if pick % 2 else "resolution"
        payload["due_at"] = story.at
    return payload


def _snapshot(ticket: Ticket) -> tuple[Any, ...]:
    return ticket.state(), ticket.version, len(ticket.pending_events), list(ticket.sla_facts)


def _replayed(ticket: Ticket) -> Ticket:
    aggregate: Any = None
    for event in ticket.pending_events:
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    return aggregate  # type: ignore[no-any-return]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=ticket_kind, steps=st.lists(step, max_size=25))
def test_random_command_sequences_keep_every_invariant(
    kind: tuple[str, dict[str, Any]], steps: list[tuple[str, Role, int, int]]
) -> None:
    tenant, overrides = kind
    story = Story(tenant, **overrides)
    for command, role, minutes, pick in steps:
        before = _snapshot(story.ticket)
        was_closed = story.ticket.status == "closed"
        try:
            story.do(command, role=role, after=timedelta(minutes=minutes),
                     **_payload(command, tenant, pick, story))
        except Rejected as rejection:
            assert rejection.code in {"invalid_transition", "forbidden", "policy_violation",
                                      "already_exists", "invalid_message"}
            assert _snapshot(story.ticket) == before
            continue
        assert not was_closed or story.ticket.status == "closed"
        if command in RESULT:
            assert story.ticket.status == RESULT[command]
        assert story.ticket.status in STATES

    ticket = story.ticket
    envelopes = [e.envelope() for e in ticket.pending_events]  # type: ignore[attr-defined]
    assert find_break(envelopes) is None
    for envelope in envelopes:
        validate_envelope(json.loads(json.dumps(envelope)))

    replayed = _replayed(ticket)
    assert replayed.state() == ticket.state()
    assert replayed.sla_facts == ticket.sla_facts

    policy = POLICIES[tenant]
    as_of = story.at + timedelta(days=2)
    live, again = ticket.sla(policy, as_of), replayed.sla(policy, as_of)
    assert live == again
    elapsed = (as_of - ticket.created_at).total_seconds()
    for clock in (live.first_response, live.resolution):
        assert 0 <= clock.counted_seconds <= elapsed
