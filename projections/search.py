"""Ticket search over the ticket read model: filters and pages (the web console's list).

A pure query of `rm_tickets` (and `rm_sla_clocks` for "breached"): no business rule
is restated here. Rows come newest first (by creation instant, then id), a page at a
time with the number of matches, so a page costs its size plus one count whatever
the store's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, func, select

from ticketflow.projections.db import Tables

#: Tickets per page when the caller names no size, and the most it may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class TicketFilter:
    """What a search keeps: every field set must match (None: any)."""

    text: str = ""  # part of the ticket id, case-insensitive
    status: str | None = None
    plan: str | None = None
    priority: str | None = None
    level: str | None = None  # "none": not escalated
    breached: bool | None = None  # a clock breached, as the clocks read model has it
    created_from: date | None = None  # inclusive, UTC date
    created_to: date | None = None  # inclusive, UTC date


@dataclass(frozen=True)
class TicketPage:
    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def search_tickets(conn: Connection, t: Tables, tenant: str | None, found: TicketFilter,
                   *, offset: int = 0, limit: int = PAGE_SIZE) -> TicketPage:
    """The page of the tenant's (None: every tenant's) tickets matching `found`."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE_SIZE}, not {limit}")
    where = _conditions(t, tenant, found)
    c = t.tickets.c
    total = conn.execute(select(func.count()).select_from(t.tickets).where(*where)).scalar()
    query = (select(c.tenant, c.ticket_id, c.status, c.plan, c.priority, c.level,
                    c.channel, c.category, c.assignee, c.created_at, c.version)
             .where(*where).order_by(c.created_at.desc(), c.ticket_id)
             .offset(max(0, offset)).limit(limit))
    rows = [dict(row._mapping) for row in conn.execute(query)]
    return TicketPage(rows, int(total or 0), max(0, offset), limit)


def _conditions(t: Tables, tenant: str | None, found: TicketFilter) -> list[ColumnElement[bool]]:
    c = t.tickets.c
    where: list[ColumnElement[bool]] = []
    if tenant is not None:
        where.append(c.tenant == tenant)
    if found.text:
        escaped = found.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(func.lower(c.ticket_id).like(f"%{escaped}%", escape="\\"))
    for name in ("status", "plan", "priority"):
        value = getattr(found, name)
        if value:
            where.append(c[name] == value)
    if found.level == "none":
        where.append(c.level.is_(None))
    elif found.level:
        where.append(c.level == found.level)
    if found.created_from is not None:  # instants are ISO-8601 UTC text, which sorts
        where.append(c.created_at >= found.created_from.isoformat())
    if found.created_to is not None:
        where.append(c.created_at < (found.created_to + timedelta(days=1)).isoformat())
    if found.breached is not None:
        clocks = t.sla_clocks.c
        breached = exists().where(clocks.tenant == c.tenant, clocks.ticket_id == c.ticket_id,
                                  clocks.status == "breached")
        where.append(breached if found.breached else ~breached)
    return where

