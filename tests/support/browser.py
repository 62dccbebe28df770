"""Debian's Chromium driven by Playwright (never `playwright install`: scripts/test.sh
installs the `chromium` package), and axe-core run in a page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/lib/chromium/chromium"


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             env=real_time_env())
        try:
            yield browser
        finally:
            browser.close()


def real_time_env() -> dict[str, str]:
    """This process's environment without libfaketime: scripts/test.sh reruns the suite
    a year ahead under `faketime`, which Chromium does not survive; the browser keeps
    real time (nothing it does depends on the date) while the server runs ahead."""
    return {name: value for name, value in os.environ.items()
            if name != "LD_PRELOAD" and not name.startswith(("FAKETIME", "DONT_FAKE"))}


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    results = Axe().run(page)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
