"""Many writers on one ticket at once, as several OS processes with several threads
each, on every backend: each lost optimistic-concurrency race is retried from a fresh
load, no update is lost, and the ticket's versions stay contiguous with an intact
hash chain. (One process's threads: test_store_contract.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.builders import T0, command_line, create_payload
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings
from ticketflow.verification import verify_store

PROCESSES, THREADS, COMMENTS = 3, 2, 10
REPOSITORY = Path(__file__).resolve().parents[2]


def start_writer(db_url: str, worker: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.writer", db_url, str(worker), str(THREADS),
         str(COMMENTS)], cwd=REPOSITORY, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)


def run_writers(db_url: str) -> list[dict[str, object]]:
    """Every writer ready (store open, threads made), then all released at once."""
    writers: list[subprocess.Popen[str]] = []
    try:
        for worker in range(PROCESSES):
            writers.append(start_writer(db_url, worker))
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        outputs = [writer.communicate(timeout=240)[0] for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
    assert [writer.returncode for writer in writers] == [0] * PROCESSES
    return [json.loads(line) for output in outputs for line in output.splitlines()]


@pytest.mark.processes
def test_writer_processes_and_threads_on_one_ticket_lose_no_update(db_url: str) -> None:
    with build_app(Settings(db=db_url)) as app:
        app.apply(command_line("m-1", "create_ticket", "T-1", T0, "customer",
                               create_payload()))
    outcomes = run_writers(db_url)
    assert len(outcomes) == PROCESSES * THREADS * COMMENTS
    assert [o for o in outcomes if o["status"] != "accepted"] == []
    with build_app(Settings(db=db_url)) as app:
        timeline = app.event_log.ticket_events("T-1")
        assert verify_store(app) == []
    assert [e["version"] for e in timeline] == list(range(1, len(outcomes) + 2))
    bodies = [e["data"]["body"] for e in timeline[1:]]
    writers = [f"p{p}-t{t}" for p in range(PROCESSES) for t in range(THREADS)]
    for writer in writers:  # each writer's comments once each, in the order it wrote them
        assert [b for b in bodies if b.startswith(f"{writer}-")] == [
            f"{writer}-{n}" for n in range(COMMENTS)]
