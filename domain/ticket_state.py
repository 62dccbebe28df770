"""A ticket's state folded from its events: one pure reducer for every keeper.

`evolve(state, event_type, at, data)` is the state after one event; `changes(...)` is
what that event sets (the fields, with their new values), for a keeper that merges
them into what it holds. The Ticket aggregate folds its attributes with it (instants
as datetimes) and the ticket read model its row (instants as the envelope's ISO-8601
text): instants are only ever copied, never computed with, so one reducer serves both.

Each keeper holds the part of the state it has always stored, since both are stored
(a snapshot is the aggregate's attributes, a row its table's columns): the aggregate
holds every field but the first response; the read model holds the first response and
none of the fields only the aggregate's guards read (levels reached, resolutions,
the rated resolution, consent). A field the given state does not hold is not folded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar

from ticketflow.domain.sla import FactKind, fact_kinds

#: An instant as its keeper holds it: a datetime (the aggregate), or ISO-8601 text in
#: UTC (the read model, as the envelope carries it).
At = TypeVar("At", datetime, str)


class FactRecord(TypedDict, Generic[At]):
    """One SLA fact (`ticketflow.domain.sla`) as the state keeps it."""

    at: At
    kind: str
    value: str | None


class TicketState(TypedDict, Generic[At], total=False):
    """A ticket folded from its events (SPEC §3, §4). All fields but the keeper-specific
    ones below are always there."""

    status: str
    plan: str
    priority: str
    timezone: str
    level: str | None
    assignee: str | None
    created_at: At
    resolved_at: At | None
    closed_at: At | None
    sla_facts: list[FactRecord[At]]
    # held by the aggregate only: what its guards and timers read
    level_reached_at: dict[str, At]
    resolutions: int
    rated_resolution: int
    consented: bool
    # held by the read model only: the first of acknowledge, request_user_input, resolve
    first_response_at: At | None


def start(at: At, data: Mapping[str, Any]) -> TicketState[At]:
    """The state a TicketCreated event (`data`, at `at`) begins: every field."""
    level = data.get("level")
    return {
        "status": "created", "plan": data["plan"], "priority": data["priority"],
        "timezone": data["timezone"], "level": level, "assignee": None, "created_at": at,
        "resolved_at": None, "closed_at": None,
        "sla_facts": _facts(fact_kinds("TicketCreated", data), at),
        "level_reached_at": {level: at} if level else {}, "resolutions": 0,
        "rated_resolution": 0, "consented": False, "first_response_at": None,
    }


def changes(state: TicketState[At], event_type: str, at: At,
            data: Mapping[str, Any]) -> TicketState[At]:
    """What one event of the ticket sets: its fields with their new values, among those
    `state` holds (TicketCreated sets every field). Pure: `state` is only read."""
    if event_type == "TicketCreated":
        return start(at, data)
    changed: TicketState[At] = {}
    if "to" in data:
        changed["status"] = data["to"]
    kinds = fact_kinds(event_type, data)
    if kinds:
        facts = _facts(kinds, at)
        changed["sla_facts"] = state["sla_facts"] + facts
        if "first_response_at" in state and state["first_response_at"] is None and any(
                fact["kind"] == "respond" for fact in facts):
            changed["first_response_at"] = at
    match event_type:
        case "TicketResolved":
            changed["resolved_at"] = at
            if "resolutions" in state:
                changed["resolutions"] = state["resolutions"] + 1
        case "TicketReopened":
            changed["resolved_at"] = None
        case "TicketClosed":
            changed["closed_at"] = at
        case "TicketEscalated":
            changed["level"] = data["level"]
            if "level_reached_at" in state:
                changed["level_reached_at"] = {**state["level_reached_at"], data["level"]: at}
        case "PriorityChanged":
            changed["priority"] = data["priority"]
        case "TicketAssigned":
            changed["assignee"] = data["agent_id"]
        case "SatisfactionRecorded" if "rated_resolution" in state:
            changed["rated_resolution"] = data["resolution"]
        case "PublicationConsented" if "consented" in state:
            changed["consented"] = True
    return changed


def evolve(state: TicketState[At] | None, event_type: str, at: At,
           data: Mapping[str, Any]) -> TicketState[At]:
    """The ticket's state after one of its events (None before its TicketCreated)."""
    before: TicketState[At] = state or {}
    return {**before, **changes(before, event_type, at, data)}


def _facts(kinds: tuple[FactKind, ...], at: At) -> list[FactRecord[At]]:
    return [{"at": at, "kind": kind, "value": value} for kind, value in kinds]
