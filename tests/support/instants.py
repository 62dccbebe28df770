"""Hypothesis strategies for instants that hit calendar boundaries and DST changes.

Random intervals lean on the DST weeks of America/New_York (2026-03-08, 2026-11-01) and
Europe/Berlin (2026-03-29, 2026-10-25), Lord Howe's half hour and Santiago's change at
local midnight, where opening hours stay local and so move in UTC. Shared by the
calendar and SLA tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

NEW_YORK, BERLIN = "America/New_York", "Europe/Berlin"
ZONES = [NEW_YORK, BERLIN, "UTC", "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago"]
DST_CHANGES = [  # UTC instants of the 2026 changes
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York springs forward (02:00 EST)
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York falls back (02:00 EDT)
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # Berlin springs forward (02:00 CET)
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # Berlin falls back (03:00 CEST)
    datetime(2026, 4, 4, 15, tzinfo=UTC),  # Lord Howe, half an hour back
    datetime(2026, 9, 6, 4, tzinfo=UTC),  # Santiago springs forward at local midnight
]
YEAR = datetime(2026, 1, 1, tzinfo=UTC)
HOUR, DAY = 3600, 86400


def seconds_at(granularity: int, low: int, high: int) -> st.SearchStrategy[int]:
    """Offsets in [low, high] seconds that are multiples of `granularity`."""
    return st.integers(-(-low // granularity), high // granularity).map(lambda n: n * granularity)


def offsets(low: int, high: int) -> st.SearchStrategy[int]:
    """Seconds, half hours, whole minutes or whole hours: boundaries get hit exactly."""
    return st.sampled_from([1, 60, 1800, HOUR]).flatmap(lambda g: seconds_at(g, low, high))


def instants() -> st.SearchStrategy[datetime]:
    near_dst = st.builds(lambda change, shift: change + timedelta(seconds=shift),
                         st.sampled_from(DST_CHANGES), offsets(-4 * DAY, 4 * DAY))
    anywhere = offsets(0, 365 * DAY).map(lambda s: YEAR + timedelta(seconds=s))
    return st.one_of(near_dst, anywhere)
