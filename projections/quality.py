"""Response quality (issue 19, `ticketflow report quality`): the reviews managers made
of tickets' handling, by period, tenant and tier or agent.

In each period (of a time zone, `periods.windows`), a ticket counts once: by its
latest review made in that period (a review made again replaces the one before). A
review is grouped by the handling it judged, which its event records: the tier is the
escalation level at the ticket's latest resolution and the agent the assignee then.
Each row gives the reviews counted, their mean score and, for every rubric item the
reviews marked, the share of them that passed it. Rows come in a fixed order, so a
replay prints the same report.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select

from ticketflow.projections.db import Tables

#: What `--group` may name: the review row's column each groups by.
GROUPS = {"tier": "level", "agent": "agent_id"}
Period = tuple[str | None, datetime, datetime]  # (label, start, end), as periods.windows


def quality_report(conn: Connection, t: Tables, *, periods: list[Period],
                   tenant: str | None = None, group: str | None = None) -> list[dict[str, Any]]:
    """Reviews, mean score and pass rate per rubric item by period × tenant (× tier or
    agent with `group`) for the reviews made in the periods (contiguous, in order)."""
    if not periods:
        return []
    starts = [start for _, start, _ in periods]
    latest: dict[tuple[int, str, str], dict[str, Any]] = {}
    for row in _reviews(conn, t, periods[0][1], periods[-1][2], tenant):
        index = bisect_right(starts, datetime.fromisoformat(row["at"])) - 1
        key = (index, row["tenant"], row["ticket_id"])
        if key not in latest or row["version"] > latest[key]["version"]:
            latest[key] = row
    counted: dict[tuple[int, str, str], list[dict[str, Any]]] = defaultdict(list)
    for (index, owner, _), row in latest.items():
        counted[(index, owner, _group_value(row, group))].append(row)
    return [_row(periods[index][0], owner, group, value, counted[(index, owner, value)])
            for index, owner, value in sorted(counted)]


def _reviews(conn: Connection, t: Tables, start: datetime, end: datetime,
             tenant: str | None) -> list[dict[str, Any]]:
    r = t.reviews.c
    query = select(t.reviews).where(r.at >= _text(start), r.at < _text(end))
    if tenant is not None:
        query = query.where(r.tenant == tenant)
    return [_decoded(dict(row._mapping)) for row in conn.execute(query)]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row["rubric"], str | bytes):  # PostgreSQL decodes JSON itself
        row["rubric"] = orjson.loads(row["rubric"])
    return row


def _group_value(row: dict[str, Any], group: str | None) -> str:
    """The row's tier or agent ("" when it had none: not escalated, or unassigned)."""
    return "" if group is None else row[GROUPS[group]] or ""


def _row(period: str | None, tenant: str, group: str | None, value: str,
         reviews: list[dict[str, Any]]) -> dict[str, Any]:
    marks: dict[str, list[bool]] = defaultdict(list)
    for review in reviews:
        for item, passed in review["rubric"].items():
            marks[item].append(bool(passed))
    scores = [review["score"] for review in reviews]
    return {
        **({} if period is None else {"period": period}), "tenant": tenant,
        **({} if group is None else {group: value or None}),
        "reviews": len(reviews), "mean_score": round(sum(scores) / len(scores), 2),
        "pass_percent": {item: round(100.0 * sum(marks[item]) / len(marks[item]), 1)
                         for item in sorted(marks)},
    }


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
