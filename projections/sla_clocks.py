"""The SLA clocks read model: both clocks of every ticket, due / met / breached / paused.

Rows come from the domain's `evaluate` over the facts in the ticket row (never a
second implementation), under the policy version the ticket was created with, as of
the ticket's latest SLA fact (the events that change a clock: created, responded,
paused, resumed, resolved, reopened, priority changed, breached; a comment changes
none). Time passing alone changes no row: when a running clock falls due, the timers
record a breach event before any later event of the ticket, and that event updates it.
"""

from __future__ import annotations

from datetime import datetime

from ticketflow.domain.policy import Policy
from ticketflow.domain.sla import CLOCKS, Fact, SlaError, SlaResult, evaluate
from ticketflow.projections.tickets import Row


def sla_of(row: Row, policy: Policy, as_of: datetime) -> SlaResult:
    """The ticket row's clocks evaluated at `as_of` under `policy` (an SlaError names
    the ticket)."""
    facts = [Fact(datetime.fromisoformat(f["at"]), f["kind"], f.get("value"))
             for f in row["sla_facts"]]
    try:
        return evaluate(policy, row["plan"], row["timezone"], facts, as_of)
    except SlaError as error:
        raise SlaError(f"ticket {row['ticket_id']} ({row['tenant']}): {error}") from error


def clock_rows(row: Row, policy: Policy, as_of: datetime) -> list[Row]:
    """One row per clock for the ticket row, evaluated at `as_of`."""
    result = sla_of(row, policy, as_of)
    return [{"ticket_id": row["ticket_id"], "clock": name, "tenant": row["tenant"],
             "plan": row["plan"], "priority": result.priority,
             "evaluated_at": as_of.isoformat(), **_clock(result, name)} for name in CLOCKS]


def _clock(result: SlaResult, name: str) -> Row:
    clock = result.clock(name).as_dict()
    return {"status": clock["status"], "target_minutes": clock["target_minutes"],
            "counted_minutes": clock["counted_minutes"], "due_at": clock["due_at"],
            "met_at": clock["met_at"], "breached_at": clock["breached_at"]}
