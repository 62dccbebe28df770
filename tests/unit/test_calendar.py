"""Business calendars (SPEC §2): open time and due instants in the account's time zone.

The domain calendar is checked against `tests/support/oracle.py`, a naive minute-by-minute
model that reads the hours straight from the policy TOML. Random intervals lean on the
DST weeks of America/New_York (2026-03-08, 2026-11-01) and Europe/Berlin (2026-03-29,
2026-10-25), where opening hours stay local and so move by an hour in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import oracle
from tests.support.instants import (
    BERLIN,
    DAY,
    DST_CHANGES,
    HOUR,
    NEW_YORK,
    ZONES,
    instants,
    offsets,
)
from ticketflow.domain.calendar import MAX_SEARCH_DAYS, Calendar, CalendarError, ZonedCalendar
from ticketflow.domain.policy import CalendarSpec, shipped_policies

POLICIES = shipped_policies()
RAW = {pid: oracle.load_policy(pid) for pid in ("personalysispro", "growgrebuddy")}
SHIPPED = [
    ("personalysispro", "business"),
    ("personalysispro", "extended"),
    ("personalysispro", "always"),
    ("growgrebuddy", "frontline"),
]
def shipped(policy_id: str, name: str, tz: str) -> tuple[ZonedCalendar, oracle.OracleCalendar]:
    domain = POLICIES[policy_id].calendar_objects[name].zoned(tz)
    return domain, oracle.OracleCalendar.from_spec(name, RAW[policy_id]["calendars"][name])


def built(name: str, spec: dict[str, Any], tz: str) -> tuple[ZonedCalendar, oracle.OracleCalendar]:
    domain = CalendarSpec.model_validate(spec).build(name).zoned(tz)
    return domain, oracle.OracleCalendar.from_spec(name, spec)


def at(tz: str, text: str) -> datetime:
    """Local wall time `YYYY-MM-DD HH:MM` in `tz`."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


WEEKDAYS_9_TO_5 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


# --- agreement with the oracle over random intervals ----------------------------------------


@pytest.mark.parametrize(("policy_id", "name"), SHIPPED)
@settings(max_examples=60, deadline=None)
@given(tz=st.sampled_from(ZONES), start=instants(), length=offsets(0, 9 * DAY))
def test_open_seconds_of_a_shipped_calendar_agree_with_the_oracle(
    policy_id: str, name: str, tz: str, start: datetime, length: int
) -> None:
    domain, model = shipped(policy_id, name, tz)
    end = start + timedelta(seconds=length)

    assert domain.open_seconds(start, end) == oracle.open_seconds(model, tz, start, end)


@pytest.mark.parametrize(("policy_id", "name"), SHIPPED)
@settings(max_examples=60, deadline=None)
@given(tz=st.sampled_from(ZONES), start=instants(), seconds=offsets(0, 3 * DAY))
def test_advance_on_a_shipped_calendar_lands_where_the_oracle_does(
    policy_id: str, name: str, tz: str, start: datetime, seconds: int
) -> None:
    domain, model = shipped(policy_id, name, tz)

    assert domain.advance(start, seconds) == oracle.advance(model, tz, start, seconds)


@pytest.mark.parametrize(("policy_id", "name"), SHIPPED)
@settings(max_examples=50, deadline=None)
@given(tz=st.sampled_from(ZONES), start=instants(), length=offsets(0, 9 * DAY))
def test_pieces_are_the_oracles_maximal_runs_and_cover_the_interval_exactly(
    policy_id: str, name: str, tz: str, start: datetime, length: int
) -> None:
    domain, model = shipped(policy_id, name, tz)
    end = start + timedelta(seconds=length)

    pieces = list(domain.pieces(start, end))

    if length == 0:
        assert pieces == []
        return
    assert pieces[0].start == start and pieces[-1].end == end
    assert all(a.end == b.start for a, b in pairwise(pieces))
    assert all(p.start < p.end and p.open == (p.reason == "open") for p in pieces)
    if not domain.calendar.always_open:  # 24x7: a single open piece, the oracle agrees
        assert [(p.start, p.end, p.reason) for p in pieces] == oracle.runs(model, tz, start, end)


@pytest.mark.parametrize(("policy_id", "name"), SHIPPED)
@settings(max_examples=50, deadline=None)
@given(tz=st.sampled_from(ZONES), start=instants(), length=offsets(0, 9 * DAY))
def test_advancing_by_the_open_time_of_an_interval_lands_at_its_last_open_instant(
    policy_id: str, name: str, tz: str, start: datetime, length: int
) -> None:
    domain, _ = shipped(policy_id, name, tz)
    end = start + timedelta(seconds=length)
    counted = domain.open_seconds(start, end)

    landed = domain.advance(start, counted)

    assert start <= landed <= end
    assert domain.open_seconds(start, landed) == counted
    assert domain.open_seconds(landed, end) == 0
    if counted > 0:  # nothing closed is skipped on the way: the second before is open
        assert domain.open_seconds(landed - timedelta(seconds=1), landed) == 1


