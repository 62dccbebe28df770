"""Polling for an eventually-true condition, with a deadline (services are asynchronous)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 90.0,
             every: float = 0.2) -> T:
    """The condition's first truthy value, asked every `every` seconds; fails naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def until_healthy(process: subprocess.Popen[bytes] | subprocess.Popen[str], url: str,
                  timeout: float = 60.0) -> None:
    """Wait until a server process answers `url`/healthz with 200; fails at once if the
    process exits, naming what it waited for after `timeout` seconds otherwise."""
    import httpx

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before {url}"
                                 "/healthz answered")
        try:
            return httpx.get(f"{url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, f"{url}/healthz", timeout)
