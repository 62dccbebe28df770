"""Processes starting at once on a fresh PostgreSQL database: they neither race on the
schema's creation nor on the first copy of a policy version, so the server logs no
ERROR (issue #20, item 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3


def _start_at_once(db: str, count: int) -> list[dict[str, object]]:
    starters = [subprocess.Popen([sys.executable, "-m", "tests.support.starter", db, str(n)],
                                 cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
                for n in range(1, count + 1)]
    for starter in starters:  # all imported and waiting
        assert starter.stdout is not None and starter.stdout.readline().strip() == "ready"
    for starter in starters:
        assert starter.stdin is not None
        starter.stdin.write("go\n")
        starter.stdin.flush()
    outcomes = []
    for starter in starters:
        out, err = starter.communicate(timeout=120)
        assert starter.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
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
