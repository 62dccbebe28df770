"""Volume and satisfaction by the periods of a time zone (SPEC §12, `--timezone`).

The daily counters and answers of `reports.py` are kept by UTC day, which cannot be
cut at another zone's midnight. These read the events themselves by instant instead:
the timeline's created, resolved, reopened, closed and satisfaction events of the
window (a partial index on type and instant), and the self-service sessions by their
instant. With UTC they give exactly what `volume_report` and `satisfaction_report` give
(a contract test runs both).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

import orjson
from sqlalchemy import Connection, select, text

from ticketflow.projections import periods
from ticketflow.projections.db import TICKET_KEY, ZONED_WHERE, Tables, select_many
from ticketflow.projections.reports import (
    _opening_backlog,
    _satisfaction,
    _self_service,
    _volume_row,
)

VOLUME = {"TicketCreated": "created", "TicketResolved": "resolved",
          "TicketReopened": "reopened", "TicketClosed": "closed"}
Dims = tuple[str, ...]  # tenant, category, channel, priority at creation


def volume_in_zone(conn: Connection, t: Tables, *, since: date, until: date, by: str,
                   zone: tzinfo, tenant: str | None = None) -> list[dict[str, Any]]:
    """`volume_report` with the days, and periods, of `zone`: [since, until) are local
    dates, and each event counts in the local period of its instant."""
    start, end = _midnight(since, zone), _midnight(until, zone)
    windows = periods.windows(start, end, by, zone)
    utc_day = start.astimezone(UTC).date()
    opening = _opening_backlog(conn, t, utc_day, tenant)  # whole UTC days before
    for dims, _, counter in _events(conn, t, _midnight(utc_day, UTC), start, tenant):
        opening[dims] = opening.get(dims, 0) + _backlog_change(counter)
    counts: dict[tuple[str, ...], dict[str, int]] = defaultdict(
        lambda: {"created": 0, "resolved": 0, "closed": 0})
    changes: dict[Dims, list[tuple[datetime, int]]] = defaultdict(list)
    for dims, at, counter in _events(conn, t, start, end, tenant):
        changes[dims].append((at, _backlog_change(counter)))
        if counter != "reopened":
            counts[(periods.period_of(at, by, zone), *dims)][counter] += 1
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for dims in set(opening) | set(changes):
        backlog, ordered = opening.get(dims, 0), sorted(changes.get(dims, []))
        for period, _, period_end in windows:
            while ordered and ordered[0][0] < period_end:
                backlog += ordered.pop(0)[1]
            key = (period, *dims)
            if key in counts or backlog > 0:
                rows[key] = _volume_row(key, counts.get(key), backlog)
    return [rows[key] for key in sorted(rows)]


def _backlog_change(counter: str) -> int:
    return {"created": 1, "reopened": 1, "resolved": -1}.get(counter, 0)


def _events(conn: Connection, t: Tables, start: datetime, end: datetime,
            tenant: str | None) -> list[tuple[Dims, datetime, str]]:
    """(tenant, category, channel, priority at creation), instant and counter of each
    counted event in [start, end)."""
    found = _timeline(conn, t, tuple(VOLUME), start, end, tenant)
    tickets = _tickets(conn, t, found)
    return [((row.tenant, tickets[key]["category"], tickets[key]["channel"],
              tickets[key]["initial_priority"]), at, VOLUME[row.type])
            for row, key, at in found]


def satisfaction_in_zone(conn: Connection, t: Tables, *, since: date, until: date, by: str,
                         zone: tzinfo, tenant: str | None = None) -> dict[str, Any]:
    """`satisfaction_report` by the local periods of `zone` ([since, until) local dates)."""
    start, end = _midnight(since, zone), _midnight(until, zone)
    answers: dict[tuple[str, ...], list[tuple[int, int | None]]] = defaultdict(list)
    found = _timeline(conn, t, ("SatisfactionRecorded",), start, end, tenant)
    tickets = _tickets(conn, t, found)
    for row, key, at in found:
        data = _envelope(row.envelope)["data"]
        answers[(periods.period_of(at, by, zone), row.tenant, tickets[key]["plan"])].append(
            (data["score"], data.get("nps")))
    sessions: dict[tuple[str, ...], list[str]] = defaultdict(list)
    s = t.self_service.c
    query = select(s.tenant, s.at, s.outcome).where(
        s.day >= start.date().isoformat(), s.day <= end.date().isoformat())
    for owner, at_text, outcome in conn.execute(
            query.where(s.tenant == tenant) if tenant else query):
        at = datetime.fromisoformat(at_text)
        if start <= at < end:
            sessions[(periods.period_of(at, by, zone), owner)].append(outcome)
    return {
        "satisfaction": [_satisfaction(key, answers[key]) for key in sorted(answers)],
        "self_service": [_self_service(key, sessions[key]) for key in sorted(sessions)],
    }


def _timeline(conn: Connection, t: Tables, types: tuple[str, ...], start: datetime,
              end: datetime, tenant: str | None) -> list[tuple[Any, tuple[str, str], datetime]]:
    c = t.timeline.c
    query = select(c.tenant, c.ticket_id, c.type, c.occurred_at, c.envelope).where(
        text(ZONED_WHERE),  # the partial index's own condition, word for word: SQLite
        # uses a partial index only for a query that states it
        c.type.in_(types), c.occurred_at >= _text(start), c.occurred_at < _text(end))
    if tenant is not None:
        query = query.where(c.tenant == tenant)
    return [(row, (row.tenant, row.ticket_id), datetime.fromisoformat(row.occurred_at))
            for row in conn.execute(query)]


def _tickets(conn: Connection, t: Tables, found: list[Any]) -> dict[tuple[str, str], Any]:
    keys = sorted({key for _, key, _ in found})
    return {(row["tenant"], row["ticket_id"]): row
            for row in select_many(conn, t.tickets, TICKET_KEY, keys)}


def _envelope(value: Any) -> dict[str, Any]:
    return dict(orjson.loads(value) if isinstance(value, str | bytes) else value)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
