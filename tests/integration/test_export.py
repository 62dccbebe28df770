"""`ticketflow export` on a real SQLite event store: every format round-trips the stored
envelopes, the filters select exactly, and memory does not grow with the export."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.builders import T0, command_line, create_payload
from tests.support.tenants import PP, fixed_clock, same_ids_story
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.cli import build_parser
from ticketflow.cli_export import cmd_export
from ticketflow.cli_session import Session
from ticketflow.export import COLUMNS, export_events
from ticketflow.schemas.events import EVENT_DATA
from ticketflow.settings import Settings
from ticketflow.timers import Timers
from ticketflow.tools.workload import generate_workload

GB = "growgrebuddy"
COMMENT = 'Grüße, "quoted", a comma\nand a second line ✓'
TICKETS = ("T-1", "G-1", "T-2")
INSTANT = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema([
    ("event_id", pa.string()), ("type", pa.string()), ("schema_version", pa.int64()),
    ("tenant", pa.string()), ("ticket_id", pa.string()), ("version", pa.int64()),
    ("occurred_at", INSTANT), ("recorded_at", INSTANT), ("actor_id", pa.string()),
    ("actor_role", pa.string()), ("causation_id", pa.string()), ("hash", pa.string()),
    ("data", pa.string()),
])
MIB = 1024 * 1024


# -- stores -----------------------------------------------------------------------------


@pytest.fixture
def store(sqlite_url: str) -> Iterator[TicketingApp]:
    """Two tenants, three tickets and a self-service session, over three days."""
    def minutes(n: int) -> datetime:
        return T0 + timedelta(minutes=n)

    day = 24 * 60
    lines = [
        command_line("m-1", "create_ticket", "T-1", T0, "customer", create_payload()),
        command_line("m-2", "acknowledge", "T-1", minutes(10), "agent", {}),
        command_line("m-3", "add_comment", "T-1", minutes(20), "customer",
                     {"body": COMMENT, "visibility": "public"}),
        command_line("m-4", "create_ticket", "G-1", minutes(day), "customer",
                     create_payload(GB), tenant=GB),
        command_line("m-5", "acknowledge", "G-1", minutes(day + 5), "agent", {}, tenant=GB),
        command_line("m-6", "resolve", "G-1", minutes(day + 30), "agent",
                     {"resolution": "Fixed"}, tenant=GB),
        command_line("m-7", "create_ticket", "T-2", minutes(2 * day), "customer",
                     create_payload(priority="low")),
    ]
    session = json.loads(command_line(
        "m-8", "record_self_service", "x", minutes(day + 40), "customer",
        {"articles_viewed": ["KB-1"], "outcome": "solved"}, tenant=GB))
    session["session_id"] = "SS-1"
    del session["ticket_id"]
    lines.append(json.dumps(session).encode())
    with build_app(Settings(db=sqlite_url)) as app:
        for line in lines:
            outcome = app.apply(line)
            assert outcome.status == "accepted", outcome
        yield app


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TicketingApp]]:
    """A realistic ~20k-event history: 2,200 tickets of both tenants over four weeks."""
    url = f"sqlite:///{tmp_path_factory.mktemp('big') / 'ticketflow.db'}"
    start = datetime(2026, 10, 5, tzinfo=UTC)
    with build_app(Settings(db=url)) as app:
        for command in generate_workload(11, tickets=2200, start=start, days=28):
            app.apply(json.dumps(command).encode())
        Timers(app).fire_until(start + timedelta(days=28))
        yield url, app


@pytest.fixture(scope="module")
def history_bytes(big_store: tuple[str, TicketingApp],
                  tmp_path_factory: pytest.TempPathFactory) -> int:
    """The size of the big store's whole history as JSON Lines."""
    path = tmp_path_factory.mktemp("history") / "all.jsonl"
    with path.open("wb") as out:
        export_events(big_store[1], out, "jsonl")
    return path.stat().st_size


def stored(app: TicketingApp) -> list[dict[str, Any]]:
    """Every envelope in recording order (what an unfiltered export must hold)."""
    return [app.event_log.envelope_of(record) for record in app.event_log.stream_records()]


def export(app: TicketingApp, fmt: str, **filters: Any) -> bytes:
    out = io.BytesIO()
    count = export_events(app, out, fmt, **filters)
    data = out.getvalue()
    if fmt == "jsonl":
        assert count == len(data.splitlines())
    return data


def jsonl(app: TicketingApp, **filters: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in export(app, "jsonl", **filters).splitlines()]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- formats ----------------------------------------------------------------------------


