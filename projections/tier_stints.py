"""The tier stints read model (`rm_tier_stints`) and tier-goal attainment (issue #19).

One row per stint of a ticket at an escalation level, folded from its events by the
domain's `fold_stints`: when it reached the level, when it left (resolved or escalated)
and its pauses for the customer. Rows hold facts only, no policy: reports measure them
with `evaluate_stint` under the ticket's policy at the report's as-of instant, so what
they say is a function of the events and the report's arguments, like the SLA reports.

Attainment per tenant × level = met ÷ measured, where measured is met + missed +
escalated (a stint that left its tier unresolved did not attain the goal); a stint
counts in the period its verdict falls in (`StintResult.decided_at`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from ticketflow.domain.policy import Policy
from ticketflow.domain.sla import SlaError
from ticketflow.domain.tiers import (
    STINT_EVENTS,
    StintResult,
    StintRow,
    StintStatus,
    evaluate_stint,
    fold_stints,
)
from ticketflow.projections.db import TICKET_KEY, Tables, select_many, upsert_many

Row = dict[str, Any]
Key = tuple[str, str]
PolicyOf = Callable[[Row], Policy | None]
Period = tuple[str | None, datetime, datetime]  # (label, start, end): periods.windows
_FACTS = ("stint", "level", "started_at", "ended_at", "ended_by", "pauses")


# -- events → rows -------------------------------------------------------------------


def project(stints: list[StintRow], ticket: Row, envelope: dict[str, Any]) -> list[StintRow]:
    """The ticket's stints after one event (`ticket`: its row after that event)."""
    return fold_stints(stints, envelope["type"], envelope["occurred_at"], envelope["data"],
                       level=ticket["level"], paused=ticket["status"] == "pending_user_input")


def read(conn: Connection, t: Tables, keys: list[Key]) -> dict[Key, list[StintRow]]:
    """The stints of these tickets, each ticket's in order."""
    found: dict[Key, list[StintRow]] = defaultdict(list)
    for row in sorted(select_many(conn, t.tier_stints, TICKET_KEY, keys),
                      key=lambda r: (r["tenant"], r["ticket_id"], r["stint"])):
        found[(row["tenant"], row["ticket_id"])].append({name: row[name] for name in _FACTS})
    return dict(found)


class Batch:
    """A batch of events' stints: those of its tickets read once, folded in memory, the
    changed ones written with the batch's other rows."""

    def __init__(self, conn: Connection, t: Tables, envelopes: list[dict[str, Any]]) -> None:
        self.t = t
        self.before = read(conn, t, sorted({(e["tenant"], e["ticket_id"]) for e in envelopes
                                            if e["type"] in STINT_EVENTS}))
        self.after = dict(self.before)

    def fold(self, ticket: Row, envelope: dict[str, Any]) -> None:
        """Apply one event (`ticket`: its ticket's row after it)."""
        if envelope["type"] in STINT_EVENTS:
            key = (envelope["tenant"], envelope["ticket_id"])
            self.after[key] = project(self.after.get(key, []), ticket, envelope)

    def write(self, conn: Connection) -> None:
        """Upsert the stints that changed (a stint is never removed)."""
        changed = [{"tenant": key[0], "ticket_id": key[1], **stint}
                   for key in sorted(self.after) for stint in self.after[key]
                   if stint not in self.before.get(key, [])]
        upsert_many(conn, self.t.tier_stints, changed, (*TICKET_KEY, "stint"))


# -- rows → attainment ---------------------------------------------------------------


