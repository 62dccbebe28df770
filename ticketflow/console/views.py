"""Shapes the console draws, made from the query layer's answers (no rule restated):
an SLA clock's ledger as a band of intervals, what changed between two states, and
instants in the ticket's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

#: What each ledger reason is called on the band (SPEC §4 via `sla --explain`).
REASONS = {"open": "counted", "out_of_hours": "out of hours", "holiday": "holiday",
           "paused": "paused", "met": "met", "resolved": "resolved"}
#: The reasons a clock has stopped for good (until a reopen).
STOPPED = frozenset({"met", "resolved"})


@dataclass(frozen=True)
class Segment:
    start: str
    end: str
    counted: bool
    reason: str
    label: str
    minutes: float
    share: float  # percent of the band's width

    @property
    def description(self) -> str:
        counted = "counted" if self.counted else "not counted"
        return (f"{self.label}: {self.start} to {self.end}, {counted}"
                f" ({self.minutes:g} counted min)")


def band(ledger: list[dict[str, Any]], zone: str) -> list[Segment]:
    """The ledger's intervals, each its share of the time the ledger spans (at least
    a sliver, so that a short interval can still be pointed at and focused; a stopped
    clock's last interval at most a tenth)."""
    if not ledger:
        return []
    spans = [(instant(e["to"]) - instant(e["from"])).total_seconds() for e in ledger]
    before_stop = sum(spans[:-1])
    if ledger[-1]["reason"] in STOPPED and before_stop > 0:
        # a stopped clock's last interval runs to the as-of instant, however far: it is
        # drawn at most a tenth of the band (its reason gives its real dates)
        spans[-1] = min(spans[-1], before_stop / 9)
    whole = sum(spans) or 1.0
    return [Segment(local(e["from"], zone), local(e["to"], zone), bool(e["counted"]),
                    e["reason"], REASONS.get(e["reason"], e["reason"]), e["minutes"],
                    round(max(0.5, 100 * span / whole), 3))
            for e, span in zip(ledger, spans, strict=True)]


def local(text: str | None, zone: str) -> str:
    """An ISO-8601 instant in the ticket's zone, to the minute, with its offset."""
    if not text:
        return "—"
    try:
        at = instant(text).astimezone(ZoneInfo(zone))
    except (KeyError, ValueError):
        return text
    return at.strftime("%Y-%m-%d %H:%M %z")


def changed(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for each field of the state that differs."""
    if before is None:
        return []
    skip = {"version", "last_event_at"}
    return [(name, before.get(name), value) for name, value in after.items()
            if name not in skip and before.get(name) != value]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
