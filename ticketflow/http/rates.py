"""Per-key request limits (TICKETFLOW_RATE_LIMIT, default 50/second), in memory.

Each key has its own moving windows (the `limits` library): a key over its limit is
answered 429 with `Retry-After` before anything else is done for it, and costs no
other key anything (no shared budget, no wait). A refused request is not counted.

Windows are measured in real seconds by `limits` itself, not by the engine's clock:
`TICKETFLOW_CLOCK` may freeze or move the engine's time, and a request budget must
still run out and refill. The limits are per process: N HTTP processes allow N times
the rate (docs/decisions.md).
"""

from __future__ import annotations

import math
import threading
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ticketflow.http.problems import Problem
from ticketflow.settings import RATE_LIMIT_ENV, SettingsError

OFF = "none"


class _Storage(MemoryStorage):
    """The library's in-memory storage, its expiry timers made daemon threads: its own
    are not, and a process with one pending (each lives 10 ms, started anew with each
    hit) waits for it to exit — for good under libfaketime, whose timed waits never end
    (the suite's run a year ahead hung at exit)."""

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()  # the library's own, started by its __init__
        self.timer.join()
        self.timer = self._daemon_timer()

    def _daemon_timer(self) -> threading.Timer:
        timer = threading.Timer(0.01, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
        timer.daemon = True
        timer.start()
        return timer

    def _MemoryStorage__schedule_expiry(self) -> None:  # the library calls it by this name
        if not self.timer.is_alive():
            self.timer = self._daemon_timer()


class RateLimits:
    def __init__(self, text: str) -> None:
        """`text`: "50/second", "50/second;2000/hour", or "none"."""
        self.text = text.strip()
        try:
            self.items: list[RateLimitItem] = ([] if self.text.lower() == OFF
                                               else parse_many(self.text))
        except ValueError:
            raise SettingsError(f"{RATE_LIMIT_ENV}={text!r} is not a rate limit: write it like"
                                " '50/second' or '50/second;2000/hour', or 'none'") from None
        self._limiter = MovingWindowRateLimiter(_Storage())
        self._lock = threading.Lock()  # test-then-hit of several windows, as one step

    def admit(self, key_id: str) -> None:
        """Count one request of the key; Problem 429 (with Retry-After) if it is over
        any of its limits (then nothing is counted)."""
        if not self.items:
            return
        with self._lock:
            full = [item for item in self.items if not self._limiter.test(item, key_id)]
            if not full:
                for item in self.items:
                    self._limiter.hit(item, key_id)
                return
        wait = max(self._limiter.get_window_stats(item, key_id).reset_time for item in full)
        seconds = max(1, math.ceil(wait - time.time()))  # the library's own time base
        raise Problem(429, "rate_limited",
                      f"this key may make {self.text} requests; try again in {seconds} s",
                      {"Retry-After": str(seconds)})
