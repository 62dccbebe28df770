"""What the read use cases answer, as JSON-ready data: what `ticketflow … --json`
prints and what the HTTP API sends, written once for both doors.

Most answers of the query layer are JSON-ready already (`Queries.sla`, the reports,
`Page.as_dict`); these are the few that a door had to shape from an object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ticketflow.domain.ticket import Ticket
from ticketflow.event_log import CommandOutcome


def ticket_state(ticket: Ticket, as_of: datetime | None = None,
                 account: dict[str, str | None] | None = None) -> dict[str, Any]:
    """`ticketflow ticket --json`, `GET /v1/tickets/{id}`: the state, its account and the
    account's current manager (`Queries.account`), and the instant it is taken at when
    one was asked for."""
    state = {**ticket.state(), **(account or {})}
    if as_of is not None:
        state["as_of"] = as_of.isoformat()
    return state


def outcome(found: CommandOutcome) -> dict[str, Any]:
    """`ticketflow outcome --json`, `GET /v1/outcomes/{message_id}`."""
    return {"message_id": found.message_id, "status": found.status,
            "ticket_id": found.ticket_id,
            "events": [{"type": type_, "version": version} for type_, version in found.events],
            "error": found.error}


def verification(breaks: list[dict[str, Any]],
                 logged: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`ticketflow verify --json`, `GET /v1/verify`: ok, the breaks found, and (checked
    against a signed checkpoint) what the audit log found."""
    checked = {} if logged is None else {"log": logged}
    return {"ok": not breaks and not logged, "breaks": breaks, **checked}
