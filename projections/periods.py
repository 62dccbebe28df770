"""Report periods (SPEC §12): day, week (starting Monday), month, quarter, year.

A period is named by its first day (`2026-11-16` for that week, `2026-10-01` for
2026Q4). Periods are calendar periods of a time zone (UTC unless a report is given
another): `bounds` turns one into the instants it spans, so a local day across a
daylight-saving change is 23 or 25 hours long, and the week of a year's end is one
week even though it straddles two years.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

BY = ("day", "week", "month", "quarter", "year")


def start_of(day: date, by: str) -> date:
    """The first day of the period `day` falls in."""
    if by == "day":
        return day
    if by == "week":
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    if by == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if by == "year":
        return date(day.year, 1, 1)
    raise ValueError(f"unknown period {by!r}; one of {', '.join(BY)}")


def next_start(start: date, by: str) -> date:
    """The first day of the period after the one starting on `start`."""
    if by == "day":
        return start + timedelta(days=1)
    if by == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[by]
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def label(start: date, by: str) -> str:
    """How the period is named in a report: its first day (ISO)."""
    return start_of(start, by).isoformat()


def bounds(start: date, by: str, zone: tzinfo = UTC) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next period), in UTC."""
    return (_midnight(start, zone), _midnight(next_start(start, by), zone))


def period_of(instant: datetime, by: str, zone: tzinfo = UTC) -> str:
    """The label of the period (in `zone`) an instant falls in."""
    return label(instant.astimezone(zone).date(), by)


def _midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local day (00:00, or the first valid time after a gap)."""
    local = datetime.combine(day, time(0), tzinfo=zone)
    return local.astimezone(UTC)


_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")


def quarter(text: str) -> tuple[date, date]:
    """`2026Q4` → (2026-10-01, 2027-01-01)."""
    found = _QUARTER.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a quarter; write it like 2026Q4")
    start = date(int(found.group(1)), 3 * int(found.group(2)) - 2, 1)
    return start, next_start(start, "quarter")


def year(text: str) -> tuple[date, date]:
    """`2026` → (2026-01-01, 2027-01-01)."""
    if not re.fullmatch(r"\d{4}", text.strip()):
        raise ValueError(f"{text!r} is not a year; write it like 2026")
    start = date(int(text), 1, 1)
    return start, next_start(start, "year")


def windows(since: datetime, until: datetime, by: str,
            zone: tzinfo = UTC) -> list[tuple[str, datetime, datetime]]:
    """The periods (in `zone`) that meet [since, until), each cut to it: (label, start,
    end) in UTC, in order. The first and last may be partial."""
    found: list[tuple[str, datetime, datetime]] = []
    start = start_of(since.astimezone(zone).date(), by)
    while True:
        low, high = bounds(start, by, zone)
        if low >= until:
            return found
        if high > since:
            found.append((start.isoformat(), max(low, since), min(high, until)))
        start = next_start(start, by)
