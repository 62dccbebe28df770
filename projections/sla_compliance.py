"""SLA compliance by tenant × plan × priority, from evaluated clocks (SPEC §4).

compliance = met ÷ (met + breached). A running clock whose due instant has passed is
already `breached` in the evaluation, so the as-of rule of SPEC §4 holds here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ticketflow.domain.sla import CLOCKS, ClockResult, ClockStatus, SlaResult

PRIORITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass
class ClockTally:
    met: int = 0
    breached: int = 0
    open: int = 0  # running or paused, not yet due

    def add(self, status: ClockStatus) -> None:
        if status is ClockStatus.MET:
            self.met += 1
        elif status is ClockStatus.BREACHED:
            self.breached += 1
        elif status in (ClockStatus.RUNNING, ClockStatus.PAUSED):
            self.open += 1

    @property
    def compliance(self) -> float | None:
        decided = self.met + self.breached
        return None if decided == 0 else round(100.0 * self.met / decided, 1)

    def as_dict(self) -> dict[str, Any]:
        return {"met": self.met, "breached": self.breached, "open": self.open,
                "compliance_percent": self.compliance}


@dataclass
class ComplianceRow:
    tenant: str
    plan: str
    priority: str
    tickets: int = 0
    clocks: dict[str, ClockTally] = field(
        default_factory=lambda: {name: ClockTally() for name in CLOCKS}
    )

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "plan": self.plan, "priority": self.priority,
                "tickets": self.tickets,
                **{name: tally.as_dict() for name, tally in self.clocks.items()}}


def compliance_rows(
    results: Iterable[tuple[str, str, SlaResult]],
    window: tuple[datetime, datetime] | None = None,
) -> list[ComplianceRow]:
    """(tenant, plan, result) per ticket → rows sorted by tenant, plan, priority.

    With a window, a clock counts only if its due instant falls in [start, end), and a
    ticket only if one of its clocks does."""
    rows: dict[tuple[str, str, str], ComplianceRow] = {}
    for tenant, plan, result in results:
        clocks = [result.clock(name) for name in CLOCKS if _in(result.clock(name), window)]
        if not clocks:
            continue
        key = (tenant, plan, result.priority)
        row = rows.get(key) or ComplianceRow(*key)
        rows[key] = row
        row.tickets += 1
        for clock in clocks:
            row.clocks[clock.name].add(clock.status)
    return sorted(rows.values(), key=lambda r: (r.tenant, r.plan,
                                                PRIORITY_ORDER.get(r.priority, 9), r.priority))


@dataclass
class AccountComplianceRow:
    """Compliance of one account's tickets (`--group account`), all plans and priorities."""

    tenant: str
    account_id: str
    tickets: int = 0
    clocks: dict[str, ClockTally] = field(
        default_factory=lambda: {name: ClockTally() for name in CLOCKS}
    )

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "account_id": self.account_id, "tickets": self.tickets,
                **{name: tally.as_dict() for name, tally in self.clocks.items()}}


def account_compliance_rows(
    results: Iterable[tuple[str, str, SlaResult]],
    window: tuple[datetime, datetime] | None = None,
) -> list[AccountComplianceRow]:
    """(tenant, account id, result) per ticket → rows sorted by tenant and account, with
    the window rule of `compliance_rows`."""
    rows: dict[tuple[str, str], AccountComplianceRow] = {}
    for tenant, account_id, result in results:
        clocks = [result.clock(name) for name in CLOCKS if _in(result.clock(name), window)]
        if not clocks:
            continue
        row = rows.setdefault((tenant, account_id), AccountComplianceRow(tenant, account_id))
        row.tickets += 1
        for clock in clocks:
            row.clocks[clock.name].add(clock.status)
    return [rows[key] for key in sorted(rows)]


def _in(clock: ClockResult, window: tuple[datetime, datetime] | None) -> bool:
    if window is None:
        return clock.status is not ClockStatus.NOT_APPLICABLE
    return clock.due_at is not None and window[0] <= clock.due_at < window[1]
