"""A naive reference model of business calendars and SLA clocks, for the tests only.

It is deliberately simple and shares no code with `domain/calendar.py` or
`domain/sla.py`: policies are read straight from the TOML files with `tomllib`,
and time is walked one UTC minute at a time. Each minute is converted to local
wall time with `zoneinfo` and looked up in the weekly hours and the holiday list.
Every boundary of the shipped calendars is a whole local minute and every UTC
offset used here is a whole number of minutes, so a calendar is either open or
closed for a whole UTC minute; facts may fall inside a minute, so the SLA walk
splits a minute at a fact (second precision).

Instants are whole seconds; `at` and `as_of` with microseconds are refused.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

POLICY_DIR = Path(__file__).resolve().parents[2] / "domain" / "policies"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DAYS = 3660
MINUTES_PER_DAY = 1440

OUT_OF_HOURS, OPEN, HOLIDAY = 0, 1, 2
REASONS = {OUT_OF_HOURS: "out_of_hours", OPEN: "open", HOLIDAY: "holiday"}


# --- policy data, read straight from TOML -------------------------------------------


def load_policy(policy_id: str) -> dict[str, Any]:
    """The raw TOML data of a shipped policy."""
    with (POLICY_DIR / f"{policy_id}.toml").open("rb") as handle:
        return tomllib.load(handle)


def duration_minutes(value: object) -> int:
    """'30m' → 30, '4h' → 240, '1d' → 1440, '1h30m' → 90; an int is minutes."""
    if isinstance(value, int):
        return value
    units = {"d": 1440, "h": 60, "m": 1}
    parts = re.findall(r"(\d+)([dhm])", str(value))
    assert parts and "".join(n + u for n, u in parts) == str(value), value
    return sum(int(n) * units[u] for n, u in parts)


def _clock_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class OracleCalendar:
    """Weekly windows (Mon=0 … Sun=6) in local minutes [open, close), closed dates."""

    name: str
    windows: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> OracleCalendar:
        hours = spec.get("hours", {})
        windows = []
        for day in DAYS:
            day_windows = []
            for text in hours.get(day, []):
                start, end = text.split("-")
                day_windows.append((_clock_minutes(start), _clock_minutes(end)))
            windows.append(tuple(day_windows))
        holidays = frozenset(
            h if isinstance(h, date) else date.fromisoformat(str(h))
            for h in spec.get("holidays", [])
        )
        return cls(name, tuple(windows), holidays)


@cache
def _week(windows: tuple[tuple[tuple[int, int], ...], ...]) -> tuple[bytes, ...]:
    """Per weekday, the state of each local minute of the day (holidays aside)."""
    return tuple(
        bytes(OPEN if any(a <= m < b for a, b in day) else OUT_OF_HOURS
              for m in range(MINUTES_PER_DAY))
        for day in windows
    )


def calendars(policy: Mapping[str, Any]) -> dict[str, OracleCalendar]:
    return {name: OracleCalendar.from_spec(name, spec)
            for name, spec in policy["calendars"].items()}


def calendar_name(policy: Mapping[str, Any], plan: str, priority: str) -> str:
    mapping = policy["plans"][plan]["calendar"]
    return str(mapping[priority] if priority in mapping else mapping["default"])


def first_response_minutes(policy: Mapping[str, Any], plan: str, priority: str) -> int:
    spec = policy["plans"][plan]
    source = spec.get("priority_fallback", {}).get(priority, priority)
    return duration_minutes(spec["first_response"][source])


def resolution_minutes(policy: Mapping[str, Any], priority: str) -> int | None:
    value = policy.get("resolution", {}).get(priority)
    return None if value is None else duration_minutes(value)


# --- time ------------------------------------------------------------------------------


def to_seconds(instant: datetime) -> int:
    """Whole seconds since the Unix epoch (the instant must carry an offset)."""
    assert instant.tzinfo is not None, "an instant needs a UTC offset"
    delta = instant - EPOCH
    assert delta.microseconds == 0, "the oracle works in whole seconds"
    return delta.days * 86400 + delta.seconds


def to_instant(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@cache
def _local_minutes(tz_name: str, day: int) -> tuple[tuple[date, int, int], ...]:
    """(local date, weekday, local minute of day) of each minute of UTC day `day`."""
    zone = ZoneInfo(tz_name)
    first = day * 1440
    out = []
    for i in range(1440):
        local = datetime.fromtimestamp((first + i) * 60, zone)
        out.append((local.date(), local.weekday(), local.hour * 60 + local.minute))
    return tuple(out)


@cache
def _utc_day(calendar: OracleCalendar, tz_name: str, day: int) -> bytes:
    """The state of each of the 1440 UTC minutes of UTC day `day` (days since epoch):
    holiday if its local date is a holiday, else open if its local minute of the day
    lies in one of that weekday's windows [open, close), else out of hours."""
    week, holidays = _week(calendar.windows), calendar.holidays
    return bytes(HOLIDAY if local_date in holidays else week[weekday][minute]
                 for local_date, weekday, minute in _local_minutes(tz_name, day))


