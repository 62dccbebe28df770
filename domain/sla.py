"""SLA clocks (SPEC §4) as pure functions of a ticket's events and its policy.

Events are first reduced to *facts* (`fact_kinds`), the few moments that matter
to the clocks: created, respond, pause, resume, resolve, reopen, priority, breach.
`evaluate` walks the facts up to an as-of instant. Between two facts a clock's regime
is constant (counting on one calendar, paused, or stopped), so each stretch is either
counted on its calendar or not counted at all. The ticket's state keeps its facts
(`ticket_state`), so the aggregate (and its snapshots) and the ticket read model carry
the same ones, and the read models call the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ticketflow.domain.calendar import ZonedCalendar
from ticketflow.domain.policy import Policy, PolicyError

#: What the calendar maths may raise under a policy it cannot serve: a CalendarError (no
#: due instant in the search horizon), an overflow, a name the policy version lacks.
EVALUATION_ERRORS = (ValueError, ArithmeticError, LookupError)


class SlaError(PolicyError):
    """A ticket's clocks cannot be evaluated under its policy version: one accepted
    before validation refused what the evaluator cannot serve. Whoever evaluates
    rejects that one command (`policy_violation`) or reports that one ticket; other
    tickets and tenants carry on."""


@contextmanager
def evaluating(policy: Policy, what: str) -> Iterator[None]:
    """Turn a failure of the calendar maths into an SlaError naming the policy."""
    try:
        yield
    except SlaError:
        raise
    except EVALUATION_ERRORS as exc:
        raise SlaError(f"policy {policy.id} {policy.version} cannot evaluate {what}:"
                       f" {exc}") from exc


class ClockStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    NOT_APPLICABLE = "not_applicable"


FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
CLOCKS = (FIRST_RESPONSE, RESOLUTION)


@dataclass(frozen=True)
class Fact:
    at: datetime
    kind: str  # created | respond | pause | resume | resolve | reopen | priority | breach
    value: str | None = None  # priority for created/priority; clock name for breach


#: (kind, value) of one SLA fact: value is the priority of created/priority, the clock
#: of a breach, None otherwise.
FactKind = tuple[str, str | None]
_RESPOND, _PAUSE, _RESUME = ("respond", None), ("pause", None), ("resume", None)
_RESOLVE, _REOPEN = ("resolve", None), ("reopen", None)


def fact_kinds(event_type: str, data: Mapping[str, Any]) -> tuple[FactKind, ...]:
    """The SLA facts one domain event contributes, as (kind, value) (most contribute
    none); each happens at the event's `occurred_at`."""
    match event_type:
        case "TicketCreated":
            return (("created", data["priority"]),)
        case "TicketAcknowledged":
            return (_RESPOND,)
        case "UserInputRequested":
            return (_RESPOND, _PAUSE)
        case "UserInputReceived":
            return (_RESUME,)
        case "TicketResolved":
            return (_RESPOND, _RESOLVE)
        case "TicketReopened":
            return (_REOPEN,)
        case "PriorityChanged":
            return (("priority", data["priority"]),)
        case "SlaBreached":
            return (("breach", data["clock"]),)
    return ()


def facts_from_event(event_type: str, at: datetime, data: Mapping[str, Any]) -> list[Fact]:
    """The SLA facts one domain event contributes (most events contribute none)."""
    return [Fact(at, kind, value) for kind, value in fact_kinds(event_type, data)]


@dataclass(frozen=True)
class LedgerEntry:
    start: datetime
    end: datetime
    counted: bool
    reason: str  # open | out_of_hours | holiday | paused | met | resolved
    calendar: str
    minutes: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(),
            "counted": self.counted, "reason": self.reason, "calendar": self.calendar,
            "minutes": round(self.minutes, 2),
        }


@dataclass(frozen=True)
class ClockResult:
    name: str
    status: ClockStatus
    target_minutes: int | None
    due_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None
    counted_seconds: float
    ledger: tuple[LedgerEntry, ...] = ()

    @property
    def counted_minutes(self) -> float:
        return round(self.counted_seconds / 60, 2)

    def as_dict(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status.value,
            "target_minutes": self.target_minutes,
            "due_at": _iso(self.due_at),
            "met_at": _iso(self.met_at),
            "breached_at": _iso(self.breached_at),
            "counted_minutes": self.counted_minutes,
        }
        if explain:
            out["ledger"] = [entry.as_dict() for entry in self.ledger]
        return out