@pytest.mark.parametrize(("policy_id", "name"), SHIPPED)
@settings(max_examples=30, deadline=None)
@given(tz=st.sampled_from(ZONES), start=instants())
def test_advancing_by_zero_returns_the_start_itself(
    policy_id: str, name: str, tz: str, start: datetime
) -> None:
    domain, _ = shipped(policy_id, name, tz)

    landed = domain.advance(start.astimezone(ZoneInfo(tz)), 0)

    assert landed == start
    assert landed.utcoffset() == timedelta(0)


holiday_specs = st.fixed_dictionaries({
    "hours": st.sampled_from([
        WEEKDAYS_9_TO_5,
        {day: ["00:00-24:00"] for day in oracle.DAYS},
        {day: ["08:00-12:00", "13:00-20:00"] for day in oracle.DAYS},
    ]),
    "holidays": st.lists(
        st.sampled_from([c.date() + timedelta(days=d) for c in DST_CHANGES for d in (-1, 0, 1)]),
        max_size=4, unique=True,
    ),
})


@settings(max_examples=80, deadline=None)
@given(spec=holiday_specs, tz=st.sampled_from(ZONES),
       start=st.builds(lambda c, s: c + timedelta(seconds=s),
                       st.sampled_from(DST_CHANGES), offsets(-3 * DAY, 2 * DAY)),
       length=offsets(0, 5 * DAY), seconds=offsets(0, 2 * DAY))
def test_a_calendar_with_holidays_agrees_with_the_oracle(
    spec: dict[str, Any], tz: str, start: datetime, length: int, seconds: int
) -> None:
    domain, model = built("custom", spec, tz)
    end = start + timedelta(seconds=length)

    assert domain.open_seconds(start, end) == oracle.open_seconds(model, tz, start, end)
    assert domain.advance(start, seconds) == oracle.advance(model, tz, start, seconds)
    pieces = [(p.start, p.end, p.reason) for p in domain.pieces(start, end)]
    assert pieces == oracle.runs(model, tz, start, end)


# --- DST: 24x7 counts real time, opening hours stay local ---------------------------------


@pytest.mark.parametrize(("tz", "day", "hours"), [
    (NEW_YORK, "2026-03-08", 23),
    (NEW_YORK, "2026-11-01", 25),
    (BERLIN, "2026-03-29", 23),
    (BERLIN, "2026-10-25", 25),
    (NEW_YORK, "2026-03-09", 24),
])
def test_the_24x7_calendar_counts_the_real_length_of_a_dst_day(
    tz: str, day: str, hours: int
) -> None:
    always, _ = shipped("personalysispro", "always", tz)
    midnight = at(tz, f"{day} 00:00")
    next_midnight = at(tz, (date.fromisoformat(day) + timedelta(days=1)).isoformat() + " 00:00")

    assert always.open_seconds(midnight, next_midnight) == hours * HOUR


@pytest.mark.parametrize(("tz", "friday", "monday", "friday_utc", "monday_utc"), [
    (NEW_YORK, "2026-03-06", "2026-03-09", ("14:00", "22:00"), ("13:00", "21:00")),
    (NEW_YORK, "2026-10-30", "2026-11-02", ("13:00", "21:00"), ("14:00", "22:00")),
    (BERLIN, "2026-03-27", "2026-03-30", ("08:00", "16:00"), ("07:00", "15:00")),
    (BERLIN, "2026-10-23", "2026-10-26", ("07:00", "15:00"), ("08:00", "16:00")),
])
def test_business_hours_stay_nine_to_five_local_across_the_dst_weekend(
    tz: str, friday: str, monday: str, friday_utc: tuple[str, str], monday_utc: tuple[str, str]
) -> None:
    business, _ = shipped("personalysispro", "business", tz)

    open_pieces = [(p.start, p.end) for p in business.pieces(at(tz, f"{friday} 00:00"),
                                                             at(tz, f"{monday} 23:00")) if p.open]

    assert open_pieces == [
        (utc(f"{friday}T{friday_utc[0]}"), utc(f"{friday}T{friday_utc[1]}")),
        (utc(f"{monday}T{monday_utc[0]}"), utc(f"{monday}T{monday_utc[1]}")),
    ]