def states(calendar: OracleCalendar, tz_name: str, first: int, last: int) -> bytes:
    """The states of the UTC minutes first … last-1 (minutes since the epoch)."""
    if last <= first:
        return b""
    days = range(first // 1440, (last - 1) // 1440 + 1)
    joined = b"".join(_utc_day(calendar, tz_name, day) for day in days)
    offset = days[0] * 1440
    return joined[first - offset:last - offset]


def minute_states(calendar: OracleCalendar, tz_name: str) -> Callable[[int], int]:
    """Look up the state of the UTC minute [minute*60, minute*60+60)."""
    days: dict[int, bytes] = {}

    def state(minute: int) -> int:
        day, index = divmod(minute, 1440)
        mask = days.get(day)
        if mask is None:
            mask = days[day] = _utc_day(calendar, tz_name, day)
        return mask[index]

    return state


def _minutes(start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(minute, lo, hi): [start, end) cut at UTC minute boundaries."""
    cursor = start
    while cursor < end:
        minute = cursor // 60
        hi = min(end, minute * 60 + 60)
        yield minute, cursor, hi
        cursor = hi


def _split(start: int, end: int) -> list[tuple[int, int, int]]:
    """[start, end) as (first minute, last minute + 1, seconds per minute) blocks:
    a partial first minute, the whole minutes, a partial last minute."""
    if end <= start:
        return []
    first_whole, last_whole = -(-start // 60), end // 60
    if first_whole > last_whole:  # inside one minute
        return [(start // 60, start // 60 + 1, end - start)]
    blocks = [(start // 60, first_whole, first_whole * 60 - start)]
    blocks.append((first_whole, last_whole, 60))
    blocks.append((last_whole, last_whole + 1, end - last_whole * 60))
    return [(a, b, per) for a, b, per in blocks if a < b and per > 0]


# --- calendar ----------------------------------------------------------------------------


def open_seconds(calendar: OracleCalendar, tz_name: str, start: datetime, end: datetime) -> int:
    """Open seconds in [start, end): open minutes counted one by one."""
    total = 0
    for first, last, per_minute in _split(to_seconds(start), to_seconds(end)):
        total += states(calendar, tz_name, first, last).count(OPEN) * per_minute
    return total


def advance_seconds(calendar: OracleCalendar, tz_name: str, start: int, seconds: int) -> int:
    """First instant at which `seconds` of open time after `start` have elapsed."""
    remaining = seconds
    cursor = start
    limit = start + MAX_DAYS * 86400
    state = minute_states(calendar, tz_name)
    while remaining > 0:
        assert cursor < limit, f"{calendar.name}: no open time"
        minute = cursor // 60
        if cursor % 86400 == 0:  # a whole UTC day: skip it if it cannot hold the end
            day_open = states(calendar, tz_name, minute, minute + 1440).count(OPEN) * 60
            if day_open < remaining:
                remaining -= day_open
                cursor += 86400
                continue
        minute_end = minute * 60 + 60
        if state(minute) == OPEN:
            available = minute_end - cursor
            if available >= remaining:
                return cursor + remaining
            remaining -= available
        cursor = minute_end
    return cursor


def advance(calendar: OracleCalendar, tz_name: str, start: datetime, seconds: int) -> datetime:
    return to_instant(advance_seconds(calendar, tz_name, to_seconds(start), seconds))


def runs(
    calendar: OracleCalendar, tz_name: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """Maximal runs of one state over [start, end): (from, to, reason)."""
    out: list[list[Any]] = []
    lo, hi = to_seconds(start), to_seconds(end)
    cursor = lo
    for first, last, per_minute in _split(lo, hi):
        for state, group in groupby(states(calendar, tz_name, first, last)):
            step = sum(1 for _ in group) * per_minute
            if out and out[-1][2] == REASONS[state]:
                out[-1][1] += step
            else:
                out.append([cursor, cursor + step, REASONS[state]])
            cursor += step
    return [(to_instant(a), to_instant(b), reason) for a, b, reason in out]


# --- SLA clocks --------------------------------------------------------------------------


class FactLike(Protocol):
    at: datetime
    kind: str
    value: str | None


@dataclass
class OracleClock:
    name: str
    target: int | None  # seconds
    calendar: OracleCalendar
    counted: int = 0
    paused: bool = False
    met_at: int | None = None
    breached_at: int | None = None
    #: The due instant in force when the clock was met while counting.
    met_due: int | None = None

    @property
    def counting(self) -> bool:
        return self.met_at is None and not self.paused

    @property
    def overdue(self) -> bool:
        """Unmet, not yet breached, and its counted time has reached the target."""
        return (self.met_at is None and self.breached_at is None and self.target is not None
                and self.counted >= self.target)


@dataclass(frozen=True)
class OracleClockResult:
    status: str
    target_minutes: int | None
    due_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None
    counted_seconds: int
    met_due: datetime | None


@dataclass(frozen=True)
class OracleResult:
    priority: str
    calendar: str
    first_response: OracleClockResult
    resolution: OracleClockResult

    def clock(self, name: str) -> OracleClockResult:
        return self.first_response if name == "first_response" else self.resolution


MEETS = {"respond": "first_response", "resolve": "resolution"}


class _Walk:
    """Walks a ticket's facts, minute by minute, up to an as-of instant."""

    def __init__(self, policy: Mapping[str, Any], plan: str, tz_name: str, priority: str):
        self.policy, self.plan, self.tz = policy, plan, tz_name
        self.cals = calendars(policy)
        self.states = {name: minute_states(cal, tz_name) for name, cal in self.cals.items()}
        self.priority = priority
        cal = self.cals[calendar_name(policy, plan, priority)]
        first = first_response_minutes(policy, plan, priority) * 60
        resolution = resolution_minutes(policy, priority)
        self.clocks = {
            "first_response": OracleClock("first_response", first, cal),
            "resolution": OracleClock(
                "resolution", None if resolution is None else resolution * 60, cal),
        }

    def step(self, lo: int, hi: int) -> None:
        """Count [lo, hi), which lies inside one UTC minute and holds no fact."""
        for clock in self.clocks.values():
            if not clock.counting or self.states[clock.calendar.name](lo // 60) != OPEN:
                continue
            gain = hi - lo
            target = clock.target
            if (target is not None and clock.breached_at is None
                    and clock.counted < target < clock.counted + gain):
                clock.breached_at = lo + (target - clock.counted)  # due strictly inside
            clock.counted += gain

    def instant(self, at: int, facts: list[tuple[str, str | None]]) -> None:
        """At an instant: a clock unmet at its due instant breaches, then the facts apply
        in order; a clock they leave unmet with its target used up (a reopen, a smaller
        target after a priority change) breaches at this instant too.

        A clock met by any fact at the instant counts as met at it (met exactly at the
        due instant is met in time); a priority change that leaves less target than
        the time already counted breaches the clock before a response that follows it.
        """
        met_here = {MEETS[kind] for kind, _ in facts if kind in MEETS}
        for clock in self.clocks.values():
            if clock.overdue and clock.name not in met_here:
                clock.breached_at = at
        for kind, value in facts:
            self.apply(at, kind, value)
            if kind == "priority":
                for clock in self.clocks.values():
                    if clock.overdue and (clock.name not in met_here
                                          or clock.counted > (clock.target or 0)):
                        clock.breached_at = at
        for clock in self.clocks.values():
            if clock.overdue:
                clock.breached_at = at

    def apply(self, at: int, kind: str, value: str | None) -> None:
        first, resolution = self.clocks["first_response"], self.clocks["resolution"]
        if kind in MEETS:
            self.meet(self.clocks[MEETS[kind]], at)
        if kind == "resolve":
            first.paused = resolution.paused = False
        elif kind == "reopen":
            resolution.met_at = resolution.met_due = None
        elif kind in ("pause", "resume"):
            first.paused = resolution.paused = kind == "pause"
        elif kind == "breach" and value is not None:
            clock = self.clocks[value]
            clock.breached_at = at if clock.breached_at is None else clock.breached_at
        elif kind == "priority" and value is not None:
            self.reprioritise(value)

    def meet(self, clock: OracleClock, at: int) -> None:
        if clock.met_at is not None:
            return
        if clock.counting and clock.target is not None:
            remaining = max(clock.target - clock.counted, 0)
            clock.met_due = advance_seconds(clock.calendar, self.tz, at, remaining)
        clock.met_at = at

    def reprioritise(self, priority: str) -> None:
        self.priority = priority
        cal = self.cals[calendar_name(self.policy, self.plan, priority)]
        resolution = resolution_minutes(self.policy, priority)
        targets = {
            "first_response": first_response_minutes(self.policy, self.plan, priority) * 60,
            "resolution": None if resolution is None else resolution * 60,
        }
        for name, clock in self.clocks.items():
            clock.target = targets[name]
            clock.calendar = cal

    def result(self, clock: OracleClock, as_of: int) -> OracleClockResult:
        due: int | None = None
        if clock.target is None:
            status = "not_applicable"
        elif clock.breached_at is not None:
            status, due = "breached", clock.breached_at
        elif clock.met_at is not None:
            status, due = "met", clock.met_due
        elif clock.paused:
            status = "paused"
        else:
            status = "running"
            due = advance_seconds(clock.calendar, self.tz, as_of, clock.target - clock.counted)

        def instant(value: int | None) -> datetime | None:
            return None if value is None else to_instant(value)

        return OracleClockResult(
            status, None if clock.target is None else clock.target // 60, instant(due),
            instant(clock.met_at), instant(clock.breached_at), clock.counted,
            instant(clock.met_due),
        )


def simulate(
    policy: Mapping[str, Any], plan: str, tz_name: str, facts: Iterable[FactLike],
    as_of: datetime,
) -> OracleResult:
    """Both clocks as of `as_of`, by walking time minute by minute from creation."""
    end = to_seconds(as_of)
    timeline = [(to_seconds(f.at), f.kind, f.value) for f in facts if f.at <= as_of]
    assert timeline and timeline[0][1] == "created", "facts start with the creation"
    created, _, priority = timeline[0]
    walk = _Walk(policy, plan, tz_name, priority or "")
    at_instant: dict[int, list[tuple[str, str | None]]] = {}
    for at, kind, value in timeline[1:]:
        at_instant.setdefault(at, []).append((kind, value))
    stops = sorted({*at_instant, end})
    cursor = created
    walk.instant(cursor, at_instant.get(cursor, []))
    for stop in stops:
        for _, lo, hi in _minutes(cursor, stop):
            walk.step(lo, hi)
            walk.instant(hi, at_instant.get(hi, []) if hi == stop else [])
        cursor = max(cursor, stop)
    return OracleResult(
        walk.priority,
        walk.clocks["first_response"].calendar.name,
        walk.result(walk.clocks["first_response"], end),
        walk.result(walk.clocks["resolution"], end),
    )
