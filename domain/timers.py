"""Time-driven facts (SPEC §1, §2): what the system must do, and when, for a ticket.

`due_commands(ticket, policy)` lists the commands that fall due for the ticket as it
stands: SLA breaches at the instant a clock runs out, the policy's automatic
escalations, and auto-close. It is a pure function of the ticket's state and policy;
whoever fires a due command (the timer process, `ticketflow tick`, or the application
service before a later command on the same ticket) sends it like any other service,
with `occurred_at` = the due instant and a message id derived from the ticket, the
rule and the instant, so firing twice is answered `duplicate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ticketflow.domain.chain import utc_iso
from ticketflow.domain.lifecycle import OPEN, Status
from ticketflow.domain.policy import AutoEscalation, Policy
from ticketflow.domain.sla import CLOCKS, ClockStatus, evaluating
from ticketflow.domain.ticket import Ticket

SYSTEM_ACTOR = "ticketflow-timer"
#: The timer's message ids begin so; no inbound message may use them (SPEC §8).
TIMER_ID_PREFIX = "timer:"


@dataclass(frozen=True, order=True)
class Due:
    """One command that falls due at `at` (UTC)."""

    at: datetime
    rule: str  # e.g. "breach:first_response", "escalate:tier2", "auto_close"
    command: str
    payload: dict[str, Any]

    def message_id(self, ticket_id: str) -> str:
        return f"{TIMER_ID_PREFIX}{ticket_id}:{self.rule}:{utc_iso(self.at)}"

    def envelope(self, ticket: Ticket, occurred_at: datetime) -> dict[str, Any]:
        """The inbound command, as the timer sends it."""
        return {
            "message_id": self.message_id(ticket.ticket_id), "type": self.command,
            "tenant": ticket.tenant, "ticket_id": ticket.ticket_id,
            "occurred_at": utc_iso(occurred_at),
            "actor": {"id": SYSTEM_ACTOR, "role": "system"}, "payload": self.payload,
        }


def due_commands(ticket: Ticket, policy: Policy) -> list[Due]:
    """Every command due for the ticket as it stands, earliest first; SlaError if
    its policy version cannot serve the ticket."""
    status = Status(ticket.status)
    with evaluating(policy, f"the time-driven commands of ticket {ticket.ticket_id}"):
        dues = _breaches(ticket, policy) + _escalations(ticket, policy) if status in OPEN else []
    if status is Status.RESOLVED and policy.auto_close_after and ticket.resolved_at:
        at = ticket.resolved_at + timedelta(minutes=policy.auto_close_after)
        dues.append(Due(at, "auto_close", "close", {"reason": "auto_closed"}))
    return sorted(dues, key=lambda d: (d.at, d.rule))


def fire_at(due: Due, ticket: Ticket) -> datetime:
    """When to send it: at the due instant, or (if that passed before the ticket's
    last event, e.g. a ticket from before timers ran) at that last event, so time
    never runs backwards in the stream; the payload keeps the true due instant."""
    return max(due.at, ticket.last_occurred_at)


def _breaches(ticket: Ticket, policy: Policy) -> list[Due]:
    recorded = {f["value"] for f in ticket.sla_facts if f["kind"] == "breach"}
    result = ticket.sla(policy, ticket.last_occurred_at)
    dues = []
    for name in CLOCKS:
        clock = result.clock(name)
        if name in recorded or clock.status not in (ClockStatus.RUNNING, ClockStatus.BREACHED):
            continue
        at = clock.breached_at if clock.status is ClockStatus.BREACHED else clock.due_at
        if at is not None:
            dues.append(Due(at, f"breach:{name}", "record_sla_breach",
                            {"clock": name, "due_at": utc_iso(at)}))
    return dues


def _escalations(ticket: Ticket, policy: Policy) -> list[Due]:
    current = policy.level_rank(ticket.level)
    dues = []
    for rule in policy.escalation.automatic:
        if policy.level_rank(rule.to) <= current:
            continue
        at = _escalation_due(ticket, policy, rule)
        if at is not None:
            reason = f"automatic: {rule.after} min on {rule.calendar} since {rule.since}"
            dues.append(Due(at, f"escalate:{rule.to}", "escalate",
                            {"level": rule.to, "reason": reason}))
    return dues


def _escalation_due(ticket: Ticket, policy: Policy, rule: AutoEscalation) -> datetime | None:
    if rule.priority is not None and ticket.priority != rule.priority:
        return None
    if rule.since == "created":
        anchor: datetime | None = ticket.created_at
    else:
        anchor = ticket.level_reached_at.get(rule.since.removeprefix("level:"))
    if anchor is None:
        return None
    calendar = policy.calendar_objects[rule.calendar].zoned(ticket.timezone)
    due = calendar.advance(anchor, rule.after * 60)
    if rule.priority is not None:  # due no earlier than the ticket got that priority
        due = max(due, _priority_since(ticket))
    return due


def _priority_since(ticket: Ticket) -> datetime:
    changes = [f["at"] for f in ticket.sla_facts if f["kind"] in ("created", "priority")]
    return max(changes)
