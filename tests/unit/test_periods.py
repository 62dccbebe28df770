"""Report periods (SPEC §12): weeks start on Monday, months, quarters and years are
calendar ones, and a zone's periods follow its daylight-saving changes."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ticketflow.projections.periods import (
    BY,
    bounds,
    label,
    next_start,
    period_of,
    quarter,
    start_of,
    windows,
    year,
)
from ticketflow.settings import Bound, zone

NEW_YORK, BERLIN = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")


def test_a_week_across_a_year_end_is_one_week_starting_monday() -> None:
    assert start_of(date(2027, 1, 1), "week") == date(2026, 12, 28)  # a Friday
    assert start_of(date(2026, 12, 28), "week") == date(2026, 12, 28)  # the Monday itself
    assert start_of(date(2027, 1, 3), "week") == date(2026, 12, 28)  # the Sunday after
    assert start_of(date(2027, 1, 4), "week") == date(2027, 1, 4)
    assert next_start(date(2026, 12, 28), "week") == date(2027, 1, 4)


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 1, 1), date(2026, 1, 1)), (date(2026, 3, 31), date(2026, 1, 1)),
    (date(2026, 4, 1), date(2026, 4, 1)), (date(2026, 9, 30), date(2026, 7, 1)),
    (date(2026, 12, 31), date(2026, 10, 1)),
])
def test_quarters_start_in_january_april_july_october(day: date, expected: date) -> None:
    assert start_of(day, "quarter") == expected


def test_months_quarters_and_years_roll_over_a_year_end() -> None:
    assert next_start(date(2026, 12, 1), "month") == date(2027, 1, 1)
    assert next_start(date(2026, 10, 1), "quarter") == date(2027, 1, 1)
    assert next_start(date(2026, 11, 1), "quarter") == date(2027, 2, 1)  # from any start
    assert next_start(date(2026, 1, 1), "year") == date(2027, 1, 1)
    assert [label(date(2026, 2, 17), by) for by in BY] == [
        "2026-02-17", "2026-02-16", "2026-02-01", "2026-01-01", "2026-01-01"]


def test_quarter_and_year_names_are_read_strictly() -> None:
    assert quarter("2026Q4") == (date(2026, 10, 1), date(2027, 1, 1))
    assert quarter("2027q1") == (date(2027, 1, 1), date(2027, 4, 1))
    assert year("2026") == (date(2026, 1, 1), date(2027, 1, 1))
    for bad in ("2026Q5", "2026Q0", "Q4", "2026-Q4", "26Q4", "2026Q4x"):
        with pytest.raises(ValueError, match="2026Q4"):
            quarter(bad)
    with pytest.raises(ValueError, match="2026"):
        year("twenty")


def test_a_local_day_across_daylight_saving_is_23_or_25_hours() -> None:
    spring = bounds(date(2026, 3, 8), "day", NEW_YORK)
    autumn = bounds(date(2026, 11, 1), "day", NEW_YORK)
    assert spring == (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC))
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    assert bounds(date(2026, 3, 8), "day") == (datetime(2026, 3, 8, tzinfo=UTC),
                                               datetime(2026, 3, 9, tzinfo=UTC))


def test_a_local_week_across_daylight_saving_is_seven_local_days() -> None:
    low, high = bounds(date(2026, 3, 23), "week", BERLIN)  # Berlin moves on 29 March
    assert (low, high) == (datetime(2026, 3, 22, 23, tzinfo=UTC),
                           datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert high - low == timedelta(days=7, hours=-1)


def test_an_instant_belongs_to_its_zones_period() -> None:
    instant = datetime(2026, 1, 1, 3, tzinfo=UTC)  # 22:00 on 31 December in New York
    assert period_of(instant, "year") == "2026-01-01"
    assert period_of(instant, "year", NEW_YORK) == "2025-01-01"
    assert period_of(instant, "quarter", NEW_YORK) == "2025-10-01"
    assert period_of(instant, "week", NEW_YORK) == "2025-12-29"
    assert period_of(instant, "week") == "2025-12-29"  # a Thursday in the same week


def test_windows_cut_a_report_window_into_its_periods() -> None:
    since, until = datetime(2026, 10, 15, tzinfo=UTC), datetime(2027, 1, 10, tzinfo=UTC)
    assert windows(since, until, "month") == [
        ("2026-10-01", since, datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01", datetime(2027, 1, 1, tzinfo=UTC), until),
    ]
    local = windows(since, until, "quarter", NEW_YORK)
    assert [(name, high) for name, _, high in local] == [
        ("2026-10-01", datetime(2027, 1, 1, 5, tzinfo=UTC)), ("2027-01-01", until)]
    assert windows(since, since, "day") == []


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "a" * 300, "../../etc/passwd",
                                  "x\x00y", ""])
def test_a_name_that_is_no_iana_zone_is_refused_with_why(name: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not an IANA time zone"):
        zone(name)


def test_a_reports_bare_date_is_its_midnight_in_the_zone_and_an_instant_stays() -> None:
    assert zone("UTC") is UTC and zone("Z") is UTC
    day = Bound.parse("2026-03-29")  # Europe's spring change: the day is 23 hours
    berlin = zone("Europe/Berlin")
    assert day.at(berlin) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert day.date_in(berlin) == date(2026, 3, 29)
    instant = Bound.parse("2026-03-29T00:30:00Z")
    assert instant.at(berlin) == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert instant.date_in(zone("America/New_York")) == date(2026, 3, 28)
