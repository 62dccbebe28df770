"""Event histories for the benchmarks, built once and cached on disk.

The base is a seeded, realistic workload (`ticketflow.workload`) applied through the
application service, with the timers fired to its end: tickets, self-service sessions,
receipts and policy copies as production writes them. A larger history clones the
base's records under new ids (`<id>-c<k>`), each clone four weeks earlier than the
one before so the history spans months, with event ids and hash chains recomputed so
every clone verifies, until it holds the requested number of ticket and session events.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import StoredEvent

from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.domain.chain import chain_hash
from ticketflow.domain.receipt import receipt_uuid
from ticketflow.domain.streams import envelope_from_state, stream_uuid
from ticketflow.event_log import RECEIPT_TOPIC, STREAM_TOPIC_PREFIXES
from ticketflow.log_tree import LOG_APPEND
from ticketflow.settings import Settings
from ticketflow.timers import Timers
from ticketflow.tools.workload import generate_workload

RECIPE = 2  # bump when what is generated changes: old cache files are then ignored
BASE_TICKETS = 5000
START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 28
SHIFT = timedelta(days=DAYS)


def cache_dir() -> Path:
    folder = Path(os.environ.get("TICKETFLOW_BENCH_CACHE", "~/.cache/ticketflow/bench"))
    folder = folder.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def base_store() -> Path:
    """The applied workload (about 10 events per ticket), built on first use."""
    path = cache_dir() / f"base-r{RECIPE}-{BASE_TICKETS}.db"
    if not path.exists():
        say(f"building the base history ({BASE_TICKETS} tickets, once) …")
        building = path.with_suffix(".building")
        building.unlink(missing_ok=True)
        with build_app(Settings(db=f"sqlite:///{building}")) as app:
            raws = [json.dumps(c).encode() for c in generate_workload(
                11, tickets=BASE_TICKETS, start=START, days=DAYS)]
            for start in range(0, len(raws), 500):
                app.apply_batch(raws[start:start + 500])
            Timers(app).fire_until(START + SHIFT)
        building.rename(path)
    return path


def history(events: int) -> tuple[Path, int]:
    """A store with at least `events` ticket and session events; (its file, how many)."""
    base = base_store()
    with build_app(Settings(db=f"sqlite:///{base}")) as app:
        records = [r for r in app.recorder.select_notifications(1, 10**9)
                   if r.topic.startswith(STREAM_TOPIC_PREFIXES) or r.topic == RECEIPT_TOPIC]
        states = [app.event_log.decode(r) for r in records]
        per_copy = sum(r.topic != RECEIPT_TOPIC for r in records)
        copies = max(1, -(-events // per_copy))
        path = cache_dir() / f"history-r{RECIPE}-{copies}x{per_copy}.db"
        if not path.exists():
            say(f"building a history of {copies * per_copy:,} events (once) …")
            building = path.with_suffix(".building")
            shutil.copyfile(base, building)
            with build_app(Settings(db=f"sqlite:///{building}")) as copy:
                for k in range(1, copies):
                    cloned = list(_clone(copy, records, states, k))
                    for start in range(0, len(cloned), 20_000):
                        copy.recorder.insert_events(cloned[start:start + 20_000])
                    say(f"  copy {k + 1} of {copies}")
            building.rename(path)
    return path, copies * per_copy


def logged_history(events: int) -> tuple[Path, int]:
    """`history(events)` with its audit log: the base's log (made before stored subtree
    roots: they are backfilled with the first copy, as on an upgraded store), then each
    copy's events logged in entries of up to 20,000 records, with their stored roots, in
    the same inserts — as the write service would, had it recorded them."""
    base = base_store()
    with build_app(Settings(db=f"sqlite:///{base}")) as app:
        records = [r for r in app.recorder.select_notifications(1, 10**9)
                   if r.topic.startswith(STREAM_TOPIC_PREFIXES) or r.topic == RECEIPT_TOPIC]
        states = [app.event_log.decode(r) for r in records]
        per_copy = sum(r.topic != RECEIPT_TOPIC for r in records)
    copies = max(1, -(-events // per_copy))
    path = cache_dir() / f"logged-r{RECIPE}-{copies}x{per_copy}.db"
    if not path.exists():
        say(f"building a logged history of {copies * per_copy:,} events (once) …")
        building = path.with_suffix(".building")
        shutil.copyfile(base, building)
        with build_app(Settings(db=f"sqlite:///{building}")) as copy:
            for k in range(1, copies):
                cloned = list(_clone(copy, records, states, k))
                for start in range(0, len(cloned), 20_000):
                    _insert_logged(copy, cloned[start:start + 20_000], START - SHIFT * k)
                say(f"  copy {k + 1} of {copies}")
        building.rename(path)
    return path, copies * per_copy


def _insert_logged(app: TicketingApp, records: list[StoredEvent], at: datetime) -> None:
    saved = [(n, app.event_log.envelope_of(r)) for n, r in enumerate(records)
             if r.topic != RECEIPT_TOPIC]
    entry, append = app.audit_log.entry_of(saved, at, genesis=False, check_roots=True)
    app.recorder.insert_events([*records, app.mapper.to_stored_event(entry)],
                               **{LOG_APPEND: append})


def _clone(app: TicketingApp, records: list[StoredEvent], states: list[dict[str, Any]],
           k: int) -> Iterator[StoredEvent]:
    """Copy k of the base records: new ids, k × four weeks earlier, chains recomputed."""
    hashes: dict[str, str] = {}
    shift = SHIFT * k
    for record, original in zip(records, states, strict=True):
        state = {**original, "timestamp": original["timestamp"] - shift}
        state["ticket_id"] = original["ticket_id"] and _renamed(original["ticket_id"], k)
        if record.topic == RECEIPT_TOPIC:
            state["key"] = _renamed(original["key"], k)
            if original.get("message_id"):
                state["message_id"] = _renamed(original["message_id"], k)
            yield _stored(app, receipt_uuid(state["tenant"], state["key"]), record, state)
            continue
        kind = "ticket" if record.topic.startswith(STREAM_TOPIC_PREFIXES[0]) else "session"
        stream = stream_uuid(kind, state["tenant"], state["ticket_id"])
        state["occurred_at"] = original["occurred_at"] - shift
        state["causation_id"] = _renamed(original["causation_id"], k)
        state["event_id"] = str(uuid5(stream, str(record.originator_version)))
        state["data"] = _shifted_data(original["data"], k, shift)
        state["hash"] = ""
        envelope = envelope_from_state(record.topic, record.originator_version, state)
        state["hash"] = chain_hash(hashes.get(state["ticket_id"], ""), envelope)
        hashes[state["ticket_id"]] = state["hash"]
        yield _stored(app, stream, record, state)


def _shifted_data(data: dict[str, Any], k: int, shift: timedelta) -> dict[str, Any]:
    data = dict(data)
    for name in ("session_id", "ticket_id"):  # a session names itself and its ticket
        if data.get(name):
            data[name] = _renamed(data[name], k)
    if "due_at" in data:  # SlaBreached
        data["due_at"] = (datetime.fromisoformat(data["due_at"]) - shift).isoformat()
    return data


def _renamed(name: str, k: int) -> str:
    return f"{name}-c{k}"


def _stored(app: TicketingApp, originator: UUID, record: StoredEvent,
            state: dict[str, Any]) -> StoredEvent:
    return StoredEvent(originator_id=originator, originator_version=record.originator_version,
                       topic=record.topic, state=app.mapper.transcoder.encode(state))
