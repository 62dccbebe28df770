"""Reports from the read models (SPEC §6): SLA compliance, times, volume, satisfaction.

Each is a deterministic function of the read-model rows and its arguments (never the
wall clock), with rows in a fixed order, so a replay prints byte-identical reports.
Each reads what its window needs through indexes, so its cost follows the window and
not the length of the history: the SLA and times reports evaluate only the tickets
that can count in the window (see `sla_report`), volume and satisfaction read days.

Instants are compared as the ISO-8601 UTC text the read models store them in
(`…+00:00`, seconds, microseconds when there are any), which sorts as time does.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Select, func, select

from ticketflow.domain.policy import Policy
from ticketflow.domain.sla import CLOCKS, SlaResult
from ticketflow.projections import periods
from ticketflow.projections.db import TICKET_KEY, Tables, select_many
from ticketflow.projections.sla_clocks import sla_of
from ticketflow.projections.sla_compliance import (
    AccountComplianceRow,
    ComplianceRow,
    account_compliance_rows,
    compliance_rows,
)
from ticketflow.projections.tickets import Row

PolicyOf = Callable[[Row], Policy | None]
Keys = set[tuple[str, str]]  # (tenant, ticket_id) of ticket rows


def sla_report(
    conn: Connection, t: Tables, policy_of: PolicyOf, *, since: datetime, until: datetime,
    as_of: datetime, tenant: str | None = None,
) -> list[ComplianceRow]:
    """Compliance by tenant × plan × priority for the clocks whose due instant falls in
    [since, until); running clocks already past due at `as_of` count as breached.

    A ticket created at or before `as_of` and before `until` counts if one of its
    clocks, evaluated from its facts at `as_of` (`sla_of`), is due in the window. Only
    candidates are evaluated; every ticket left out provably has no clock due there:

    - *settled* tickets, whose latest SLA fact is at or before `as_of`. Their
      rm_sla_clocks rows were evaluated at that fact, and an evaluation at any later
      instant walks the same facts: the due and met instants are the same, only a
      status can differ (a running clock past due is breached). So they are
      candidates when a stored due_at is in the window (index on due_at);
    - *unsettled* tickets, with an SLA fact after `as_of`: their rows say nothing
      about `as_of`, so every one created at or before `as_of` and before `until` is a
      candidate (index on evaluated_at, joined to the ticket's creation);
    - tickets that `policy_of` gives another policy than the one they recorded (a
      what-if): their rows are the recorded policy's, so all of them. `policy_of` is
      asked once per tenant and recorded policy (it must answer alike for those
      tickets, as the recorded policies and a what-if by tenant do).
    """
    rows = _candidates(conn, t, policy_of, tenant, _Window("due_at", since, until),
                       settled_by=as_of)

    def results() -> Iterator[tuple[str, str, SlaResult]]:
        for row in rows:
            policy = policy_of(row)
            if policy is not None and _existed(row, as_of, until):
                yield row["tenant"], row["plan"], sla_of(row, policy, as_of)

    return compliance_rows(results(), window=(since, until))


class _Window(NamedTuple):
    """A clock column of rm_sla_clocks (due_at, met_at) and the window [start, end)."""

    column: str
    start: datetime
    end: datetime


def _existed(row: Row, as_of: datetime, until: datetime) -> bool:
    """Created at or before `as_of` (it has clocks then) and before `until`."""
    created = datetime.fromisoformat(row["created_at"])
    return created <= as_of and created < until


def _candidates(conn: Connection, t: Tables, policy_of: PolicyOf, tenant: str | None,
                window: _Window, *, settled_by: datetime) -> list[Row]:
    """The ticket rows that can have a clock instant in the window, evaluated at
    `settled_by` (see `sla_report`), in no particular order."""
    keys = (_settled(conn, t, window, settled_by, tenant)
            | _unsettled(conn, t, settled_by, window.end, tenant)
            | _foreign(conn, t, policy_of, tenant))
    return select_many(conn, t.tickets, TICKET_KEY, sorted(keys))


def _settled(conn: Connection, t: Tables, window: _Window, settled_by: datetime,
             tenant: str | None) -> Keys:
    """Tickets whose latest SLA fact is at or before `settled_by` and whose stored
    clock instant (due or met) is in the window."""
    c = t.sla_clocks.c
    instant = c[window.column]
    query = select(c.tenant, c.ticket_id).where(
        instant >= _text(window.start), instant < _text(window.end),
        c.evaluated_at <= _text(settled_by))
    return _keys(conn, query, c.tenant == tenant if tenant else None)


def _unsettled(conn: Connection, t: Tables, after: datetime, until: datetime,
               tenant: str | None) -> Keys:
    """Tickets with an SLA fact after `after` that existed at it and before `until`."""
    c, k = t.sla_clocks.c, t.tickets.c
    query = select(c.tenant, c.ticket_id).join_from(
        t.sla_clocks, t.tickets, (k.tenant == c.tenant) & (k.ticket_id == c.ticket_id))
    query = query.where(c.evaluated_at > _text(after), k.created_at <= _text(after),
                        k.created_at < _text(until))
    return _keys(conn, query, c.tenant == tenant if tenant else None)


def _foreign(conn: Connection, t: Tables, policy_of: PolicyOf, tenant: str | None) -> Keys:
    """Tickets `policy_of` gives another policy than the one they recorded (a what-if),
    asked once per (tenant, recorded policy): it answers by those alone."""
    k = t.tickets.c
    keys: Keys = set()
    for row in _policy_samples(conn, t, tenant):
        policy = policy_of(row)
        if policy is not None and policy.content_hash != row["policy_hash"]:
            keys |= _keys(conn, select(k.tenant, k.ticket_id).where(
                k.tenant == row["tenant"], k.policy_hash == row["policy_hash"]))
    return keys


def _policy_samples(conn: Connection, t: Tables, tenant: str | None) -> Iterator[Row]:
    """One ticket row per (tenant, recorded policy hash)."""
    k = t.tickets.c
    for name in [tenant] if tenant else _distinct(conn, k.tenant):
        for fingerprint in _distinct(conn, k.policy_hash, k.tenant == name):
            query = select(t.tickets).where(k.tenant == name, k.policy_hash == fingerprint)
            yield dict(conn.execute(query.limit(1)).one()._mapping)


def _distinct(conn: Connection, column: Any, *where: ColumnElement[bool]) -> Iterator[str]:
    """A column's distinct values, one index seek each (a few policies, many tickets)."""
    value = conn.execute(select(func.min(column)).where(*where)).scalar()
    while value is not None:
        yield value
        value = conn.execute(select(func.min(column)).where(*where, column > value)).scalar()


def _keys(conn: Connection, query: Select[Any], tenant: ColumnElement[bool] | None = None,
          ) -> Keys:
    return {(row[0], row[1]) for row in conn.execute(
        query if tenant is None else query.where(tenant))}


def _text(instant: datetime) -> str:
    """An instant as the read models store it: ISO-8601 in UTC."""
    return instant.astimezone(UTC).isoformat()


def volume_report(
    conn: Connection, t: Tables, *, since: date, until: date, by: str = "week",
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Created, resolved, closed and backlog (open at the period's end) by period ×
    tenant × category × channel × priority, for periods starting in [since, until).

    The window's daily rows are read by day (index on day); the backlog before the
    window is one sum per dimension in SQL: days × dimensions, never tickets."""
    starts = sorted({_period(since + timedelta(days=n), by) for n in range((until - since).days)})
    ends = [_period_end(start, by) for start in starts]
    opening = _opening_backlog(conn, t, since, tenant)
    counts, deltas = _window_volume(conn, t, since, until, by, tenant)
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for dims in set(opening) | set(deltas):
        backlogs = _backlogs(opening.get(dims, 0), deltas.get(dims, []), ends)
        for start, backlog in zip(starts, backlogs, strict=True):
            key = (start, *dims)
            if key in counts or backlog > 0:
                rows[key] = _volume_row(key, counts.get(key), backlog)
    return [rows[key] for key in sorted(rows)]


def _opening_backlog(conn: Connection, t: Tables, since: date,
                     tenant: str | None) -> dict[tuple[str, ...], int]:
    """Per dimension, created + reopened - resolved on every day before `since`."""
    v = t.volume.c
    dims = (v.tenant, v.category, v.channel, v.priority)
    query = select(*dims, func.sum(v.created + v.reopened - v.resolved)).where(
        v.day < since.isoformat()).group_by(*dims)
    if tenant:
        query = query.where(v.tenant == tenant)
    return {tuple(row[:4]): int(row[4]) for row in conn.execute(query)}


def _window_volume(
    conn: Connection, t: Tables, since: date, until: date, by: str, tenant: str | None,
) -> tuple[dict[tuple[str, ...], dict[str, int]], dict[tuple[str, ...], list[tuple[str, int]]]]:
    """The window's counts by (period, *dims), and each dimension's daily backlog
    changes (day, created + reopened - resolved) in day order."""
    v = t.volume.c
    query = select(t.volume).where(v.day >= since.isoformat(), v.day < until.isoformat())
    if tenant:
        query = query.where(v.tenant == tenant)
    counts: dict[tuple[str, ...], dict[str, int]] = defaultdict(
        lambda: {"created": 0, "resolved": 0, "closed": 0})
    deltas: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for row in conn.execute(query.order_by(v.day)):
        dims = (row.tenant, row.category, row.channel, row.priority)
        deltas[dims].append((row.day, row.created + row.reopened - row.resolved))
        period = counts[(_period(date.fromisoformat(row.day), by), *dims)]
        for name in ("created", "resolved", "closed"):
            period[name] += getattr(row, name)
    return counts, deltas


def _backlogs(opening: int, deltas: list[tuple[str, int]], ends: list[str]) -> list[int]:
    """The backlog at each period end (in order): the opening plus the changes of the
    days before it."""
    backlogs, backlog, days = [], opening, iter(deltas)
    pending = next(days, None)
    for end in ends:
        while pending is not None and pending[0] < end:
            backlog += pending[1]
            pending = next(days, None)
        backlogs.append(backlog)
    return backlogs


def _period(day: date, by: str) -> str:
    """The period (day, week from Monday, month, quarter, year) of a UTC day."""
    return periods.label(day, by)


def _period_end(period: str, by: str) -> str:
    return periods.next_start(date.fromisoformat(period), by).isoformat()


def _volume_row(key: tuple[str, ...], counts: dict[str, int] | None,
                backlog: int) -> dict[str, Any]:
    counts = counts or {"created": 0, "resolved": 0, "closed": 0}
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
    clocks met in [since, until), by tenant × plan × priority.

    Clocks are evaluated at `until`, for the candidates of `sla_report` with `until` as
    the as-of instant and met instants instead of due ones: a settled ticket's clocks
    are met (with the same counted time and priority) when its stored rows say."""
    def results() -> Iterator[tuple[Row, SlaResult]]:
        for row in _candidates(conn, t, policy_of, tenant, _Window("met_at", since, until),
                               settled_by=until):
            policy = policy_of(row)
            if policy is not None and _existed(row, until, until):
                yield row, sla_of(row, policy, until)

    return times_rows(results(), since=since, until=until)


def times_rows(results: Iterable[tuple[Row, SlaResult]], *, since: datetime,
               until: datetime, group: str | None = None) -> list[dict[str, Any]]:
    """(ticket row, clocks at `until`) → the distribution of counted minutes of the
    clocks met in [since, until), by tenant × plan × priority (by tenant × account
    with `group` "account")."""
    samples: dict[tuple[str, ...], dict[str, list[float]]] = defaultdict(
        lambda: {name: [] for name in CLOCKS})
    for row, result in results:
        for name in CLOCKS:
            clock = result.clock(name)
            if clock.met_at is not None and since <= clock.met_at < until:
                key = ((row["tenant"], row["account_id"] or "") if group == "account"
                       else (row["tenant"], row["plan"], result.priority))
                samples[key][name].append(clock.counted_seconds / 60)
    if group == "account":
        return [{"tenant": k[0], "account_id": k[1],
                 **{name: _distribution(samples[k][name]) for name in CLOCKS}}
                for k in sorted(samples)]
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


Period = tuple[str | None, datetime, datetime]  # (label, start, end): periods.windows


def sla_report_by(
    conn: Connection, t: Tables, policy_of: PolicyOf, *, periods: list[Period],
    as_of: datetime, tenant: str | None = None, group: str | None = None,
) -> list[tuple[str | None, ComplianceRow | AccountComplianceRow]]:
    """`sla_report` of each period (contiguous, in order), in one pass: the window's
    candidates found and evaluated once at `as_of`, each ticket's clocks then counted
    in the period their due instant falls in. The same rows, in the same order, as
    `sla_report` asked period by period with the same `as_of` (every period's report
    evaluates at that instant, so one evaluation serves them all; a ticket created at
    or after a period's end has no clock due in it). With `group` "account", by tenant
    × the tickets' account instead of plan × priority."""
    if not periods:
        return []
    since, until = periods[0][1], periods[-1][2]
    starts = [low for _, low, _ in periods]
    buckets: list[list[tuple[str, str, SlaResult]]] = [[] for _ in periods]
    for row in _candidates(conn, t, policy_of, tenant, _Window("due_at", since, until),
                           settled_by=as_of):
        policy = policy_of(row)
        if policy is None or not _existed(row, as_of, until):
            continue
        result = sla_of(row, policy, as_of)
        second = (row["account_id"] or "") if group == "account" else row["plan"]
        for index in _periods_of((result.clock(name).due_at for name in CLOCKS),
                                 starts, until):
            buckets[index].append((row["tenant"], second, result))
    rows_of = account_compliance_rows if group == "account" else compliance_rows
    return [(label, row) for (label, low, high), bucket in zip(periods, buckets, strict=True)
            for row in rows_of(bucket, window=(low, high))]


def times_report_by(
    conn: Connection, t: Tables, policy_of: PolicyOf, *, periods: list[Period],
    tenant: str | None = None, group: str | None = None,
) -> tuple[list[tuple[str | None, dict[str, Any]]], list[dict[str, Any]]]:
    """`times_report` of each period (contiguous, in order) and of the whole window, in
    one pass. A period's report evaluates its tickets at the period's end; a ticket
    whose SLA facts are all at or before that end is evaluated there as at the window's
    end (the same facts walked: the same met instants, counted times and priority), so
    it is evaluated once, at the window's end, and only a ticket with facts after a
    period's end is evaluated again at that end. Candidates: those of every period's
    report (a stored met instant in the window, or an SLA fact after the first period's
    end), a superset; a ticket that is no period's candidate has no clock met in any.
    The same rows, in the same order, as `times_report` asked period by period, and for
    [first start, last end)."""
    if not periods:
        return [], []
    since, until = periods[0][1], periods[-1][2]
    starts = [low for _, low, _ in periods]
    c, k = t.sla_clocks.c, t.tickets.c
    later = select(c.tenant, c.ticket_id).join_from(
        t.sla_clocks, t.tickets, (k.tenant == c.tenant) & (k.ticket_id == c.ticket_id)).where(
        c.evaluated_at > _text(periods[0][2]), k.created_at < _text(until))
    keys = (_settled(conn, t, _Window("met_at", since, until), until, tenant)
            | _keys(conn, later, c.tenant == tenant if tenant else None)
            | _foreign(conn, t, policy_of, tenant))
    whole: list[tuple[Row, SlaResult]] = []
    buckets: list[list[tuple[Row, SlaResult]]] = [[] for _ in periods]
    for row in select_many(conn, t.tickets, TICKET_KEY, sorted(keys)):
        policy = policy_of(row)
        created = datetime.fromisoformat(row["created_at"])
        if policy is None or created >= until:
            continue
        final = sla_of(row, policy, until)
        whole.append((row, final))
        last = max((datetime.fromisoformat(f["at"]) for f in row["sla_facts"]),
                   default=created)
        for index in _periods_of((final.clock(name).met_at for name in CLOCKS), starts,
                                 until):
            if periods[index][2] >= last:
                buckets[index].append((row, final))
        for index, (_, _, high) in enumerate(periods):
            if created < high < last:
                buckets[index].append((row, sla_of(row, policy, high)))
    by_period = [(label, row) for (label, low, high), bucket in
                 zip(periods, buckets, strict=True)
                 for row in times_rows(bucket, since=low, until=high, group=group)]
    return by_period, times_rows(whole, since=since, until=until, group=group)


def _periods_of(instants: Iterable[datetime | None], starts: list[datetime],
                until: datetime) -> set[int]:
    """The indexes of the periods (by their starts, up to `until`) the instants fall in."""
    found = set()
    for instant in instants:
        if instant is not None and starts[0] <= instant < until:
            found.add(bisect_right(starts, instant) - 1)
    return found
