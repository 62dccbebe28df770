"""`ticketflow export --format jsonl|csv|parquet` (SPEC §6): the scope's event history
for analysts, written by the query layer (`Queries.export`, `ticketflow.export`) to
standard output or to a file renamed into place once complete. Confined like every
read: `--tenant` / TICKETFLOW_TENANT is the session's scope, not a filter of its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ticketflow import render
from ticketflow.export import FORMATS, known_types
from ticketflow.schemas.events import EVENT_DATA
from ticketflow.settings import SettingsError, instant

if TYPE_CHECKING:
    from ticketflow.cli_session import Session


def add_export_command(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """`ticketflow export --format jsonl|csv|parquet [--output PATH] [filters]`;
    `parents`: the common options and the shared `--tenant` scope."""
    cmd = sub.add_parser(
        "export", parents=parents, help="export the event history (JSON Lines, CSV, Parquet)",
        description="Export every ticket and self-service event, in recording order, for"
        " analysts. Streams in bounded memory. Instants are ISO-8601 with a UTC offset"
        " ('Z' allowed); a bare date means 00:00 UTC.",
    )
    cmd.add_argument("--format", choices=FORMATS, required=True, help="output format")
    cmd.add_argument("--output", "-o", metavar="PATH",
                     help="file to write (default: standard output; required for parquet)")
    cmd.add_argument("--from", dest="since", type=instant, metavar="T",
                     help="only events that occurred at or after T")
    cmd.add_argument("--to", dest="until", type=instant, metavar="T",
                     help="only events that occurred before T")
    cmd.add_argument("--type", dest="types", action="append", type=event_type,
                     metavar="TYPE", help="only events of this type (repeatable)")
    cmd.set_defaults(handler=cmd_export)


def event_type(text: str) -> str:
    if text not in EVENT_DATA:
        raise argparse.ArgumentTypeError(f"unknown event type {text!r}; {known_types()}")
    return text


def cmd_export(session: Session, args: argparse.Namespace) -> int:
    """Write the scope's events; progress and a one-line summary go to standard error."""
    to_stdout = args.output in (None, "-")
    if args.format == "parquet" and to_stdout:
        return _usage("--format parquet writes a binary file: give it --output PATH")
    if args.since and args.until and args.since >= args.until:
        return _usage("--from must be earlier than --to (the window is [from, to))")
    queries = session.queries
    target = "standard output" if to_stdout else str(args.output)
    with _progress(not args.json) as bar:
        task = bar.add_task(f"exporting {args.format}", total=None)
        try:
            with _opened(None if to_stdout else Path(args.output)) as out:
                count = queries.export(
                    out, args.format, since=args.since, until=args.until,
                    types=set(args.types) if args.types else None,
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
