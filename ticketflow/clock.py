"""The engine's clock: the one place that reads the wall clock.

Business time always comes from the commands (`occurred_at`). The engine's own clock
answers three questions only: when was this recorded (`recorded_at`), what is due by
now (the timer role), and which instant does a report or an SLA view default to. Every
reader takes a `Clock` — any zero-argument callable returning an aware `datetime` — so
tests and rehearsals pass their own.

`TICKETFLOW_CLOCK` sets the default clock of a process and of the workers it starts:

- unset or `wall`: the system clock;
- `+400d`, `-3h`, `+90m`, `+30s`, `+1.5s` (units d, h, m, s): the system clock moved by
  that much — run anything "a year from now" without touching the machine's time;
- an ISO-8601 instant with an offset (`2026-11-16T15:00:00Z`): a clock that starts at
  that instant when the process reads the setting and runs at the system clock's pace
  (a rehearsal of a past or future day);
- `@` + an instant (`@2026-11-16T15:00:00Z`): a clock frozen at that instant.

A `SystemClock` knows its own `spec`, so a harness can hand the same clock (the same
offset, not a fresh start) to the child processes it launches.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

ENV = "TICKETFLOW_CLOCK"
#: How far ahead of the engine's clock a command may be dated (SPEC §5);
#: TICKETFLOW_MAX_CLOCK_SKEW overrides it.
DEFAULT_MAX_SKEW = timedelta(minutes=5)
_OFFSET = re.compile(r"^([+-])(\d+(?:\.\d+)?)([dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class ClockSettingError(ValueError):
    """TICKETFLOW_CLOCK is not a clock; the message says what is accepted."""


@dataclass(frozen=True)
class SystemClock:
    """The system clock, moved by `offset`, or frozen at `frozen_at`."""

    offset: timedelta = timedelta(0)
    frozen_at: datetime | None = None

    def __call__(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at
        return datetime.now(UTC) + self.offset

    @classmethod
    def starting_at(cls, instant: datetime) -> SystemClock:
        """A clock that reads `instant` now and runs on at the system clock's pace."""
        return cls(offset=_aware(instant) - datetime.now(UTC))

    @classmethod
    def frozen(cls, instant: datetime) -> SystemClock:
        return cls(frozen_at=_aware(instant).astimezone(UTC))

    @classmethod
    def parse(cls, text: str | None) -> SystemClock:
        """A clock from a TICKETFLOW_CLOCK value (see the module's documentation)."""
        text = (text or "").strip()
        if text in ("", "wall"):
            return cls()
        match = _OFFSET.match(text)
        if match:
            sign, amount, unit = match.groups()
            try:
                offset = timedelta(**{_UNITS[unit]: float(amount)})
                moved = cls(offset=-offset if sign == "-" else offset)
                moved()
            except OverflowError:
                raise ClockSettingError(f"{ENV}={text!r} moves the clock out of the years a"
                                        " clock can read (1 to 9999)") from None
            return moved
        frozen = text.startswith("@")
        try:
            instant = datetime.fromisoformat(text.removeprefix("@").replace("Z", "+00:00"))
        except ValueError:
            instant = None
        if instant is None or instant.tzinfo is None:
            raise ClockSettingError(
                f"{ENV}={text!r} is not a clock: use 'wall', an offset such as '+400d' or"
                " '-3h' (units d, h, m, s), an instant with a UTC offset such as"
                " '2026-11-16T15:00:00Z' (starts there and runs), or '@' and an instant"
                " (frozen there)")
        return cls.frozen(instant) if frozen else cls.starting_at(instant)

    @property
    def spec(self) -> str:
        """This clock as a TICKETFLOW_CLOCK value (the same offset in another process)."""
        if self.frozen_at is not None:
            return "@" + self.frozen_at.isoformat()
        seconds = self.offset.total_seconds()
        return "wall" if seconds == 0 else f"{'-' if seconds < 0 else '+'}{abs(seconds)}s"


def default_clock() -> SystemClock:
    """This process's default clock: the system clock unless TICKETFLOW_CLOCK says
    otherwise (read when called, so a setting made before a component is built counts)."""
    return SystemClock.parse(os.environ.get(ENV))


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ClockSettingError(f"a clock needs an instant with a UTC offset, not {instant}")
    return instant
