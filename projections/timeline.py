"""The audit timeline read model: every ticket event's envelope, exactly as recorded.

One row per (tenant, ticket, version), so a redelivered event is a no-op. It answers
`ticketflow timeline` and `ticketflow ticket --as-of`: the state at a past instant is
folded from the rows with the ticket aggregate's own events and mutators, never a
second implementation of the lifecycle. `ticketflow verify` reads the event store
itself, the record the hashes protect, and compares these rows with it.

A ticket's timeline is read in pages: `timeline_page(after=V, limit=N)` gives the events
after version V and the cursor of the next page (the last version given, or None at the
end). Versions never change once recorded, so a cursor stays valid while the ticket
grows. Everything else here reads page by page as well, so no reader holds a long
ticket's history in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ticketflow.domain.errors import NotFound
from ticketflow.domain.ticket import Ticket
from ticketflow.projections.db import Tables
from ticketflow.projections.tickets import Row
from ticketflow.schemas.events import upcast_envelope

#: Events per page when the caller names no limit, and the most it may ask for.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    next: int | None  # the cursor (`after`) of the next page; None: no more events

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "next": self.next}


def timeline_row(envelope: dict[str, Any]) -> Row:
    return {"ticket_id": envelope["ticket_id"], "version": envelope["version"],
            "tenant": envelope["tenant"], "type": envelope["type"],
            "occurred_at": envelope["occurred_at"], "envelope": envelope}


def timeline_page(conn: Connection, t: Tables, tenant: str, ticket_id: str, *, after: int = 0,
                  limit: int = DEFAULT_LIMIT) -> Page:
    """Up to `limit` envelopes of the tenant's ticket after version `after`, in order;
    NotFound if the ticket has no events at all."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1 to {MAX_LIMIT}, not {limit}")
    query = (select(t.timeline.c.envelope)
             .where(t.timeline.c.tenant == tenant, t.timeline.c.ticket_id == ticket_id,
                    t.timeline.c.version > after)
             .order_by(t.timeline.c.version).limit(limit + 1))
    envelopes = list(conn.execute(query).scalars())
    if not envelopes and not _exists(conn, t, tenant, ticket_id):
        raise NotFound(f"ticket {ticket_id} not found")
    more = len(envelopes) > limit
    del envelopes[limit:]
    return Page(envelopes, envelopes[-1]["version"] if more else None)


def _exists(conn: Connection, t: Tables, tenant: str, ticket_id: str) -> bool:
    query = select(t.timeline.c.version).where(t.timeline.c.tenant == tenant,
                                               t.timeline.c.ticket_id == ticket_id).limit(1)
    return conn.execute(query).first() is not None


def timeline_rows(conn: Connection, t: Tables, tenant: str, ticket_id: str, *, after: int = 0,
                  page: int = DEFAULT_LIMIT) -> Iterator[dict[str, Any]]:
    """The ticket's rows (every column) after version `after`, in version order, read a
    page at a time; none if it has no rows."""
    while True:
        query = (select(t.timeline).where(t.timeline.c.tenant == tenant,
                                          t.timeline.c.ticket_id == ticket_id,
                                          t.timeline.c.version > after)
                 .order_by(t.timeline.c.version).limit(page))
        rows = [dict(row._mapping) for row in conn.execute(query)]
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["version"]


def envelopes(conn: Connection, t: Tables, tenant: str, ticket_id: str, *, after: int = 0,
              page: int = DEFAULT_LIMIT) -> Iterator[dict[str, Any]]:
    """Every envelope of the ticket after version `after`, a page at a time; NotFound
    if the ticket has no events at all."""
    while True:
        found = timeline_page(conn, t, tenant, ticket_id, after=after, limit=page)
        yield from found.events
        if found.next is None:
            return
        after = found.next


def timeline(conn: Connection, t: Tables, tenant: str, ticket_id: str) -> list[dict[str, Any]]:
    """The tenant's ticket's envelopes in version order; NotFound if it has none."""
    return list(envelopes(conn, t, tenant, ticket_id))


def version_at(conn: Connection, t: Tables, tenant: str, ticket_id: str,
               as_of: datetime) -> int:
    """The last version of the tenant's ticket in its timeline that occurred at or before
    `as_of` (0: none did). occurred_at never goes backwards within a ticket, so this is
    a binary search over the versions: about log2(versions) reads of one row each,
    whatever the ticket's length (a version the timeline lacks is skipped to the next
    one it holds)."""
    c = t.timeline.c
    mine = (c.tenant == tenant, c.ticket_id == ticket_id)
    low, high = 0, conn.execute(select(func.max(c.version)).where(*mine)).scalar() or 0
    while low < high:  # versions ≤ low occurred by as_of; versions > high after it
        middle = (low + high + 1) // 2
        found = conn.execute(select(c.version, c.occurred_at).where(*mine, c.version >= middle)
                             .order_by(c.version).limit(1)).first()
        if found is not None and datetime.fromisoformat(found.occurred_at) <= as_of:
            low = found.version
        else:
            high = middle - 1
    return low


def ticket_as_of(conn: Connection, t: Tables, tenant: str, ticket_id: str,
                 as_of: datetime) -> Ticket:
    """The tenant's ticket as it stood at `as_of`: every event that occurred at or
    before it."""
    def until_as_of() -> Any:
        for envelope in envelopes(conn, t, tenant, ticket_id):
            if datetime.fromisoformat(envelope["occurred_at"]) > as_of:
                return  # occurred_at never goes backwards within a ticket
            yield upcast_envelope(envelope)

    ticket = Ticket.from_envelopes(until_as_of())
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} did not exist yet at {as_of.isoformat()}")
    return ticket
