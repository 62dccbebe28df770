"""Tier goals as pure functions of a ticket's events and its policy (`Policy.tier_goals`).

A ticket's *stint* at a level starts when it reaches the level (created at it, escalated
to it, or reopened there) and ends when it is resolved or escalated out of the level.
`fold_stints` keeps a ticket's stints as plain rows (ISO-8601 instants, as the read
model stores them); `evaluate_stint` measures one against the goal of its level as of
an instant, on the goal's calendar in the ticket's time zone, with the calendar maths
of the SLA clocks (`ZonedCalendar.open_seconds` and `advance`), never the wall clock.

Like the resolution clock, a stint stops counting while the ticket waits for the
customer (`pending_user_input`); unlike it, a reopen starts a new stint, so a stint's
verdict never changes once it has ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ticketflow.domain.calendar import ZonedCalendar
from ticketflow.domain.policy import Policy
from ticketflow.domain.sla import evaluating

#: One stint as the read model keeps it: level, started_at, ended_at (None while open),
#: ended_by ("resolved" | "escalated" | None) and pauses ([start, end or None] each).
StintRow = dict[str, Any]

#: The events that start, pause, resume or end a stint.
STINT_EVENTS = frozenset({"TicketCreated", "TicketEscalated", "TicketResolved",
                          "TicketReopened", "UserInputRequested", "UserInputReceived"})
RESOLVED, ESCALATED = "resolved", "escalated"


def fold_stints(stints: list[StintRow], event_type: str, at: str, data: Mapping[str, Any],
                *, level: str | None, paused: bool) -> list[StintRow]:
    """The ticket's stints (in order) after one of its events, at `at`. `level` is the
    ticket's level after the event and `paused` whether it then waits for the customer.
    Pure: rows that change are copied. A ticket at no level (PersonalysisPro before its
    first escalation) has no stint."""
    stints = list(stints)
    last = stints[-1] if stints else None
    current = last if last is not None and last["ended_at"] is None else None
    match event_type:
        case "TicketCreated" | "TicketReopened":
            if current is None and level is not None:
                stints.append(_stint(len(stints) + 1, level, at, paused))
        case "TicketEscalated" if current is not None and current["started_at"] == at:
            # left the level the instant it reached it (critical tickets skip to tier3
            # at creation): it never sat there, so the stint is the new level's
            stints[-1] = {**current, "level": data["level"]}
        case "TicketEscalated":
            if current is not None:
                stints[-1] = _ended(current, at, ESCALATED)
            stints.append(_stint(len(stints) + 1, data["level"], at, paused))
        case "TicketResolved" if current is not None:
            stints[-1] = _ended(current, at, RESOLVED)
        case "UserInputRequested" if current is not None:
            stints[-1] = {**current, "pauses": [*current["pauses"], [at, None]]}
        case "UserInputReceived" if current is not None:
            stints[-1] = {**current, "pauses": _resumed(current["pauses"], at)}
    return stints


def _stint(number: int, level: str, at: str, paused: bool) -> StintRow:
    return {"stint": number, "level": level, "started_at": at, "ended_at": None,
            "ended_by": None, "pauses": [[at, None]] if paused else []}


def _ended(stint: StintRow, at: str, how: str) -> StintRow:
    return {**stint, "ended_at": at, "ended_by": how, "pauses": _resumed(stint["pauses"], at)}


def _resumed(pauses: list[list[str | None]], at: str) -> list[list[str | None]]:
    if pauses and pauses[-1][1] is None:
        return [*pauses[:-1], [pauses[-1][0], at]]
    return pauses


class StintStatus(StrEnum):
    MET = "met"  # resolved at the tier within its goal
    MISSED = "missed"  # resolved late, left the tier late, or still there past the goal
    ESCALATED = "escalated"  # left the tier unresolved before its goal fell due
    PENDING = "pending"  # still at the tier, its goal not yet due (or paused)


@dataclass(frozen=True)
class StintResult:
    level: str
    goal_minutes: int
    calendar: str
    status: StintStatus
    counted_seconds: float
    #: When the goal falls (or fell) due; None while paused before it.
    due_at: datetime | None
    #: When the verdict is (or will be) known: the stint's end, or its due instant if
    #: that came first; None for a paused stint not yet due. Reports count a stint in
    #: the period this falls in.
    decided_at: datetime | None
    #: Resolved or escalated by the as-of instant.
    ended: bool

    @property
    def counted_minutes(self) -> float:
        return round(self.counted_seconds / 60, 2)

    @property
    def measured(self) -> bool:
        return self.status is not StintStatus.PENDING


def evaluate_stint(policy: Policy, timezone: str, stint: StintRow,
                   as_of: datetime) -> StintResult | None:
    """The stint measured against its level's goal as of `as_of` (None when the policy
    sets that level no goal). Met exactly at the due instant is met in time; still at
    the tier at its due instant is missed (as the SLA clocks are)."""
    goal = policy.tier_goals.get(stint["level"])
    if goal is None:
        return None
    with evaluating(policy, f"the tier goal of {stint['level']!r} in {timezone}"):
        calendar = policy.calendar_objects[goal.calendar].zoned(timezone)
        return _Walk(calendar, goal.resolve_within * 60.0).result(
            stint, goal.resolve_within, as_of.astimezone(UTC))


@dataclass
class _Walk:
    """Counts a stint's open time on its calendar, noting when the goal falls due."""

    calendar: ZonedCalendar
    target: float  # seconds
    counted: float = 0.0
    due_at: datetime | None = None

    def count(self, start: datetime, end: datetime) -> None:
        stretch = self.calendar.open_seconds(start, end)
        if self.due_at is None and self.counted + stretch >= self.target:
            self.due_at = self.calendar.advance(start, self.target - self.counted)
        self.counted += stretch

    def result(self, stint: StintRow, goal: int, as_of: datetime) -> StintResult:
        ended = _instant(stint["ended_at"])
        done = ended is not None and ended <= as_of
        stop = ended if done and ended is not None else as_of
        cursor: datetime | None = _instant(stint["started_at"])
        for start, end in stint["pauses"]:
            paused_at, resumed_at = _instant(start), _instant(end)
            assert cursor is not None and paused_at is not None  # pauses are in order
            if paused_at >= stop:
                break
            self.count(cursor, paused_at)
            cursor = resumed_at if resumed_at is not None and resumed_at <= stop else None
            if cursor is None:
                break
        if cursor is not None:
            self.count(cursor, stop)
        if self.due_at is None and cursor is not None and not done:
            self.due_at = self.calendar.advance(stop, self.target - self.counted)
        status, decided = self._verdict(stint, ended if done else None, as_of)
        return StintResult(stint["level"], goal, self.calendar.name, status, self.counted,
                           self.due_at, decided, done)

    def _verdict(self, stint: StintRow, ended: datetime | None,
                 as_of: datetime) -> tuple[StintStatus, datetime | None]:
        due = self.due_at
        if ended is None:
            if due is not None and due <= as_of:
                return StintStatus.MISSED, due
            return StintStatus.PENDING, due
        late = due is not None and due < ended
        decided = due if late else ended
        if stint["ended_by"] == RESOLVED:
            return (StintStatus.MISSED if late else StintStatus.MET), decided
        return (StintStatus.MISSED if late else StintStatus.ESCALATED), decided


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)