def test_jsonl_holds_every_envelope_as_stored_one_compact_line_each(
    store: TicketingApp,
) -> None:
    raw = export(store, "jsonl")
    lines = raw.decode("utf-8").splitlines()
    envelopes = [json.loads(line) for line in lines]
    timelines = [e for ticket in TICKETS for e in store.event_log.ticket_events(ticket)]
    tickets_only = [e for e in envelopes if e["type"] != "SelfServiceRecorded"]
    assert sorted(tickets_only, key=lambda e: (TICKETS.index(e["ticket_id"]), e["version"])) \
        == timelines
    assert envelopes == stored(store)  # recording order, sessions included
    assert [e["ticket_id"] for e in envelopes if e["type"] == "SelfServiceRecorded"] == ["SS-1"]
    assert lines == [compact(e) for e in envelopes]  # keys sorted, no spaces
    assert "Grüße" in raw.decode("utf-8") and "✓".encode() in raw  # UTF-8, not \u escapes
    assert raw.endswith(b"\n")


def test_csv_has_the_columns_and_every_value(store: TicketingApp) -> None:
    raw = export(store, "csv")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert tuple(rows[0]) == COLUMNS
    envelopes = stored(store)
    assert len(rows) == len(envelopes) + 1
    for row, e in zip(rows[1:], envelopes, strict=True):
        values = dict(zip(COLUMNS, row, strict=True))
        assert values == {
            "event_id": e["event_id"], "type": e["type"],
            "schema_version": str(e["schema_version"]), "tenant": e["tenant"],
            "ticket_id": e["ticket_id"], "version": str(e["version"]),
            "occurred_at": e["occurred_at"], "recorded_at": e["recorded_at"],
            "actor_id": e["actor"]["id"], "actor_role": e["actor"]["role"],
            "causation_id": e["causation_id"], "hash": e["hash"], "data": compact(e["data"]),
        }
        assert json.loads(values["data"]) == e["data"]
    assert any(COMMENT in json.loads(dict(zip(COLUMNS, r, strict=True))["data"]).get("body", "")
               for r in rows[1:])