@dataclass(frozen=True)
class SlaResult:
    priority: str
    calendar: str
    first_response: ClockResult
    resolution: ClockResult

    def clock(self, name: str) -> ClockResult:
        return self.first_response if name == FIRST_RESPONSE else self.resolution


@dataclass
class _Clock:
    """The mutable state of one clock while the facts are walked."""

    name: str
    target: float | None  # seconds
    calendar: ZonedCalendar
    since: datetime
    counted: float = 0.0
    paused: bool = False
    met_at: datetime | None = None
    breached_at: datetime | None = None
    due_at: datetime | None = None
    ledger: list[LedgerEntry] | None = field(default=None)

    @property
    def counting(self) -> bool:
        return self.met_at is None and not self.paused

    def run_until(self, until: datetime, *, met_now: bool = False, inclusive: bool = False) -> None:
        """Account for [since, until): count it, and notice a due instant passed in it.

        A clock met exactly at its due instant is met in time; a clock still unmet
        at its due instant is breached (`inclusive` for the final as-of stretch).
        The due instant is only looked for when the stretch uses up the target.
        """
        stretch = 0.0
        if self.counting:
            if until > self.since:
                stretch = self._count(self.since, until)
            # also for an empty stretch: a fact at the due instant itself
            if (self.breached_at is None and self.target is not None
                    and stretch >= self.target - self.counted):
                due = self.calendar.advance(self.since, self.target - self.counted)
                if due < until or (due == until and (inclusive or not met_now)):
                    self.breached_at = due
        if until <= self.since:
            return
        if self.counting:
            self.counted += stretch
        elif self.ledger is not None:
            reason = "paused" if self.met_at is None else self._stop_reason()
            self._log(self.since, until, False, reason, 0.0)
        self.since = until

    def _note_due(self) -> None:
        if self.target is None:
            self.due_at = None
        elif self.breached_at is not None:
            self.due_at = self.breached_at
        else:
            self.due_at = self.calendar.advance(self.since, self.target - self.counted)

    def _count(self, start: datetime, end: datetime) -> float:
        if self.ledger is None:
            return self.calendar.open_seconds(start, end)
        total = 0.0
        for piece in self.calendar.pieces(start, end):
            seconds = piece.seconds if piece.open else 0.0
            self._log(piece.start, piece.end, piece.open, piece.reason, seconds)
            total += seconds
        return total

    def _stop_reason(self) -> str:
        return "resolved" if self.name == RESOLUTION else "met"

    def _log(self, start: datetime, end: datetime, counted: bool, reason: str, sec: float) -> None:
        assert self.ledger is not None  # only called when explaining
        entry = LedgerEntry(start, end, counted, reason, self.calendar.name, sec / 60)
        last = self.ledger[-1] if self.ledger else None
        if last and (last.counted, last.reason, last.calendar) == (counted, reason, entry.calendar):
            entry = replace(last, end=end, minutes=last.minutes + entry.minutes)
            self.ledger[-1] = entry
        else:
            self.ledger.append(entry)

    def result(self, as_of: datetime) -> ClockResult:
        # A breached clock is due at its breach, also when it breached while not counting
        # (a priority change while paused) and the last due noted is a stale projection.
        if self.counting or self.breached_at is not None:
            self._note_due()
        status = self._status(as_of)
        due = self.due_at if status is not ClockStatus.PAUSED else None
        return ClockResult(
            self.name, status, None if self.target is None else int(self.target // 60),
            due if self.target is not None else None, self.met_at,
            self.breached_at, self.counted, tuple(self.ledger or ()),
        )

    def _status(self, as_of: datetime) -> ClockStatus:
        if self.target is None:
            return ClockStatus.NOT_APPLICABLE
        if self.breached_at is not None and self.breached_at <= as_of:
            return ClockStatus.BREACHED
        if self.met_at is not None:
            return ClockStatus.MET
        return ClockStatus.PAUSED if self.paused else ClockStatus.RUNNING


def evaluate(
    policy: Policy,
    plan: str,
    timezone: str,
    facts: Iterable[Fact],
    as_of: datetime,
    *,
    explain: bool = False,
) -> SlaResult:
    """Both clocks of a ticket as of `as_of`, from its facts (in occurrence order).
    SlaError if the policy cannot serve them (the calendar maths failed)."""
    with evaluating(policy, f"the SLA clocks of plan {plan!r} in {timezone}"):
        return _evaluate(policy, plan, timezone, facts, as_of, explain=explain)


def _evaluate(
    policy: Policy, plan: str, timezone: str, facts: Iterable[Fact], as_of: datetime, *,
    explain: bool,
) -> SlaResult:
    # All instants in UTC: an instant in a repeated autumn hour (fold=1) never equals
    # one in another zone (PEP 495), so local offsets would make equal results differ.
    as_of = as_of.astimezone(UTC)
    ordered = [f if f.at.tzinfo is UTC else replace(f, at=f.at.astimezone(UTC))
               for f in facts if f.at <= as_of]
    if not ordered or ordered[0].kind != "created":
        raise ValueError("SLA facts must start with the ticket's creation")
    created = ordered[0]
    priority = created.value or ""
    calendar = _calendar(policy, plan, priority, timezone)
    clocks = {
        FIRST_RESPONSE: _Clock(FIRST_RESPONSE, policy.first_response_minutes(plan, priority) * 60.0,
                               calendar, created.at, ledger=[] if explain else None),
        RESOLUTION: _Clock(RESOLUTION, _seconds(policy.resolution_minutes(priority)),
                           calendar, created.at, ledger=[] if explain else None),
    }
    # Met by any fact at an instant, not only the first there: TicketResolved gives
    # respond then resolve, and a resolve exactly at the due instant is in time.
    met = {(f.at, name) for f in ordered for name in CLOCKS if _meets(f, name)}
    for fact in ordered[1:]:
        for clock in clocks.values():
            clock.run_until(fact.at, met_now=(fact.at, clock.name) in met)
        counting = [clock for clock in clocks.values() if clock.counting]
        priority = _apply(fact, clocks, policy, plan, priority, timezone, met)
        for clock in counting:
            if not clock.counting:  # met or paused here: its due instant as of now
                clock._note_due()
    for clock in clocks.values():
        clock.run_until(as_of, inclusive=True)
    return SlaResult(
        priority, clocks[FIRST_RESPONSE].calendar.name,
        clocks[FIRST_RESPONSE].result(as_of), clocks[RESOLUTION].result(as_of),
    )


def _meets(fact: Fact, clock: str) -> bool:
    return (fact.kind == "respond" and clock == FIRST_RESPONSE) or (
        fact.kind == "resolve" and clock == RESOLUTION
    )


def _apply(
    fact: Fact, clocks: dict[str, _Clock], policy: Policy, plan: str, priority: str, tz: str,
    met: set[tuple[datetime, str]],
) -> str:
    """Change the clocks' regime at a fact; returns the priority in force after it."""
    first, resolution = clocks[FIRST_RESPONSE], clocks[RESOLUTION]
    match fact.kind:
        case "respond":
            first.met_at = first.met_at or fact.at
        case "resolve":
            resolution.met_at = resolution.met_at or fact.at
            first.paused = resolution.paused = False
        case "reopen":
            resolution.met_at = None
        case "pause" | "resume":
            for clock in clocks.values():
                clock.paused = fact.kind == "pause"
        case "breach":
            clock = clocks[fact.value or ""]
            clock.breached_at = clock.breached_at or fact.at
        case "priority":
            priority = fact.value or priority
            _retarget(first, policy.first_response_minutes(plan, priority) * 60.0, fact.at,
                      met_now=(fact.at, FIRST_RESPONSE) in met)
            _retarget(resolution, _seconds(policy.resolution_minutes(priority)), fact.at,
                      met_now=(fact.at, RESOLUTION) in met)
            calendar = _calendar(policy, plan, priority, tz)
            for clock in clocks.values():
                clock.calendar = calendar
    return priority


def _retarget(clock: _Clock, target: float | None, at: datetime, *, met_now: bool) -> None:
    """New target from creation, counted time kept: may breach at once.

    A target used up exactly makes `at` the due instant, so a clock met at that same
    instant (a response later in the same batch of facts) is met in time.
    """
    clock.target = target
    unmet = clock.met_at is None and clock.breached_at is None
    if unmet and target is not None and (
        clock.counted > target or (clock.counted == target and not met_now)
    ):
        clock.breached_at = at


def _calendar(policy: Policy, plan: str, priority: str, timezone: str) -> ZonedCalendar:
    return policy.calendar_objects[policy.calendar_name(plan, priority)].zoned(timezone)


def _seconds(minutes: int | None) -> float | None:
    return None if minutes is None else minutes * 60.0


def _iso(instant: datetime | None) -> str | None:
    """Instants are shown in UTC (SPEC §4: UTC in storage, the zone only on display)."""
    return None if instant is None else instant.astimezone(UTC).isoformat()