def test_a_business_week_holding_a_dst_change_still_has_forty_open_hours() -> None:
    business, _ = shipped("personalysispro", "business", NEW_YORK)

    week = business.open_seconds(at(NEW_YORK, "2026-03-07 00:00"), at(NEW_YORK, "2026-03-14 00:00"))

    assert week == 40 * HOUR


def test_frontline_opens_twelve_local_hours_on_both_days_of_the_spring_forward_weekend() -> None:
    frontline, _ = shipped("growgrebuddy", "frontline", BERLIN)

    open_pieces = [(p.start, p.end) for p in frontline.pieces(
        at(BERLIN, "2026-03-28 00:00"), at(BERLIN, "2026-03-30 00:00")) if p.open]

    assert open_pieces == [
        (utc("2026-03-28T07:00"), utc("2026-03-28T19:00")),  # 08:00-20:00 CET
        (utc("2026-03-29T06:00"), utc("2026-03-29T18:00")),  # 08:00-20:00 CEST
    ]


def test_advance_on_business_hours_skips_the_weekend_and_follows_the_clock_change() -> None:
    business, _ = shipped("personalysispro", "business", NEW_YORK)

    # Fri 16:00 EST + 2 h: 1 h on Friday, then Monday 09:00 EDT + 1 h = 10:00 EDT.
    landed = business.advance(at(NEW_YORK, "2026-03-06 16:00"), 2 * HOUR)

    assert landed == utc("2026-03-09T14:00")


def test_advance_on_the_24x7_calendar_is_real_elapsed_time_across_the_change() -> None:
    always, _ = shipped("personalysispro", "always", NEW_YORK)

    # Sat 12:00 EST + 24 h is Sun 13:00 EDT: the wall clock moved by 25 h.
    landed = always.advance(at(NEW_YORK, "2026-03-07 12:00"), 24 * HOUR)

    assert landed == at(NEW_YORK, "2026-03-08 13:00")


def test_advance_to_exactly_the_open_time_left_in_a_day_lands_at_closing() -> None:
    extended, _ = shipped("personalysispro", "extended", NEW_YORK)

    landed = extended.advance(at(NEW_YORK, "2026-06-05 19:00"), HOUR)

    assert landed == at(NEW_YORK, "2026-06-05 20:00")


# --- holidays ---------------------------------------------------------------------------------


def nine_to_five_with(*holidays: date) -> Calendar:
    weekly = tuple(((540, 1020),) if day < 5 else () for day in range(7))
    return Calendar("office", weekly, frozenset(holidays))


def test_a_holiday_is_closed_all_day_and_pieces_say_holiday() -> None:
    office = nine_to_five_with(date(2026, 7, 3)).zoned(NEW_YORK)  # a Friday

    thursday_noon, monday_noon = at(NEW_YORK, "2026-07-02 12:00"), at(NEW_YORK, "2026-07-06 12:00")

    pieces = [(p.start, p.end, p.open, p.reason) for p in office.pieces(thursday_noon, monday_noon)]

    assert pieces == [
        (utc("2026-07-02T16:00"), utc("2026-07-02T21:00"), True, "open"),
        (utc("2026-07-02T21:00"), utc("2026-07-03T04:00"), False, "out_of_hours"),
        (utc("2026-07-03T04:00"), utc("2026-07-04T04:00"), False, "holiday"),
        (utc("2026-07-04T04:00"), utc("2026-07-06T13:00"), False, "out_of_hours"),
        (utc("2026-07-06T13:00"), utc("2026-07-06T16:00"), True, "open"),
    ]
    holiday = (at(NEW_YORK, "2026-07-03 00:00"), at(NEW_YORK, "2026-07-04 00:00"))
    assert office.open_seconds(*holiday) == 0


def test_a_due_instant_skips_a_holiday() -> None:
    office = nine_to_five_with(date(2026, 7, 3)).zoned(NEW_YORK)

    # Thu 16:00 + 2 h: 1 h on Thursday, Friday is a holiday, Monday 09:00 + 1 h.
    landed = office.advance(at(NEW_YORK, "2026-07-02 16:00"), 2 * HOUR)

    assert landed == at(NEW_YORK, "2026-07-06 10:00")