def test_parquet_has_typed_columns_and_every_value(store: TicketingApp, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    with path.open("wb") as out:
        count = export_events(store, out, "parquet")
    table = pq.read_table(path)
    assert table.schema.remove_metadata() == SCHEMA
    envelopes = stored(store)
    assert count == table.num_rows == len(envelopes)
    for row, e in zip(table.to_pylist(), envelopes, strict=True):
        assert row == {
            "event_id": e["event_id"], "type": e["type"], "schema_version": e["schema_version"],
            "tenant": e["tenant"], "ticket_id": e["ticket_id"], "version": e["version"],
            "occurred_at": instant(e["occurred_at"]), "recorded_at": instant(e["recorded_at"]),
            "actor_id": e["actor"]["id"], "actor_role": e["actor"]["role"],
            "causation_id": e["causation_id"], "hash": e["hash"], "data": compact(e["data"]),
        }
        assert row["occurred_at"].utcoffset() == timedelta(0)


def test_parquet_row_groups_hold_at_most_row_group_size_rows(
    store: TicketingApp, tmp_path: Path
) -> None:
    path = tmp_path / "events.parquet"
    with path.open("wb") as out:  # batches of 2 rows gathered into groups of 3
        count = export_events(store, out, "parquet", batch=2, row_group_size=3)
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == math.ceil(count / 3)
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [3] * (count // 3) + ([count % 3] if count % 3 else [])
    assert pq.read_table(path).column("event_id").to_pylist() == [
        e["event_id"] for e in stored(store)]


def test_an_empty_selection_is_still_a_valid_file_of_each_format(
    store: TicketingApp, tmp_path: Path
) -> None:
    assert export(store, "jsonl", tenant="nobody") == b""
    assert export(store, "csv", tenant="nobody").decode().splitlines() == [",".join(COLUMNS)]
    path = tmp_path / "empty.parquet"
    with path.open("wb") as out:
        assert export_events(store, out, "parquet", tenant="nobody") == 0
    table = pq.read_table(path)
    assert (table.num_rows, table.schema.remove_metadata()) == (0, SCHEMA)


# -- filters ----------------------------------------------------------------------------


def test_the_tenant_filter_keeps_only_that_tenants_events(store: TicketingApp) -> None:
    exported = jsonl(store, tenant=GB)
    assert exported == [e for e in stored(store) if e["tenant"] == GB]
    assert {e["ticket_id"] for e in exported} == {"G-1", "SS-1"}


def test_two_tenants_tickets_with_the_same_id_are_both_exported(
    sqlite_url: str, tmp_path: Path,
) -> None:
    with build_app(Settings(db=sqlite_url), clock=fixed_clock) as app:
        same_ids_story(app)
        expected = {tenant: app.event_log.ticket_events("T-1", tenant=tenant)
                    for tenant in (PP, GB)}
        for tenant, timeline in expected.items():
            assert [e for e in jsonl(app, tenant=tenant)
                    if e["type"] != "SelfServiceRecorded"] == timeline
        exported = list(csv.DictReader(io.StringIO(export(app, "csv").decode("utf-8"))))
    assert sorted((r["tenant"], r["ticket_id"], r["type"]) for r in exported
                  if r["type"] in {"TicketCreated", "SelfServiceRecorded"}) == [
        (GB, "SS-1", "SelfServiceRecorded"), (GB, "T-1", "TicketCreated"),
        (PP, "SS-1", "SelfServiceRecorded"), (PP, "T-1", "TicketCreated")]


def test_the_time_range_is_half_open_on_occurred_at(store: TicketingApp) -> None:
    since, until = T0 + timedelta(minutes=10), T0 + timedelta(days=1)  # both are event instants
    exported = jsonl(store, since=since, until=until)
    assert exported == [e for e in stored(store)
                        if since <= instant(e["occurred_at"]) < until]
    assert [(e["ticket_id"], e["type"]) for e in exported] == [
        ("T-1", "TicketAcknowledged"), ("T-1", "CommentAdded")]
    # the same instants in another offset select the same events
    new_york = since.astimezone(timezone(timedelta(hours=-5)))
    assert jsonl(store, since=new_york, until=until) == exported
    assert [e["ticket_id"] for e in jsonl(store, since=until)][:1] == ["G-1"]  # from included
    assert jsonl(store, until=T0) == []  # to excluded


def test_the_type_filter_and_combined_filters(store: TicketingApp) -> None:
    created = jsonl(store, types={"TicketCreated"})
    assert [e["ticket_id"] for e in created] == list(TICKETS)
    both = jsonl(store, types={"TicketCreated", "TicketResolved"}, tenant=GB)
    assert [(e["ticket_id"], e["type"]) for e in both] == [
        ("G-1", "TicketCreated"), ("G-1", "TicketResolved")]
    window = jsonl(store, types={"TicketCreated"}, since=T0 + timedelta(hours=1))
    assert [e["ticket_id"] for e in window] == ["G-1", "T-2"]


def test_an_unknown_event_type_is_rejected_with_the_known_ones(store: TicketingApp) -> None:
    with pytest.raises(ValueError, match="TicketExploded") as raised:
        export(store, "jsonl", types={"TicketCreated", "TicketExploded"})
    assert all(name in str(raised.value) for name in EVENT_DATA)


def test_bad_arguments_are_refused(store: TicketingApp) -> None:
    with pytest.raises(ValueError, match="xml"):
        export(store, "xml")
    with pytest.raises(ValueError, match="UTC offset"):
        export(store, "jsonl", since=datetime(2026, 11, 16))


# -- bounded memory ---------------------------------------------------------------------


def traced_peak(app: TicketingApp, fmt: str, path: Path, **options: Any) -> tuple[int, int]:
    """(events written, peak bytes of Python allocations during the export)."""
    with path.open("wb") as out:
        tracemalloc.start()
        try:
            count = export_events(app, out, fmt, **options)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return count, peak


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_memory_does_not_grow_with_the_export(
    big_store: tuple[str, TicketingApp], history_bytes: int, fmt: str, tmp_path: Path
) -> None:
    """The export holds one batch of 1,000 stored records (~1 KB each, briefly twice: the
    database rows and their decoded records), never the history: 4 MiB is ample, where
    the whole history is over 8 MiB of JSON Lines. And the peak for the whole history
    is the peak for a tenth of it."""
    _, app = big_store
    path = tmp_path / f"events.{fmt}"
    count, peak = traced_peak(app, fmt, path)
    assert count >= 20_000
    assert history_bytes > 8 * MIB
    assert peak < 4 * MIB, f"{fmt}: peak {peak:,} B for {count} events"
    first_days = {"until": datetime(2026, 10, 8, tzinfo=UTC)}
    some, small_peak = traced_peak(app, fmt, tmp_path / f"some.{fmt}", **first_days)
    assert some < count / 8
    assert peak < small_peak * 1.25 + 256 * 1024, (peak, small_peak)


def test_parquet_arrow_memory_is_bounded_by_the_row_group(
    big_store: tuple[str, TicketingApp], tmp_path: Path
) -> None:
    """Arrow's buffers (outside tracemalloc's sight) hold at most one row group."""
    _, app = big_store
    peaks = {}
    for rows in (1000, 10_000):
        pool = pa.proxy_memory_pool(pa.default_memory_pool())
        previous = pa.default_memory_pool()
        pa.set_memory_pool(pool)
        try:
            with (tmp_path / "events.parquet").open("wb") as out:
                count = export_events(app, out, "parquet", row_group_size=rows)
        finally:
            pa.set_memory_pool(previous)
        peaks[rows] = pool.max_memory()
        assert pq.ParquetFile(tmp_path / "events.parquet").metadata.num_row_groups == \
            math.ceil(count / rows)
    # ~360 B per buffered row: one group of 1,000 rows is well under 1 MiB
    assert peaks[1000] < MIB
    assert peaks[1000] * 4 < peaks[10_000], peaks


# -- command line -----------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    return build_parser()


def run(*args: str, db: str) -> subprocess.CompletedProcess[bytes]:
    """`ticketflow export …` in its own process."""
    return subprocess.run([sys.executable, "-m", "ticketflow.cli", "export", *args,
                           "--db", db], capture_output=True, timeout=300, check=False)


@contextmanager
def session_of(args: argparse.Namespace) -> Iterator[Session]:
    session = Session(args)
    try:
        yield session
    finally:
        session.close()


def test_the_command_writes_jsonl_to_standard_output(
    store: TicketingApp, sqlite_url: str
) -> None:
    result = run("--format", "jsonl", db=sqlite_url)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == stored(store)
    assert f"exported {len(stored(store))} events to standard output" in result.stderr.decode()


def test_the_command_writes_filtered_csv_to_a_file(
    store: TicketingApp, sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "out" / "events.csv"
    path.parent.mkdir()
    result = run("--format", "csv", "--output", str(path), "--tenant", "personalysispro",
                 "--from", "2026-11-16T09:10:00-05:00", "--to", "2026-11-18",
                 "--type", "TicketAcknowledged", "--type", "CommentAdded", db=sqlite_url)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert [(r["ticket_id"], r["type"]) for r in rows] == [
        ("T-1", "TicketAcknowledged"), ("T-1", "CommentAdded")]
    assert result.stdout == b""
    assert f"exported 2 events to {path}" in result.stderr.decode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["events.csv"]  # no leftovers


def test_the_command_exports_a_large_history_to_parquet(
    big_store: tuple[str, TicketingApp], tmp_path: Path
) -> None:
    url, app = big_store
    path = tmp_path / "events.parquet"
    result = run("--format", "parquet", "--output", str(path), "--json", db=url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stderr.decode().strip().splitlines()[-1])
    table = pq.read_table(path, columns=["ticket_id", "version"])
    assert summary == {"exported": table.num_rows, "format": "parquet", "output": str(path)}
    assert table.num_rows == sum(1 for _ in app.event_log.stream_records()) >= 20_000


def test_the_command_refuses_parquet_on_standard_output(sqlite_url: str) -> None:
    result = run("--format", "parquet", db=sqlite_url)
    assert result.returncode == 2
    assert b"--output PATH" in result.stderr
    assert result.stdout == b""


def test_the_command_refuses_an_unknown_type_listing_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["export", "--format", "jsonl", "--type", "TicketExploded"])
    assert exited.value.code == 2
    message = capsys.readouterr().err
    assert "unknown event type 'TicketExploded'" in message
    assert all(name in message for name in EVENT_DATA)


@pytest.mark.parametrize("value", ["2026-11-16T09:00", "yesterday"])
def test_the_command_refuses_an_instant_without_offset(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["export", "--format", "csv", "--from", value])
    assert value in capsys.readouterr().err


def test_cmd_export_checks_the_window_and_writes_through_a_temporary_file(
    store: TicketingApp, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    args = parser().parse_args(["export", "--format", "jsonl", "--output", str(path),
                                "--from", "2026-11-18", "--to", "2026-11-17", "--db", sqlite_url])
    with session_of(args) as session:
        assert cmd_export(session, args) == 2
    assert "--from must be earlier than --to" in capsys.readouterr().err
    assert not path.exists()
    args = parser().parse_args(["export", "--format", "jsonl", "--output", str(path),
                                "--from", "2026-11-17", "--json", "--db", sqlite_url])
    with session_of(args) as session:
        assert cmd_export(session, args) == 0
    assert [e["ticket_id"] for e in map(json.loads, path.read_text("utf-8").splitlines())] \
        == ["G-1", "G-1", "G-1", "T-2", "SS-1"]  # recording order: the session came last
    assert json.loads(capsys.readouterr().err)["exported"] == 5
    assert [p.name for p in tmp_path.iterdir() if "events" in p.name] == ["events.jsonl"]
