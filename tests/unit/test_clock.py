"""The engine's clock: TICKETFLOW_CLOCK values, and that every reader takes one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.clock import ClockSettingError, SystemClock, default_clock
from ticketflow.settings import Settings, SettingsError

INSTANT = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)
SLACK = timedelta(seconds=30)  # a loaded machine between two readings of the system clock


def test_unset_and_wall_are_the_system_clock() -> None:
    for text in (None, "", "wall", " wall "):
        clock = SystemClock.parse(text)
        assert clock.offset == timedelta(0) and clock.frozen_at is None
        assert abs(clock() - datetime.now(UTC)) < SLACK


@pytest.mark.parametrize(("text", "offset"), [
    ("+400d", timedelta(days=400)), ("-3h", timedelta(hours=-3)),
    ("+90m", timedelta(minutes=90)), ("+1.5s", timedelta(seconds=1.5)),
])
def test_an_offset_moves_the_system_clock(text: str, offset: timedelta) -> None:
    clock = SystemClock.parse(text)
    assert clock.offset == offset
    assert abs(clock() - (datetime.now(UTC) + offset)) < SLACK


def test_an_instant_starts_the_clock_there_and_it_runs() -> None:
    clock = SystemClock.parse("2026-11-16T10:00:00-05:00")
    first = clock()
    assert INSTANT <= first < INSTANT + SLACK
    assert clock() >= first


def test_an_at_sign_freezes_the_clock() -> None:
    clock = SystemClock.parse("@2026-11-16T15:00:00Z")
    assert clock() == clock() == INSTANT


@pytest.mark.parametrize("text", ["tomorrow", "+400", "400d", "+4w", "2026-11-16T15:00:00",
                                  "@2026-11-16", "@"])
def test_anything_else_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ClockSettingError, match="offset such as '\\+400d'"):
        SystemClock.parse(text)


def test_the_spec_carries_the_same_clock_to_another_process() -> None:
    moved = SystemClock.starting_at(INSTANT)
    again = SystemClock.parse(moved.spec)
    assert abs(again.offset - moved.offset) < timedelta(milliseconds=1)
    assert SystemClock.parse(SystemClock.frozen(INSTANT).spec)() == INSTANT
    assert SystemClock().spec == "wall"


def test_settings_and_the_default_clock_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETFLOW_CLOCK", "@2026-11-16T15:00:00Z")
    assert default_clock()() == INSTANT
    assert Settings.from_env().clock() == INSTANT
    assert Settings().clock() == INSTANT
    monkeypatch.setenv("TICKETFLOW_CLOCK", "soon")
    with pytest.raises(SettingsError, match="TICKETFLOW_CLOCK='soon' is not a clock"):
        Settings.from_env()
