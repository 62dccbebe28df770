"""The audit timeline read model: every ticket event's envelope, exactly as recorded.

One row per (tenant, ticket, version), so a redelivered event is a no-op. It answers
`ticketflow timeline` and `ticketflow ticket --as-of`: the state at a past instant is
folded from the rows with the ticket aggregate's own events and mutators, never a
second implementation of the lifecycle. `ticketflow verify` keeps reading the event
store itself, the record the hashes protect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ticketflow.domain.errors import NotFound
from ticketflow.domain.ticket import Ticket
from ticketflow.projections.db import Tables
from ticketflow.projections.tickets import Row
from ticketflow.schemas.events import upcast_envelope


def timeline_row(envelope: dict[str, Any]) -> Row:
    return {"ticket_id": envelope["ticket_id"], "version": envelope["version"],
            "tenant": envelope["tenant"], "type": envelope["type"],
            "occurred_at": envelope["occurred_at"], "envelope": envelope}


def timeline(conn: Connection, t: Tables, tenant: str, ticket_id: str) -> list[dict[str, Any]]:
    """The tenant's ticket's envelopes in version order; NotFound if it has none."""
    query = (select(t.timeline.c.envelope).where(t.timeline.c.tenant == tenant,
                                                 t.timeline.c.ticket_id == ticket_id)
             .order_by(t.timeline.c.version))
    envelopes = list(conn.execute(query).scalars())
    if not envelopes:
        raise NotFound(f"ticket {ticket_id} not found")
    return envelopes


def ticket_as_of(conn: Connection, t: Tables, tenant: str, ticket_id: str,
                 as_of: datetime) -> Ticket:
    """The tenant's ticket as it stood at `as_of`: every event that occurred at or
    before it."""
    def until_as_of() -> Any:
        for envelope in timeline(conn, t, tenant, ticket_id):
            if datetime.fromisoformat(envelope["occurred_at"]) > as_of:
                return  # occurred_at never goes backwards within a ticket
            yield upcast_envelope(envelope)

    ticket = Ticket.from_envelopes(until_as_of())
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} did not exist yet at {as_of.isoformat()}")
    return ticket
