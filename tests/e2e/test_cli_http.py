"""`ticketflow http` as a user runs it: a real process serving the API and the console
on the embedded default, answering a key's command and read, and stopping cleanly on
SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support.cli import SPEC_EXAMPLE
from tests.support.waiting import until_healthy
from ticketflow.keys import Keys
from ticketflow.projections.db import engine_for

#: The engine's clock: a day after the SPEC §5 example command (2026-11-20), running.
CLOCK = datetime(2026, 11, 21, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.processes
def test_ticketflow_http_serves_the_api_until_sigterm(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'served.db'}"
    engine = engine_for(db)
    _, secret = Keys(engine, lambda: CLOCK).create("personalysispro", ["customer"])
    engine.dispose()
    port = free_port()
    env = {**os.environ, "TICKETFLOW_CLOCK": CLOCK.isoformat()}  # the example's day, running
    process = subprocess.Popen([sys.executable, "-m", "ticketflow.cli", "http", "--port",
                                str(port), "--db", db], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        until_healthy(process, url, timeout=30)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as api:
            sent = api.post("/v1/commands", content=json.dumps(SPEC_EXAMPLE))
            assert sent.status_code == 201, sent.text
            assert api.get("/v1/tickets/T-1001").json()["status"] == "created"
        assert httpx.get(url + "/v1/tickets/T-1001").status_code == 401
        # the console beside the API (SPEC §9), its files from the installed package
        sign_in = httpx.get(url + "/ui/sign-in")
        assert sign_in.status_code == 200 and "Key secret" in sign_in.text
        script = httpx.get(url + "/ui/static/htmx-2.0.11.min.js")
        assert script.status_code == 200 and "htmx" in script.text[:2000]
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors.decode()
