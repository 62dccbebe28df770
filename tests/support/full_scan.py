"""The reports as they were computed before they read through indexes: every ticket row
evaluated, every volume day read. The oracle the indexed reports are checked against
(tests/integration/test_report_indexes.py) and the contrast the growth benchmark
measures them beside (bench/growth.py).

One change from the old code: a ticket created after the as-of instant is left out
(it has no clocks yet; the old code raised ValueError from `evaluate` for it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from ticketflow.domain.sla import SlaResult
from ticketflow.projections.db import Tables
from ticketflow.projections.reports import PolicyOf, times_rows
from ticketflow.projections.sla_clocks import sla_of
from ticketflow.projections.sla_compliance import ComplianceRow, compliance_rows
from ticketflow.projections.tickets import Row


def ticket_rows(conn: Connection, t: Tables, tenant: str | None) -> Iterator[Row]:
    query = select(t.tickets).order_by(t.tickets.c.tenant, t.tickets.c.ticket_id)
    if tenant:
        query = query.where(t.tickets.c.tenant == tenant)
    for row in conn.execute(query):
        yield dict(row._mapping)


def sla_report(
    conn: Connection, t: Tables, policy_of: PolicyOf, *, since: datetime, until: datetime,
    as_of: datetime, tenant: str | None = None,
) -> list[ComplianceRow]:
    def results() -> Iterator[tuple[str, str, SlaResult]]:
        for row in ticket_rows(conn, t, tenant):
            policy = policy_of(row)
            if (policy is not None and row["created_at"] < until.isoformat()
                    and datetime.fromisoformat(row["created_at"]) <= as_of):
                yield row["tenant"], row["plan"], sla_of(row, policy, as_of)

    return compliance_rows(results(), window=(since, until))


def times_report(
    conn: Connection, t: Tables, policy_of: PolicyOf, *, since: datetime, until: datetime,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    def results() -> Iterator[tuple[Row, SlaResult]]:  # every ticket, no index
        for row in ticket_rows(conn, t, tenant):
            policy = policy_of(row)
            if policy is not None and row["created_at"] < until.isoformat():
                yield row, sla_of(row, policy, until)

    return times_rows(results(), since=since, until=until)


def volume_report(
    conn: Connection, t: Tables, *, since: date, until: date, by: str = "week",
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    query = select(t.volume).where(t.volume.c.day < until.isoformat()).order_by(
        t.volume.c.day)
    if tenant:
        query = query.where(t.volume.c.tenant == tenant)
    periods: dict[tuple[str, ...], dict[str, int]] = defaultdict(
        lambda: {"created": 0, "resolved": 0, "closed": 0})
    opened: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for row in conn.execute(query):
        dims = (row.tenant, row.category, row.channel, row.priority)
        opened[dims].append((row.day, row.created + row.reopened - row.resolved))
        day = date.fromisoformat(row.day)
        if day >= since:
            counts = periods[(_period(day, by), *dims)]
            for name in ("created", "resolved", "closed"):
                counts[name] += getattr(row, name)
    return [_volume_row(key, periods.get(key), opened[key[1:]], by)
            for key in _all_keys(periods, opened, since, until, by)]


def _period(day: date, by: str) -> str:
    return (day - timedelta(days=day.weekday()) if by == "week" else day).isoformat()


def _period_end(period: str, by: str) -> str:
    return (date.fromisoformat(period) + timedelta(days=7 if by == "week" else 1)).isoformat()


def _all_keys(periods: dict[tuple[str, ...], Any], opened: dict[tuple[str, ...], Any],
              since: date, until: date, by: str) -> list[tuple[str, ...]]:
    starts = sorted({_period(since + timedelta(days=n), by)
                     for n in range((until - since).days)})
    keys = set(periods)
    for dims, deltas in opened.items():
        for start in starts:
            if sum(d for day, d in deltas if day < _period_end(start, by)) > 0:
                keys.add((start, *dims))
    return sorted(keys)


def _volume_row(key: tuple[str, ...], counts: dict[str, int] | None,
                deltas: list[tuple[str, int]], by: str) -> dict[str, Any]:
    counts = counts or {"created": 0, "resolved": 0, "closed": 0}
    backlog = sum(d for day, d in deltas if day < _period_end(key[0], by))
    rate = round(100.0 * counts["resolved"] / counts["created"], 1) if counts["created"] else None
    return {"period": key[0], "tenant": key[1], "category": key[2], "channel": key[3],
            "priority": key[4], **counts, "backlog": backlog, "resolution_rate": rate}
