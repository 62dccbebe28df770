"""`ticketflow export`: the event history for analysts (SPEC §6), in bounded memory.

Envelopes are read from the event store's notification log in recording order, one
batch of stored records at a time (`Store.stream_records`), filtered, and written
out at once, so memory does not grow with the size of the history:

- jsonl: one SPEC §5 envelope per line, exactly as stored: compact JSON, keys sorted,
  UTF-8 (non-ASCII text as is);
- csv: a header and one row per event (`COLUMNS`; `data` as compact JSON), UTF-8;
- parquet: the same columns typed (int64 versions, UTC microsecond timestamps for the
  two instants, strings otherwise); at most one batch is held as Python objects and at
  most one row group (`row_group_size` rows) as Arrow arrays.

Filters: tenant (equal), event types (by the stored topic, before decoding), and the
half-open window `since <= occurred_at < until`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ticketflow import render
from ticketflow.event_log import Store
from ticketflow.schemas.events import EVENT_DATA
from ticketflow.settings import SettingsError, instant

__all__ = [
    "BATCH",
    "COLUMNS",
    "FORMATS",
    "ROW_GROUP_SIZE",
    "add_export_command",
    "cmd_export",
    "export_events",
]

FORMATS = ("jsonl", "csv", "parquet")
COLUMNS = (
    "event_id", "type", "schema_version", "tenant", "ticket_id", "version", "occurred_at",
    "recorded_at", "actor_id", "actor_role", "causation_id", "hash", "data",
)
#: Stored records read from the notification log per query.
BATCH = 1000
#: Rows per Parquet row group (what the Parquet writer holds before writing).
ROW_GROUP_SIZE = 10_000

ProgressFn = Callable[[int], None]
_COMPACT = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def export_events(
    app: Store,
    out: BinaryIO,
    fmt: str,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    types: set[str] | None = None,
    progress: ProgressFn | None = None,
    batch: int = BATCH,
    row_group_size: int = ROW_GROUP_SIZE,
) -> int:
    """Write the selected events to `out` in `fmt`; returns how many were written.

    `progress`, if given, is called with the number of events written so far after each
    batch of `batch` stored records read, and once at the end.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if types is not None:
        unknown = sorted(set(types) - set(EVENT_DATA))
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; {_known_types()}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"{name} must carry a UTC offset")
    if batch < 1 or row_group_size < 1:
        raise ValueError("batch and row_group_size must be positive")
    envelopes = _selected(app, tenant=tenant, since=since, until=until, types=types,
                          batch=batch, progress=progress)
    if fmt == "jsonl":
        count = _write_jsonl(envelopes, out)
    elif fmt == "csv":
        count = _write_csv(envelopes, out)
    else:
        count = _write_parquet(envelopes, out, batch, row_group_size)
    out.flush()
    return count


def _selected(
    app: Store, *, tenant: str | None, since: datetime | None, until: datetime | None,
    types: set[str] | None, batch: int, progress: ProgressFn | None,
) -> Iterator[dict[str, Any]]:
    """The envelopes that pass the filters, in recording order."""
    matched = 0
    for scanned, record in enumerate(app.event_log.stream_records(batch), start=1):
        # The type is the topic's last part (as in envelope_of): skip before decoding.
        if types is None or record.topic.rsplit(".", 1)[-1] in types:
            envelope = app.event_log.envelope_of(record)
            if _wanted(envelope, tenant, since, until):
                matched += 1
                yield envelope
        if progress is not None and scanned % batch == 0:
            progress(matched)
    if progress is not None:
        progress(matched)


def _wanted(
    envelope: dict[str, Any], tenant: str | None, since: datetime | None,
    until: datetime | None,
) -> bool:
    if tenant is not None and envelope["tenant"] != tenant:
        return False
    if since is None and until is None:
        return True
    at = _instant_of(envelope["occurred_at"])
    return (since is None or since <= at) and (until is None or at < until)


