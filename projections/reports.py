"""Reports from the read models (SPEC §6): SLA compliance and ticket volume.

Both are deterministic functions of the read-model rows and their arguments (never
the wall clock), with rows in a fixed order, so a replay prints byte-identical reports.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from ticketflow.domain.policy import Policy
from ticketflow.domain.sla import CLOCKS, SlaResult
from ticketflow.projections.db import Tables
from ticketflow.projections.sla_clocks import sla_of
from ticketflow.projections.sla_compliance import ComplianceRow, compliance_rows
from ticketflow.projections.tickets import Row

PolicyOf = Callable[[Row], Policy | None]


def ticket_rows(conn: Connection, t: Tables, tenant: str | None) -> Iterator[Row]:
    query = select(t.tickets).order_by(t.tickets.c.ticket_id)
    if tenant:
        query = query.where(t.tickets.c.tenant == tenant)
    for row in conn.execute(query):
        yield dict(row._mapping)


def sla_report(
    conn: Connection, t: Tables, policy_of: PolicyOf, *, since: datetime, until: datetime,
    as_of: datetime, tenant: str | None = None,
) -> list[ComplianceRow]:
    """Compliance by tenant × plan × priority for the clocks whose due instant falls in
    [since, until); running clocks already past due at `as_of` count as breached."""
    def results() -> Iterator[tuple[str, str, SlaResult]]:
        for row in ticket_rows(conn, t, tenant):
            policy = policy_of(row)
            if policy is not None and row["created_at"] < until.isoformat():
                yield row["tenant"], row["plan"], sla_of(row, policy, as_of)

    return compliance_rows(results(), window=(since, until))


def volume_report(
    conn: Connection, t: Tables, *, since: date, until: date, by: str = "week",
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Created, resolved, closed and backlog (open at the period's end) by period ×
    tenant × category × channel × priority, for periods starting in [since, until)."""
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
    """Every period in range for every dimension that has activity or a backlog."""
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
    end = _period_end(key[0], by)
    backlog = sum(d for day, d in deltas if day < end)
    rate = round(100.0 * counts["resolved"] / counts["created"], 1) if counts["created"] else None
    return {"period": key[0], "tenant": key[1], "category": key[2], "channel": key[3],
            "priority": key[4], **counts, "backlog": backlog, "resolution_rate": rate}




def satisfaction_report(
    conn: Connection, t: Tables, *, since: date, until: date, by: str = "week",
    tenant: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """CSAT (share of 4-5 scores), mean score and NPS by period × tenant × plan, and the
    self-service success rate (solved ÷ sessions) by period × tenant."""
    window = (since.isoformat(), until.isoformat())
    answers: dict[tuple[str, ...], list[tuple[int, int | None]]] = defaultdict(list)
    query = select(t.satisfaction).where(t.satisfaction.c.day >= window[0],
                                         t.satisfaction.c.day < window[1])
    for row in conn.execute(query.where(t.satisfaction.c.tenant == tenant) if tenant else query):
        key = (_period(date.fromisoformat(row.day), by), row.tenant, row.plan)
        answers[key].append((row.score, row.nps))
    sessions: dict[tuple[str, ...], list[str]] = defaultdict(list)
    query = select(t.self_service).where(t.self_service.c.day >= window[0],
                                         t.self_service.c.day < window[1])
    for row in conn.execute(query.where(t.self_service.c.tenant == tenant) if tenant else query):
        sessions[(_period(date.fromisoformat(row.day), by), row.tenant)].append(row.outcome)
    return {
        "satisfaction": [_satisfaction(key, answers[key]) for key in sorted(answers)],
        "self_service": [_self_service(key, sessions[key]) for key in sorted(sessions)],
    }


def _satisfaction(key: tuple[str, ...], answers: list[tuple[int, int | None]]) -> dict[str, Any]:
    scores = [score for score, _ in answers]
    nps = [value for _, value in answers if value is not None]
    promoters = sum(1 for v in nps if v >= 9)
    detractors = sum(1 for v in nps if v <= 6)
    return {
        "period": key[0], "tenant": key[1], "plan": key[2], "responses": len(scores),
        "mean_score": round(sum(scores) / len(scores), 2),
        "csat_percent": _percent(sum(1 for s in scores if s >= 4), len(scores)),
        "nps_responses": len(nps),
        "nps": round(100.0 * (promoters - detractors) / len(nps), 1) if nps else None,
    }


def _self_service(key: tuple[str, ...], outcomes: list[str]) -> dict[str, Any]:
    solved = outcomes.count("solved")
    return {"period": key[0], "tenant": key[1], "sessions": len(outcomes), "solved": solved,
            "success_rate": _percent(solved, len(outcomes))}


def times_report(
    conn: Connection, t: Tables, policy_of: PolicyOf, *, since: datetime, until: datetime,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Mean, p50 and p90 of counted minutes to first response and to resolution, for
    clocks met in [since, until), by tenant × plan × priority."""
    samples: dict[tuple[str, ...], dict[str, list[float]]] = defaultdict(
        lambda: {name: [] for name in CLOCKS})
    for row in ticket_rows(conn, t, tenant):
        policy = policy_of(row)
        if policy is None or row["created_at"] >= until.isoformat():
            continue
        result = sla_of(row, policy, until)
        for name in CLOCKS:
            clock = result.clock(name)
            if clock.met_at is not None and since <= clock.met_at < until:
                key = (row["tenant"], row["plan"], result.priority)
                samples[key][name].append(clock.counted_seconds / 60)
    return [{"tenant": k[0], "plan": k[1], "priority": k[2],
             **{name: _distribution(samples[k][name]) for name in CLOCKS}}
            for k in sorted(samples, key=lambda k: (k[0], k[1], _PRIORITY.get(k[2], 9)))]


_PRIORITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _distribution(minutes: list[float]) -> dict[str, Any]:
    if not minutes:
        return {"count": 0, "mean": None, "p50": None, "p90": None}
    ordered = sorted(minutes)
    return {"count": len(ordered), "mean": round(sum(ordered) / len(ordered), 1),
            "p50": round(_rank(ordered, 0.5), 1), "p90": round(_rank(ordered, 0.9), 1)}


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile: deterministic and always an observed value."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None
