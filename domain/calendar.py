"""Business calendars: weekly opening hours and holidays in an IANA time zone.

All instants in and out are timezone-aware and compared in UTC. Opening hours are
local wall-clock times, so a DST change moves them in UTC; the 24x7 calendar
counts real elapsed time (23 h or 25 h on a DST day).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 1440
ONE_DAY = timedelta(days=1)
#: How far `advance` looks for the end of a target before giving up: 100 years of local
#: days. Policy validation only lets through targets that fall due within half of it
#: wherever they start (`ticketflow.domain.policy.DUE_HORIZON_DAYS`).
MAX_SEARCH_DAYS = 36_524
#: Whole stretches of days (52 weeks, a week) whose open time is cached and skipped at
#: once by `advance` and `open_seconds`, so a target years away costs a few hundred
#: steps. A stretch starts on a day whose ordinal it divides: the same stretches serve
#: every ticket.
STRETCHES = (364, 7)


class CalendarError(ValueError):
    """An instant the calendar cannot give: no due instant within `MAX_SEARCH_DAYS`
    (or before the end of the datetime range)."""


@dataclass(frozen=True)
class Piece:
    """A stretch of time that is either wholly open or wholly closed."""

    start: datetime
    end: datetime
    open: bool
    reason: str  # "open", "out_of_hours" or "holiday"

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Calendar:
    """Weekly hours (Mon=0 … Sun=6, minutes from local midnight) and closed dates."""

    name: str
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()

    def __hash__(self) -> int:  # equal calendars share a name; hashing the hours is slow
        return hash(self.name)

    @cached_property
    def always_open(self) -> bool:
        return not self.holidays and all(day == ((0, MINUTES_PER_DAY),) for day in self.weekly)

    def zoned(self, tz: str | ZoneInfo) -> ZonedCalendar:
        return ZonedCalendar(self, tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz))


@dataclass(frozen=True)
class ZonedCalendar:
    """A calendar bound to the time zone its hours are read in."""

    calendar: Calendar
    tz: ZoneInfo

    @property
    def name(self) -> str:
        return self.calendar.name

    def pieces(self, start: datetime, end: datetime) -> Iterator[Piece]:
        """Cover [start, end) with maximal open / closed pieces, in order."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return
        if self.calendar.always_open:
            yield Piece(start, end, True, "open")
            return
        pending: Piece | None = None
        for piece in self._day_pieces(start, end):
            if pending and pending.open == piece.open and pending.reason == piece.reason:
                pending = Piece(pending.start, piece.end, piece.open, piece.reason)
                continue
            if pending:
                yield pending
            pending = piece
        if pending:
            yield pending

    def open_seconds(self, start: datetime, end: datetime) -> float:
        """Open time in [start, end), in seconds."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return 0.0
        if self.calendar.always_open:
            return (end - start).total_seconds()
        total = 0.0
        first, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        day = first
        while day <= last:
            # days strictly between the first and the last lie wholly in [start, end)
            stretch = self._stretch(day, last - ONE_DAY) if day > first else None
            if stretch:
                total += stretch[1]
                day += timedelta(days=stretch[0])
                continue
            for opens, closes in _day_hours(self.calendar, self.tz, day):
                if opens >= end:
                    return total
                if closes > start:
                    total += (min(closes, end) - max(opens, start)).total_seconds()
            day += ONE_DAY
        return total

    def advance(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of open time after `start` have elapsed."""
        start = _utc(start)
        if seconds <= 0:
            return start
        try:
            if self.calendar.always_open:
                return start + timedelta(seconds=seconds)
            return self._advance(start, seconds)
        except OverflowError:
            pass
        raise CalendarError(f"calendar {self.name!r}: {seconds / 60:.0f} open minutes from"
                            f" {start.isoformat()} end after the year {date.max.year}")

    def _advance(self, start: datetime, seconds: float) -> datetime:
        remaining = seconds
        first = start.astimezone(self.tz).date()
        last = first + timedelta(days=MAX_SEARCH_DAYS)
        day = first
        while day <= last:
            # a stretch after the first day lies wholly after `start`; skipped if the
            # target runs on past it (one it ends in is walked day by day)
            stretch = self._stretch(day, last, below=remaining) if day > first else None
            if stretch:
                remaining -= stretch[1]
                day += timedelta(days=stretch[0])
                continue
            for opens, closes in _day_hours(self.calendar, self.tz, day):
                if closes <= start:
                    continue
                lo = max(opens, start)
                available = (closes - lo).total_seconds()
                if available >= remaining:
                    return lo + timedelta(seconds=remaining)
                remaining -= available
            day += ONE_DAY
        raise CalendarError(f"calendar {self.name!r} has less than {seconds / 60:.0f} open"
                            f" minutes in the {MAX_SEARCH_DAYS} days from {start.isoformat()}")

    def _stretch(self, day: date, last: date, below: float | None = None
                 ) -> tuple[int, float] | None:
        """The longest cached stretch from `day` that ends by `last` (and has less open
        time than `below`): (days, open seconds), or None."""
        for days in STRETCHES:
            if day.toordinal() % days or day + timedelta(days=days - 1) > last:
                continue
            seconds = _stretch_seconds(self.calendar, self.tz, day, days)
            if below is None or seconds < below:
                return days, seconds
        return None

    def _day_pieces(self, start: datetime, end: datetime) -> Iterator[Piece]:
        day = start.astimezone(self.tz).date()
        while True:
            day_start, day_end = self._wall(day, 0), self._wall(day, MINUTES_PER_DAY)
            if day_start >= end:
                return
            for piece in self._one_day(day, day_start, day_end):
                lo, hi = max(piece.start, start), min(piece.end, end)
                if lo < hi:
                    yield Piece(lo, hi, piece.open, piece.reason)
            day += timedelta(days=1)

    def _one_day(self, day: date, day_start: datetime, day_end: datetime) -> Iterator[Piece]:
        if day in self.calendar.holidays:
            yield Piece(day_start, day_end, False, "holiday")
            return
        cursor = day_start
        for open_min, close_min in self.calendar.weekly[day.weekday()]:
            opens, closes = self._wall(day, open_min), self._wall(day, close_min)
            if cursor < opens:
                yield Piece(cursor, opens, False, "out_of_hours")
            yield Piece(opens, closes, True, "open")
            cursor = closes
        if cursor < day_end:
            yield Piece(cursor, day_end, False, "out_of_hours")

    def _wall(self, day: date, minutes: int) -> datetime:
        """Local wall-clock time `minutes` after local midnight of `day`, in UTC."""
        midnight = datetime.combine(day, time(0), tzinfo=self.tz)
        return (midnight + timedelta(minutes=minutes)).astimezone(UTC)


@lru_cache(maxsize=65536)
def _day_hours(
    calendar: Calendar, tz: ZoneInfo, day: date
) -> tuple[tuple[datetime, datetime], ...]:
    """The open intervals of one local day, in UTC (cached: days repeat across tickets)."""
    if day in calendar.holidays:
        return ()
    zoned = ZonedCalendar(calendar, tz)
    return tuple((zoned._wall(day, o), zoned._wall(day, c))
                 for o, c in calendar.weekly[day.weekday()])


@lru_cache(maxsize=65536)
def _stretch_seconds(calendar: Calendar, tz: ZoneInfo, first: date, days: int) -> float:
    """Open seconds of the `days` local days from `first`: a week from its days, a longer
    stretch from its weeks (whole seconds, so the sums are exact)."""
    if days == 7:
        return sum((closes - opens).total_seconds() for n in range(7)
                   for opens, closes in _day_hours(calendar, tz, first + timedelta(days=n)))
    return sum(_stretch_seconds(calendar, tz, first + timedelta(days=n), 7)
               for n in range(0, days, 7))


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: an instant needs a UTC offset")
    return instant.astimezone(UTC)