def _instant_of(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- writers ----------------------------------------------------------------------------


def _write_jsonl(envelopes: Iterator[dict[str, Any]], out: BinaryIO) -> int:
    count = 0
    for envelope in envelopes:
        out.write((_COMPACT.encode(envelope) + "\n").encode("utf-8"))
        count += 1
    return count


def _row(envelope: dict[str, Any]) -> list[Any]:
    """One event in `COLUMNS` order; instants as stored (UTC ISO-8601 strings)."""
    actor = envelope.get("actor") or {}
    return [
        envelope["event_id"], envelope["type"], envelope["schema_version"], envelope["tenant"],
        envelope["ticket_id"], envelope["version"], envelope["occurred_at"],
        envelope["recorded_at"], actor.get("id"), actor.get("role"), envelope["causation_id"],
        envelope["hash"], _COMPACT.encode(envelope["data"]),
    ]


def _write_csv(envelopes: Iterator[dict[str, Any]], out: BinaryIO) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        count = 0
        for envelope in envelopes:
            writer.writerow(_row(envelope))
            count += 1
        text.flush()
    finally:
        text.detach()  # leave `out` open: it is the caller's
    return count


def _write_parquet(
    envelopes: Iterator[dict[str, Any]], out: BinaryIO, batch: int, row_group_size: int
) -> int:
    import pyarrow as pa  # noqa: PLC0415 - heavy, and only this format needs it
    import pyarrow.parquet as pq  # noqa: PLC0415

    instant = pa.timestamp("us", tz="UTC")
    types = {"schema_version": pa.int64(), "version": pa.int64(), "occurred_at": instant,
             "recorded_at": instant}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])
    converters: dict[int, Callable[[Any], Any]] = {
        COLUMNS.index("occurred_at"): _instant_of, COLUMNS.index("recorded_at"): _instant_of,
    }

    def record_batch(columns: list[list[Any]]) -> Any:
        arrays = [pa.array(values, type=field.type) for values, field in zip(
            columns, schema, strict=True)]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    count = 0
    rows = 0  # rows held as Arrow batches, not yet written
    pending: list[Any] = []
    columns: list[list[Any]] = [[] for _ in COLUMNS]
    with pq.ParquetWriter(out, schema) as writer:
        for envelope in envelopes:
            for index, value in enumerate(_row(envelope)):
                convert = converters.get(index)
                columns[index].append(convert(value) if convert else value)
            count += 1
            if len(columns[0]) == batch or rows + len(columns[0]) == row_group_size:
                pending.append(record_batch(columns))
                rows += len(columns[0])
                columns = [[] for _ in COLUMNS]
            if rows == row_group_size:
                writer.write_table(pa.Table.from_batches(pending, schema),
                                   row_group_size=row_group_size)
                pending, rows = [], 0
        if columns[0]:
            pending.append(record_batch(columns))
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema),
                               row_group_size=row_group_size)
    return count


# -- command line -----------------------------------------------------------------------


def add_export_command(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`ticketflow export --format jsonl|csv|parquet [--output PATH] [filters]`."""
    cmd: argparse.ArgumentParser = sub.add_parser(
        "export", parents=[common], help="export the event history (JSON Lines, CSV, Parquet)",
        description="Export every ticket and self-service event, in recording order, for"
        " analysts. Streams in bounded memory. Instants are ISO-8601 with a UTC offset"
        " ('Z' allowed); a bare date means 00:00 UTC.",
    )
    cmd.add_argument("--format", choices=FORMATS, required=True, help="output format")
    cmd.add_argument("--output", "-o", metavar="PATH",
                     help="file to write (default: standard output; required for parquet)")
    cmd.add_argument("--tenant", help="only this tenant's events")
    cmd.add_argument("--from", dest="since", type=instant, metavar="T",
                     help="only events that occurred at or after T")
    cmd.add_argument("--to", dest="until", type=instant, metavar="T",
                     help="only events that occurred before T")
    cmd.add_argument("--type", dest="types", action="append", type=event_type,
                     metavar="TYPE", help="only events of this type (repeatable)")
    cmd.set_defaults(handler=cmd_export)
    return cmd


def event_type(text: str) -> str:
    if text not in EVENT_DATA:
        raise argparse.ArgumentTypeError(f"unknown event type {text!r}; {_known_types()}")
    return text


def _known_types() -> str:
    return f"known types: {', '.join(sorted(EVENT_DATA))}"


def cmd_export(app: Store, args: argparse.Namespace) -> int:
    """Write the export; progress and a one-line summary go to standard error."""
    to_stdout = args.output in (None, "-")
    if args.format == "parquet" and to_stdout:
        return _usage("--format parquet writes a binary file: give it --output PATH")
    if args.since and args.until and args.since >= args.until:
        return _usage("--from must be earlier than --to (the window is [from, to))")
    if args.tenant is not None and args.tenant not in app.policy_store.policies:
        print(f"warning: no policy for tenant {args.tenant!r} (configured:"
              f" {', '.join(sorted(app.policy_store.policies))}); exporting its events anyway",
              file=sys.stderr)
    target = "standard output" if to_stdout else str(args.output)
    with _progress(not args.json) as bar:
        task = bar.add_task(f"exporting {args.format}", total=None)
        try:
            with _opened(None if to_stdout else Path(args.output)) as out:
                count = export_events(
                    app, out, args.format, tenant=args.tenant, since=args.since,
                    until=args.until, types=set(args.types) if args.types else None,
                    progress=lambda n: bar.update(task, completed=n),
                )
        except BrokenPipeError:  # `ticketflow export … | head`: the reader has had enough
            _silence_stdout()
            return 0
    if args.json:
        print(json.dumps({"exported": count, "format": args.format, "output": target}),
              file=sys.stderr)
    else:
        noun = "event" if count == 1 else "events"
        print(f"exported {count} {noun} to {target}", file=sys.stderr)
    return 0


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _progress(enabled: bool) -> Progress:
    """A spinner and a running count (the total is unknown), on a terminal only."""
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} events"), TimeElapsedColumn(),
        console=render.errors, disable=not (enabled and render.errors.is_terminal),
        transient=True,
    )


@contextmanager
def _opened(path: Path | None) -> Iterator[BinaryIO]:
    """Standard output, or the file written beside it and renamed into place once
    complete (a failed export leaves no truncated file behind)."""
    if path is None:
        yield sys.stdout.buffer
        return
    if path.is_dir():
        raise SettingsError(f"cannot write {path}: it is a directory")
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        stream = open(partial, "wb")  # noqa: SIM115 - closed below, before the rename
    except OSError as exc:
        raise SettingsError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with stream:
            yield stream
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
