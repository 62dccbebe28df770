"""TICKETFLOW_MAX_CLOCK_SKEW (SPEC §5): how far ahead of the engine's clock a command may
be dated. Read from the environment into the settings, and from the settings into the
write service the composition root builds (an in-memory SQLite store, a frozen clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.bad_input import streams
from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.clock import ClockSettingError, SystemClock
from ticketflow.settings import MAX_SKEW_ENV, Settings, SettingsError

NOW = T0 + timedelta(days=2)  # the engine's clock: frozen, whatever the date
LATEST = datetime(2199, 12, 31, 23, 59, tzinfo=UTC)  # the latest instant a command may carry


@pytest.fixture
def skew_2h(monkeypatch: pytest.MonkeyPatch) -> Iterator[TicketingApp]:
    monkeypatch.setenv(MAX_SKEW_ENV, "2h")
    settings = Settings.from_env(db="sqlite:///:memory:")
    assert settings.max_skew == timedelta(hours=2)
    with build_app(settings, clock=lambda: NOW) as app:
        created = command_line("m-1", "create_ticket", "T-1", NOW - timedelta(minutes=10),
                               "customer", create_payload())
        assert app.apply(created).status == "accepted"
        yield app


def acknowledge(message_id: str, at: datetime) -> bytes:
    return command_line(message_id, "acknowledge", "T-1", at, "agent", {})


def test_with_2h_a_command_an_hour_ahead_is_recorded_at_the_engines_clock(
    skew_2h: TicketingApp,
) -> None:
    outcome = skew_2h.apply(acknowledge("m-2", NOW + timedelta(hours=1)))
    assert (outcome.status, outcome.events) == ("accepted", ["TicketAcknowledged"])
    last = skew_2h.event_log.ticket_events("T-1")[-1]
    assert last["occurred_at"] == last["recorded_at"] == NOW.isoformat()


def test_with_2h_a_command_three_hours_ahead_is_an_invalid_message(
    skew_2h: TicketingApp,
) -> None:
    before = streams(skew_2h)
    outcome = skew_2h.apply(acknowledge("m-2", NOW + timedelta(hours=3)))
    assert (outcome.error or {}).get("code") == "invalid_message"
    assert "more than 120 minutes ahead of the engine's clock" in (outcome.error or {})["message"]
    assert streams(skew_2h) == before
    assert skew_2h.apply(acknowledge("m-2", NOW)).status == "accepted"  # its id not used up


@pytest.mark.parametrize(("ahead", "status"), [
    (timedelta(hours=2), "accepted"), (timedelta(hours=2, seconds=1), "rejected"),
])
def test_the_skew_is_inclusive(skew_2h: TicketingApp, ahead: timedelta, status: str) -> None:
    assert skew_2h.apply(acknowledge("m-2", NOW + ahead)).status == status


def test_unset_or_blank_is_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_SKEW_ENV, raising=False)
    assert Settings.from_env().max_skew == Settings().max_skew == timedelta(minutes=5)
    monkeypatch.setenv(MAX_SKEW_ENV, "  ")
    assert Settings.from_env().max_skew == timedelta(minutes=5)


@pytest.mark.parametrize(("text", "skew"), [
    ("90s", timedelta(seconds=90)), ("+5m", timedelta(minutes=5)), ("1.5h", timedelta(hours=1.5)),
    ("0s", timedelta(0)), ("7d", timedelta(days=7)),
])
def test_a_duration_is_read_with_its_unit(monkeypatch: pytest.MonkeyPatch, text: str,
                                          skew: timedelta) -> None:
    monkeypatch.setenv(MAX_SKEW_ENV, text)
    assert Settings.from_env().max_skew == skew


@pytest.mark.parametrize("text", [
    "soon", "5", "5 minutes", "-3h", "wall", "1e3s", "2026-11-16T15:00:00Z",
    "@2026-11-16T15:00:00Z",
    "9999999999d",  # more days than a timedelta holds
    "5000000d",  # a timedelta, but no clock can be that far ahead (past the year 9999)
])
def test_a_bogus_value_is_a_settings_error_saying_what_is_accepted(
    monkeypatch: pytest.MonkeyPatch, text: str,
) -> None:
    monkeypatch.setenv(MAX_SKEW_ENV, text)
    with pytest.raises(SettingsError, match=f"^{MAX_SKEW_ENV}=.* is not a duration: write it"
                                            " like '5m', '90s' or '1h'$"):
        Settings.from_env()


@pytest.mark.parametrize("text", ["+9999999999d", "+5000000d", "-5000000d"])
def test_a_clock_moved_past_what_a_datetime_holds_is_refused(text: str) -> None:
    with pytest.raises(ClockSettingError, match="out of the years a clock can read"):
        SystemClock.parse(text)


def test_a_skew_of_any_length_is_compared_without_overflowing() -> None:
    """Given in code (the environment refuses one this long), the longest skew bounds
    nothing but breaks nothing: the command is still recorded at the engine's clock."""
    with build_app(Settings(db="sqlite:///:memory:", max_skew=timedelta.max),
                   clock=lambda: NOW) as app:
        created = command_line("m-1", "create_ticket", "T-1", LATEST, "customer",
                               create_payload())
        assert app.apply(created).status == "accepted"
        (event,) = app.event_log.ticket_events("T-1")
        assert event["occurred_at"] == NOW.isoformat()