def test_a_holiday_on_the_spring_forward_day_closes_the_24x7_calendar_for_23_hours() -> None:
    weekly = tuple(((0, 1440),) for _ in range(7))
    always = Calendar("always", weekly, frozenset({date(2026, 3, 8)})).zoned(NEW_YORK)

    saturday_noon, monday_noon = at(NEW_YORK, "2026-03-07 12:00"), at(NEW_YORK, "2026-03-09 12:00")

    pieces = [(p.start, p.end, p.reason) for p in always.pieces(saturday_noon, monday_noon)]

    assert pieces == [
        (utc("2026-03-07T17:00"), utc("2026-03-08T05:00"), "open"),
        (utc("2026-03-08T05:00"), utc("2026-03-09T04:00"), "holiday"),  # 23 h
        (utc("2026-03-09T04:00"), utc("2026-03-09T16:00"), "open"),
    ]


def test_pieces_of_an_empty_or_reversed_interval_are_empty() -> None:
    business, _ = shipped("personalysispro", "business", NEW_YORK)
    instant = utc("2026-06-01T15:00")

    assert list(business.pieces(instant, instant)) == []
    assert list(business.pieces(instant, instant - timedelta(hours=1))) == []
    assert business.open_seconds(instant, instant - timedelta(hours=1)) == 0


def test_a_naive_datetime_is_refused() -> None:
    business, _ = shipped("personalysispro", "business", NEW_YORK)

    with pytest.raises(ValueError, match="naive"):
        business.open_seconds(datetime(2026, 6, 1, 9), utc("2026-06-02T00:00"))


# --- targets years away (issue 13.6) ---------------------------------------------------------
# `advance` and `open_seconds` skip whole cached weeks and 52-week stretches; `pieces` still
# walks day by day, so it is the reference for spans of years. Window edges stay clear of
# the hours daylight saving skips or repeats in these zones (a separate question).

SPARSE_ZONES = ["UTC", NEW_YORK, BERLIN, "Asia/Kathmandu", "Australia/Lord_Howe"]
day_windows = st.lists(st.integers(240, 1440), min_size=2, max_size=4, unique=True).map(sorted).map(
    lambda b: [f"{x // 60:02d}:{x % 60:02d}-{y // 60:02d}:{y % 60:02d}"
               for x, y in zip(b[::2], b[1::2], strict=False)])
sparse_specs = st.fixed_dictionaries({
    "hours": st.dictionaries(st.sampled_from(oracle.DAYS), day_windows, min_size=1, max_size=7),
    "holidays": st.lists(st.dates(date(2026, 1, 1), date(2033, 1, 1)), max_size=40),
})


def open_by_pieces(calendar: ZonedCalendar, start: datetime, end: datetime) -> float:
    return sum(p.seconds for p in calendar.pieces(start, end) if p.open)


@settings(max_examples=40, deadline=None)
@given(spec=sparse_specs, tz=st.sampled_from(SPARSE_ZONES), start=instants(),
       length=offsets(0, 6 * 365 * DAY))
def test_open_time_over_years_is_what_the_day_by_day_pieces_add_up_to(
    spec: dict[str, Any], tz: str, start: datetime, length: int
) -> None:
    calendar = CalendarSpec.model_validate(spec).build("sparse").zoned(tz)
    end = start + timedelta(seconds=length)

    counted = calendar.open_seconds(start, end)
    landed = calendar.advance(start, counted)

    assert counted == open_by_pieces(calendar, start, end)
    assert open_by_pieces(calendar, start, landed) == counted
    assert not any(p.open for p in calendar.pieces(landed, end))
    if counted > 0:
        assert open_by_pieces(calendar, landed - timedelta(seconds=1), landed) == 1


def test_ninety_days_on_two_hours_a_week_fall_due_two_decades_on_at_the_last_open_minute(
) -> None:
    # The policy of issue 13.6: open Saturdays 10-12 (New York), a 90-day target. From
    # Mon 2026-11-16, the 1080th Saturday is 2047-07-27; 12:00 EDT is 16:00Z.
    saturdays = CalendarSpec.model_validate({"hours": {"sat": ["10:00-12:00"]}}).build("sat")
    calendar = saturdays.zoned(NEW_YORK)
    start = at(NEW_YORK, "2026-11-16 09:00")

    landed = calendar.advance(start, 90 * DAY)

    assert landed == utc("2047-07-27T16:00")
    assert calendar.open_seconds(start, landed) == 90 * DAY
    assert calendar.open_seconds(start, landed - timedelta(minutes=1)) == 90 * DAY - 60


def test_a_target_the_calendar_cannot_give_within_the_search_horizon_is_a_calendar_error(
) -> None:
    minute = CalendarSpec.model_validate({"hours": {"sat": ["10:00-10:01"]}}).build("minute")

    with pytest.raises(CalendarError, match=f"in the {MAX_SEARCH_DAYS} days from"):
        minute.zoned(NEW_YORK).advance(at(NEW_YORK, "2026-11-16 09:00"), 366 * DAY)
