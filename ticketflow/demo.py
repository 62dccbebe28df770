"""`ticketflow demo`: a seeded, realistic workload for both tenants, then a summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ticketflow.application import TicketingApp
from ticketflow.consumers.timers import Timers
from ticketflow.domain.sla import SlaResult
from ticketflow.projections.sla_compliance import ComplianceRow, compliance_rows
from ticketflow.render import errors
from ticketflow.workload import generate_workload


@dataclass(frozen=True)
class DemoResult:
    statuses: Counter[str]
    rejections: Counter[str]
    as_of: datetime
    rows: list[ComplianceRow]


def run_demo(
    app: TicketingApp, seed: int, tickets: int, start: datetime, days: int, progress: bool
) -> DemoResult:
    commands = generate_workload(seed, tickets=tickets, start=start, days=days)
    statuses: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    ticket_ids: list[str] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("applying commands", total=len(commands))
        for command in commands:
            outcome = app.apply(json.dumps(command).encode("utf-8"))
            statuses[outcome.status] += 1
            if outcome.error:
                rejections[outcome.error["code"]] += 1
            if command["type"] == "create_ticket":
                ticket_ids.append(command["ticket_id"])
            bar.advance(task)
    as_of = start + timedelta(days=days)
    timer_fired = len(Timers(app).fire_until(as_of))
    statuses["time-driven"] += timer_fired
    rows = compliance_rows(_evaluate(app, ticket_ids, as_of))
    return DemoResult(statuses, rejections, as_of, rows)


def _evaluate(app: TicketingApp, ticket_ids: list[str], as_of: datetime) -> Any:
    for ticket_id in ticket_ids:
        ticket = app.load_ticket(ticket_id)
        result: SlaResult = ticket.sla(app.policy_of(ticket), as_of)
        yield ticket.tenant, ticket.plan, result


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeRemainingColumn(), console=errors, disable=not enabled,
    )


DEFAULT_START = datetime(2026, 10, 5, tzinfo=UTC)
