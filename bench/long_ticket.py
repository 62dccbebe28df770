"""Long ticket: one ticket of 50,000 events read the way an auditor reads it.

The ticket is created, acknowledged, then commented on by its customer a millisecond
apart (`apply_batch`, 1,000 commands a transaction: snapshots every 100 events, one
receipt per command), and the read models are caught up; SQLite, built afresh in a
temporary folder on each run (about 15 s). Each figure is beside a plain read of the
same rows with Python's sqlite3 module, 1,000 rows at a time, nothing decoded or
checked:

- **timeline page**: `timeline_page` (what `ticketflow timeline ID --json` and the HTTP
  API read) of 1,000 events, the first page and the last, against a plain SELECT of the
  same rows; pages/s, best of three rounds.
- **timeline --all**: `ticketflow timeline ID --all --json` writing all 50,000
  envelopes (JSON Lines) to /dev/null, against the plain SELECT of the same rows with
  their JSON text written to /dev/null; events/s and peak memory. Contrast: the whole
  timeline as one JSON document, as `timeline --json` printed it before pages.
- **verify ID**: `verify_store` of the ticket with its read models (its events,
  snapshots and timeline rows, and every receipt of the store), against plain reads of
  the same rows; events/s and peak memory.

Memory figures run in a child process each (`VmHWM`), ours and the baseline alike after
opening the application, so both start from the same imports (`idle_peak_rss_mib`: a
child that opens it and reads nothing). Last, the command line as a user runs it:
`ticketflow timeline ID` (one page, the human table) and `ticketflow verify ID`, wall
time of the whole process, beside `ticketflow --help` (start-up alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import Figures, compared, rate, say
from bench.projections import in_child
from tests.support.builders import T0, command_line, create_payload
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.domain.streams import stream_uuid
from ticketflow.event_log import RECEIPT_TOPIC
from ticketflow.projections.db import engine_for, tables
from ticketflow.projections.runner import Projector
from ticketflow.projections.timeline import DEFAULT_LIMIT, timeline, timeline_page
from ticketflow.settings import Settings
from ticketflow.verification import verify_store

EVENTS = 50_000
TICKET = "LONG-1"
TENANT = "personalysispro"
BATCH = 1000


def run(events: int = EVENTS) -> Figures:
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-long-"))
    try:
        path = folder / "store.db"
        seconds = build(path, events)
        say(f"long ticket: {events:,} events built in {seconds:.1f} s")
        return {"events": events, "build_seconds": round(seconds, 1),
                "idle_peak_rss_mib": in_child(idle, str(path))["peak_rss_mib"],
                "timeline_page": page_figures(path, events),
                "timeline_all": stream_figures(path, events),
                "verify": verify_figures(path, events),
                "command_line": command_line_figures(path)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build(path: Path, events: int) -> float:
    started = time.perf_counter()
    url = f"sqlite:///{path}"
    with build_app(Settings(db=url)) as app:
        for batch in _batches(_commands(events), BATCH):
            outcomes = app.apply_batch(batch)
            assert {o.status for o in outcomes} == {"accepted"}, outcomes[0].as_dict()
        Projector(app, engine_for(url)).catch_up()
    return time.perf_counter() - started


def _commands(events: int) -> Iterator[bytes]:
    yield command_line(f"{TICKET}-c", "create_ticket", TICKET, T0, "customer",
                       create_payload())
    yield command_line(f"{TICKET}-a", "acknowledge", TICKET, T0 + timedelta(minutes=1),
                       "agent", {})
    for n in range(events - 2):
        yield command_line(f"{TICKET}-{n}", "add_comment", TICKET,
                           T0 + timedelta(minutes=2, milliseconds=n), "customer",
                           {"body": f"comment {n}", "visibility": "public"})


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- timeline page ------------------------------------------------------------------------


def page_figures(path: Path, events: int) -> Figures:
    say("long ticket: timeline pages")
    engine = engine_for(f"sqlite:///{path}")
    t = tables()
    plain = sqlite3.connect(path)
    figures: Figures = {}
    try:
        with engine.connect() as conn:
            for name, after in (("first", 0), ("last", events - DEFAULT_LIMIT)):
                ours = _best_ms(lambda a=after: timeline_page(conn, t, TENANT, TICKET, after=a))
                base = _best_ms(lambda a=after: _plain_page(plain, a))
                figures[f"{name}_page"] = compared(
                    round(1000 / ours, 1), round(1000 / base, 1), "pages/s", ms=ours,
                    baseline_ms=base, after=after, limit=DEFAULT_LIMIT)
    finally:
        plain.close()
    return figures


def _plain_page(conn: sqlite3.Connection, after: int) -> list[Any]:
    return conn.execute("SELECT envelope FROM rm_timeline WHERE ticket_id = ? AND version > ?"
                        " ORDER BY version LIMIT ?", (TICKET, after, DEFAULT_LIMIT + 1)).fetchall()


def _best_ms(work: Callable[[], Any], rounds: int = 3, at_least: float = 0.3) -> float:
    """Milliseconds per call in the best round of ≥ `at_least` seconds, after a warm-up."""
    work()
    best = float("inf")
    for _ in range(rounds):
        calls, started = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - started < at_least:
            work()
            calls += 1
        best = min(best, (time.perf_counter() - started) / calls)
    return round(best * 1000, 3)


# -- every event, streamed ----------------------------------------------------------------


def stream_figures(path: Path, events: int) -> Figures:
    say("long ticket: timeline --all, plain read, and the whole timeline in one piece")
    plain = in_child(plain_stream, str(path))
    ours = in_child(stream_all, str(path))
    whole = in_child(whole_timeline, str(path))
    return compared(rate(events, ours["seconds"]), rate(events, plain["seconds"]), "events/s",
                    seconds=round(ours["seconds"], 2), baseline_seconds=round(plain["seconds"], 2),
                    peak_rss_mib=ours["peak_rss_mib"], baseline_peak_rss_mib=plain["peak_rss_mib"],
                    contrast_one_piece={"seconds": round(whole["seconds"], 2),
                                        "peak_rss_mib": whole["peak_rss_mib"],
                                        "bytes": whole["bytes"]})


def idle(path: str) -> dict[str, Any]:
    with build_app(Settings(db=f"sqlite:///{path}")):
        return {}


def stream_all(path: str) -> dict[str, Any]:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        started = time.perf_counter()
        code = main(["timeline", TICKET, "--all", "--json", "--db", f"sqlite:///{path}"])
        seconds = time.perf_counter() - started
    assert code == 0
    return {"seconds": seconds}


def plain_stream(path: str) -> dict[str, Any]:
    with build_app(Settings(db=f"sqlite:///{path}")), open(os.devnull, "w") as sink:
        started = time.perf_counter()
        conn = sqlite3.connect(path)
        cursor = conn.execute("SELECT envelope FROM rm_timeline WHERE ticket_id = ?"
                              " ORDER BY version", (TICKET,))
        while rows := cursor.fetchmany(BATCH):
            sink.write("".join(row[0] + "\n" for row in rows))
        conn.close()
        return {"seconds": time.perf_counter() - started}


def whole_timeline(path: str) -> dict[str, Any]:
    """What `timeline --json` did before pages: every envelope in memory, one document."""
    url = f"sqlite:///{path}"
    with build_app(Settings(db=url)), engine_for(url).connect() as conn:
        started = time.perf_counter()
        text = json.dumps(timeline(conn, tables(), TENANT, TICKET), indent=2, ensure_ascii=False)
        with open(os.devnull, "w") as sink:
            sink.write(text)
        return {"seconds": time.perf_counter() - started, "bytes": len(text.encode())}


# -- verify ID ----------------------------------------------------------------------------


def verify_figures(path: Path, events: int) -> Figures:
    say("long ticket: verify ID, and a plain read of the same rows")
    plain = in_child(plain_verify_reads, str(path))
    ours = in_child(verify_one, str(path))
    assert ours["findings"] == 0
    return compared(rate(events, ours["seconds"]), rate(events, plain["seconds"]), "events/s",
                    seconds=round(ours["seconds"], 2), baseline_seconds=round(plain["seconds"], 2),
                    rows_read=plain["rows"], peak_rss_mib=ours["peak_rss_mib"],
                    baseline_peak_rss_mib=plain["peak_rss_mib"])


def verify_one(path: str) -> dict[str, Any]:
    url = f"sqlite:///{path}"
    with build_app(Settings(db=url)) as app:
        started = time.perf_counter()
        findings = verify_store(app, TICKET, read_models=engine_for(url))
        return {"seconds": time.perf_counter() - started, "findings": len(findings)}


def plain_verify_reads(path: str) -> dict[str, Any]:
    """The rows verify reads, read and dropped: the stream's events, every receipt, the
    stream's snapshots, the ticket's timeline rows."""
    stream = stream_uuid("ticket", TENANT, TICKET).hex
    queries = [
        ("SELECT state FROM stored_events WHERE originator_id = ? ORDER BY originator_version",
         (stream,)),
        ("SELECT state FROM stored_events WHERE topic = ? ORDER BY rowid", (RECEIPT_TOPIC,)),
        ("SELECT state FROM stored_snapshots WHERE originator_id = ?"
         " ORDER BY originator_version", (stream,)),
        ("SELECT envelope FROM rm_timeline WHERE ticket_id = ? ORDER BY version", (TICKET,)),
    ]
    with build_app(Settings(db=f"sqlite:///{path}")):
        started, rows = time.perf_counter(), 0
        conn = sqlite3.connect(path)
        for sql, params in queries:
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(BATCH):
                rows += len(batch)
        conn.close()
        return {"seconds": time.perf_counter() - started, "rows": rows}


# -- the command line ---------------------------------------------------------------------


def command_line_figures(path: Path) -> Figures:
    say("long ticket: the command line")
    db = f"sqlite:///{path}"
    start_up = _wall(["--help"])
    return {name: compared(round(1 / seconds, 3), round(1 / start_up, 3), "runs/s",
                           seconds=round(seconds, 2), baseline_seconds=round(start_up, 2))
            for name, seconds in (("timeline", _wall(["timeline", TICKET, "--db", db])),
                                  ("verify", _wall(["verify", TICKET, "--db", db])))}


def _wall(args: list[str]) -> float:
    """Seconds of the best of two runs of `ticketflow ARGS`, output to /dev/null."""
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ticketflow.cli", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "COLUMNS": "140"})
        best = min(best, time.perf_counter() - started)
    return best
