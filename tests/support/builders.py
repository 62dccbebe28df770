"""Test data builders: contexts, create payloads, tickets in a given state."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ticketflow.domain.commands import COMMANDS, CreateTicket
from ticketflow.domain.errors import InvalidMessage
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.policy import Policy, shipped_policies
from ticketflow.domain.streams import Context
from ticketflow.domain.ticket import Ticket
from ticketflow.schemas.commands import describe
from ticketflow.schemas.fields import Wire

POLICIES = shipped_policies()
PP = POLICIES["personalysispro"]
GB = POLICIES["growgrebuddy"]
T0 = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)  # a Monday, 09:00 in New York

ROLE_OF = {
    "acknowledge": Role.AGENT, "start_work": Role.AGENT, "request_user_input": Role.AGENT,
    "receive_user_input": Role.CUSTOMER, "resolve": Role.AGENT, "reopen": Role.CUSTOMER,
    "close": Role.CUSTOMER, "escalate": Role.AGENT, "change_priority": Role.MANAGER,
    "assign": Role.AGENT, "add_comment": Role.CUSTOMER, "link_article": Role.AGENT,
    "record_satisfaction": Role.CUSTOMER, "consent_to_publish": Role.CUSTOMER,
    "publish_as_article": Role.AGENT, "record_sla_breach": Role.SYSTEM,
    "review_ticket": Role.MANAGER,
}

PAYLOAD_OF: dict[str, dict[str, Any]] = {
    "acknowledge": {}, "start_work": {}, "receive_user_input": {},
    "request_user_input": {"question": "Which export fails?"},
    "resolve": {"resolution": "Raised the export timeout"},
    "reopen": {"reason": "Still failing"}, "close": {"reason": "confirmed"},
    "escalate": {"level": "first_level", "reason": "needs a senior agent"},
    "change_priority": {"priority": "low", "reason": "workaround exists"},
    "assign": {"agent_id": "agent-7"},
    "add_comment": {"body": "Any news?", "visibility": "public"},
    "link_article": {"article_id": "KB-12"},
    "record_satisfaction": {"score": 5, "comment": "quick", "nps": 9},
    "consent_to_publish": {},
    "publish_as_article": {"article_id": "KB-99"},
    "record_sla_breach": {"clock": "resolution", "due_at": T0 + timedelta(hours=8)},
    "review_ticket": {"score": 4, "rubric": {"accurate": True, "complete": True,
                                             "empathetic": False}},
}

#: A path of commands from a fresh ticket to each state.
PATH_TO = {
    "created": [],
    "acknowledged": ["acknowledge"],
    "in_progress": ["acknowledge", "start_work"],
    "pending_user_input": ["acknowledge", "request_user_input"],
    "resolved": ["resolve"],
    "closed": ["resolve", "close"],
}


LATE = timedelta(days=30)  # late enough for any SLA clock to have breached


def ctx(
    at: datetime, role: Role = Role.AGENT, tenant: str = "personalysispro",
    message_id: str = "m-x", actor: str = "actor-1",
) -> Context:
    return Context(message_id, tenant, actor, role, at, at)


def create_payload(tenant: str = "personalysispro", **overrides: Any) -> dict[str, Any]:
    if tenant == "personalysispro":
        base = {"account_id": "acme", "plan": "professional", "timezone": "America/New_York",
                "channel": "email", "category": "technical", "subcategory": "performance",
                "priority": "high", "subject": "Exports time out", "description": "…"}
    else:
        base = {"account_id": "grow-1", "plan": "standard", "channel": "in_app_chat",
                "category": "bug_report", "priority": "medium", "subject": "App crashes",
                "description": "on start"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def policy_for(tenant: str) -> Policy:
    return POLICIES[tenant]


def payload_of(command: str, body: Mapping[str, Any]) -> Wire:
    """A payload as the engine hands it to the aggregate: read by the command's model,
    a refused one an InvalidMessage saying why (as `parse_command` would)."""
    try:
        return COMMANDS[command].payload.model_validate(body)
    except ValidationError as exc:
        raise InvalidMessage(describe(exc)) from None


def created(tenant: str = "personalysispro", **overrides: Any) -> CreateTicket:
    """`create_payload` as the create_ticket payload the aggregate takes."""
    payload = payload_of("create_ticket", create_payload(tenant, **overrides))
    assert isinstance(payload, CreateTicket)
    return payload


class Story:
    """Drives one ticket through commands, a minute apart, like a test script."""

    def __init__(self, tenant: str = "personalysispro", ticket_id: str = "T-1",
                 at: datetime = T0, **payload: Any):
        self.tenant, self.policy, self.at = tenant, policy_for(tenant), at
        self.ticket = Ticket.create(ctx(self.at, Role.CUSTOMER, tenant), self.policy, ticket_id,
                                    created(tenant, **payload))

    def do(self, command: str, role: Role | None = None, after: timedelta = timedelta(minutes=1),
           **payload: Any) -> Story:
        """Send `command` (its PAYLOAD_OF, with `payload` over it: None leaves a field
        out) `after` the previous one."""
        self.at += after
        body = {k: v for k, v in {**PAYLOAD_OF[command], **payload}.items() if v is not None}
        sent_by = ctx(self.at, role or ROLE_OF[command], self.tenant)
        self.ticket.handle(COMMANDS[command], sent_by, self.policy, payload_of(command, body))
        return self

    def to(self, state: str) -> Story:
        for command in PATH_TO[state]:
            self.do(command)
        return self

    @property
    def event_types(self) -> list[str]:
        return [e.type_name for e in self.ticket.pending_events]  # type: ignore[attr-defined]


def prepared(command: str, state: str) -> Story:
    """A ticket in `state`, ready for `command` (consented, where it publishes; breached
    before it waits, where the timer records a breach while pending)."""
    if command == "record_sla_breach" and state == "pending_user_input":
        # the clocks pause while pending: breach first, then ask the customer
        return Story().do("acknowledge").do("request_user_input", after=LATE)
    story = Story().to(state)
    if command == "publish_as_article" and state in {"resolved"}:
        story.do("consent_to_publish")
    if command == "publish_as_article" and state == "closed":
        story = Story().to("resolved").do("consent_to_publish").do("close")
    return story


def command_line(message_id: str, type_: str, ticket_id: str, at: datetime, role: str,
                 payload: dict[str, Any], tenant: str = "personalysispro",
                 actor: str = "actor-1") -> bytes:
    """One inbound command as the bytes a service would send."""
    document = {"message_id": message_id, "type": type_, "tenant": tenant,
                "ticket_id": ticket_id, "occurred_at": at.isoformat(),
                "actor": {"id": actor, "role": role}, "payload": payload}
    return json.dumps(document, default=str).encode()
