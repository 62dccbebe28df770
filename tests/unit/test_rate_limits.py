"""The per-key limits' storage never keeps a process alive: its expiry timers are
daemon threads (the library's own are not, and under libfaketime a pending one never
ends, so the suite's run a year ahead hung at exit)."""

from __future__ import annotations

import threading

import pytest

from ticketflow.http.problems import Problem
from ticketflow.http.rates import RateLimits


def test_the_expiry_timers_are_daemon_threads_before_and_after_hits() -> None:
    rates = RateLimits("2/second")
    storage = rates._limiter.storage
    assert storage.timer.daemon  # type: ignore[attr-defined]
    rates.admit("k1")
    rates.admit("k1")
    with pytest.raises(Problem):
        rates.admit("k1")
    assert storage.timer.daemon  # type: ignore[attr-defined]
    waiting = [t for t in threading.enumerate()
               if isinstance(t, threading.Timer) and not t.daemon]
    assert waiting == []
