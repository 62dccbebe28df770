"""Processes starting at once on a fresh PostgreSQL database: they neither race on the
schema's creation (the event store's, the read models', the webhooks' and the keys'
tables) nor on the first copy of a policy version, so the server logs no ERROR (issue
#20, item 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.starter import STEPS
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3


def _start_at_once(db: str, count: int) -> list[dict[str, object]]:
    """Start `count` starters, and let them take each of their steps at the same moment."""
    starters = [subprocess.Popen([sys.executable, "-m", "tests.support.starter", db, str(n)],
                                 cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
                for n in range(1, count + 1)]
    for step in ("ready", *STEPS):
        for starter in starters:  # all at the same point …
            assert starter.stdout is not None
            line = starter.stdout.readline().strip()
            if line != step:
                starter.kill()
                raise AssertionError(f"expected {step!r}, got {line!r}:"
                                     f" {starter.communicate()[1]}")
        if step != STEPS[-1]:
            for starter in starters:  # … then on to the next step together
                assert starter.stdin is not None
                starter.stdin.write("go\n")
                starter.stdin.flush()
    outcomes = []
    for starter in starters:
        assert starter.stdout is not None  # its outcome: read here, not by communicate,
        line = starter.stdout.readline()   # which would miss what readline buffered
        _, err = starter.communicate(timeout=120)
        assert starter.returncode == 0, err
        outcomes.append(json.loads(line))
    return outcomes


def _errors_since(log: Path, offset: int) -> list[str]:
    with log.open("rb") as file:
        file.seek(offset)
        text = file.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if "ERROR:" in line]


@pytest.mark.postgres
@pytest.mark.processes
def test_three_processes_starting_on_a_fresh_database_leave_no_error_in_its_log(
    postgres_url: str, postgres_log: Path,
) -> None:
    offset = postgres_log.stat().st_size
    outcomes = _start_at_once(postgres_url, PROCESSES)
    assert [o["status"] for o in outcomes] == ["accepted"] * PROCESSES
    with build_app(Settings(db=postgres_url)) as app:  # and a later start is quiet too
        for n in range(1, PROCESSES + 1):
            assert app.load_ticket(f"T-{n}", tenant="personalysispro").status == "created"
    assert _errors_since(postgres_log, offset) == []