def tier_rows_by(conn: Connection, t: Tables, policy_of: PolicyOf, *, periods: list[Period],
                 as_of: datetime | None = None, now: datetime | None = None,
                 tenant: str | None = None) -> list[tuple[str | None, Row]]:
    """Tier-goal attainment by tenant × level for each period (contiguous, in order): the
    stints whose verdict falls in the period, measured at `as_of` (for `report sla`) or,
    when None, at each period's end or `now` if earlier (for `report times`, whose
    periods are evaluated at their end): a goal is never missed before it is. Levels
    without a goal under the ticket's policy are left out, so a tenant without tier
    goals has no rows."""
    if not periods:
        return []
    since, until = periods[0][1], periods[-1][2]
    earliest = min(since, as_of) if as_of is not None else since
    candidates = _candidates(conn, t, since=earliest, until=until, tenant=tenant)
    tickets = {(r["tenant"], r["ticket_id"]): r for r in select_many(
        conn, t.tickets, TICKET_KEY, sorted({(s["tenant"], s["ticket_id"]) for s in candidates}))}
    found: list[tuple[str | None, Row]] = []
    measured: dict[tuple[Any, ...], tuple[StintResult, ...]] = {}
    for label, low, high in periods:
        at = as_of if as_of is not None else min(high, now or high)
        results = []
        for stint in _meeting(candidates, min(low, at), high):
            key = (stint["tenant"], stint["ticket_id"], stint["stint"], at)
            if key not in measured:  # one as-of instant for every period: measured once
                measured[key] = _measured(stint, tickets, policy_of, at)
            results += [(stint["tenant"], result) for result in measured[key]
                        if result.decided_at is not None and low <= result.decided_at < high]
        found += [(label, row) for row in attainment_rows(results)]
    return found


def _meeting(stints: list[Row], since: datetime, until: datetime) -> Iterable[Row]:
    """The stints that can be decided in [since, until) (see `_candidates`)."""
    low, high = _text(since), _text(until)
    return (s for s in stints
            if s["started_at"] < high and (s["ended_at"] is None or s["ended_at"] >= low))


def _candidates(conn: Connection, t: Tables, *, since: datetime, until: datetime,
                tenant: str | None) -> list[Row]:
    """Stints that can be decided in [since, until): a verdict falls between a stint's
    start and its end, so those started before `until` and open or ended since `since`
    (which is also before the as-of instant, when that is earlier)."""
    s = t.tier_stints.c
    query = select(t.tier_stints).where(
        s.started_at < _text(until), or_(s.ended_at.is_(None), s.ended_at >= _text(since)))
    if tenant:
        query = query.where(s.tenant == tenant)
    order = (s.tenant, s.ticket_id, s.stint)
    return [dict(r._mapping) for r in conn.execute(query.order_by(*order))]


def _measured(stint: Row, tickets: dict[Key, Row], policy_of: PolicyOf,
              as_of: datetime) -> tuple[StintResult, ...]:
    """The stint at `as_of` under its ticket's policy, if it has begun and has a goal."""
    ticket = tickets.get((stint["tenant"], stint["ticket_id"]))
    if ticket is None or datetime.fromisoformat(stint["started_at"]) > as_of:
        return ()
    policy = policy_of(ticket)
    if policy is None:
        return ()
    try:
        result = evaluate_stint(policy, ticket["timezone"], stint, as_of)
    except SlaError as error:
        raise SlaError(f"ticket {ticket['ticket_id']} ({ticket['tenant']}): {error}") from error
    return () if result is None else (result,)


def attainment_rows(results: Iterable[tuple[str, StintResult]]) -> list[Row]:
    """(tenant, measured stint) → one row per tenant × level (× goal), by tenant and
    level: counts, attainment and the median (nearest rank) of the counted minutes at
    the tier of the stints that ended (resolved or escalated by the as-of instant)."""
    groups: dict[tuple[str, str, int, str], list[StintResult]] = defaultdict(list)
    for tenant, result in results:
        groups[(tenant, result.level, result.goal_minutes, result.calendar)].append(result)
    rows = []
    for (tenant, level, goal, calendar), found in sorted(groups.items()):
        counts = {status.value: sum(1 for r in found if r.status is status)
                  for status in StintStatus}
        measured = len(found) - counts["pending"]
        ended = sorted(r.counted_seconds / 60 for r in found if r.ended)
        rows.append({
            "tenant": tenant, "level": level, "goal_minutes": goal, "calendar": calendar,
            "stints": len(found), **counts, "measured": measured,
            "attainment_percent": round(100.0 * counts["met"] / measured, 1) if measured
            else None,
            "median_minutes": round(ended[max(0, math.ceil(len(ended) / 2) - 1)], 1)
            if ended else None,
        })
    return rows


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
