"""The copies of a stream that are served in its place, checked against its events.

`ticketflow verify` reads each stream's events once, in version order (ticketflow.verification);
as it goes, it shows each event to the checks here, which read their own rows in step:

- **snapshots** (`SnapshotCheck`): every snapshot row of the stream must sit at a stored
  event whose hash, tenant and ticket id are its own (what a load checks,
  ticketflow.snapshots), *and* equal the aggregate folded from the events up to that
  version (what a load cannot afford). The fold runs only while snapshots remain ahead.
- **the timeline read model** (`TimelineCheck`): `rm_timeline` answers `ticketflow
  timeline` and `ticket --as-of`; each row must be exactly the row projected from the
  stored event at its version (every envelope field and the hash), no version the read
  model has reached may lack its row, and no row may lie beyond the stream.

Each check keeps its first difference; memory is one page of rows and one aggregate.
Verify only reads: versions the read model has not reached yet (it is caught up by the
next read command) are not differences; those it has reached are the versions up to its
ticket row's version, or every version when it has projected the whole log, short of a
parked event (see `TimelineReader.reached`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent
from sqlalchemy import Connection, Engine, func, inspect, select

from ticketflow.event_log import STREAM_TOPICS, TICKET_TOPIC, Store
from ticketflow.projections.db import Tables, tables
from ticketflow.projections.runner import POSITION
from ticketflow.projections.timeline import timeline_row, timeline_rows
from ticketflow.snapshots import PROBLEM, decode, fold_problem, placement_problem

PAGE = 1000
#: What a tampered row can make decoding or folding raise.
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError)


@dataclass(frozen=True)
class Difference:
    """A copy's first difference from the stream's events."""

    version: int
    type: str
    problem: str
    record: str  # "snapshot" | "timeline row" | "event"
    tenant: str | None = None


class SnapshotCheck:
    """Every snapshot of one stream against the events it claims to summarise."""

    def __init__(self, app: Store, uuid: UUID) -> None:
        self.app = app
        self.pending = _snapshot_records(app, uuid)
        self.next = next(self.pending, None)
        self.folded: Any = None
        self.difference: Difference | None = None

    def see(self, record: StoredEvent, envelope: dict[str, Any]) -> None:
        if self.difference is not None or self.next is None:
            return
        try:
            self.folded = self.app.event_log.mapper.to_domain_event(record).mutate(self.folded)  # type: ignore[attr-defined]
        except UNREADABLE as exc:
            self.difference = Difference(envelope["version"], envelope["type"], (
                f"unreadable: the event does not fold ({type(exc).__name__}), so no"
                " snapshot after it can be checked"), "event")
            return
        while self.next is not None and self.next.originator_version <= envelope["version"]:
            at = envelope if self.next.originator_version == envelope["version"] else None
            self._compare(self.next, at, envelope["version"])
            self.next = next(self.pending, None)

    def end(self, last_version: int) -> Difference | None:
        if self.difference is None and self.next is not None:
            self._compare(self.next, None, last_version)
        return self.difference

    def _compare(self, record: StoredEvent, envelope: dict[str, Any] | None,
                 last_version: int) -> None:
        if self.difference is not None:
            return
        snapshot, problem = decode(self.app.event_log.mapper, record)
        if snapshot is None:
            problem = f"{PROBLEM}: {problem}"
        else:
            problem = placement_problem(snapshot, envelope, last_version) or \
                self._unfolded(snapshot)
        if problem:
            self.difference = Difference(record.originator_version, "Snapshot", problem,
                                         "snapshot")

    def _unfolded(self, snapshot: Snapshot) -> str | None:
        return fold_problem(self.app.event_log.mapper, snapshot, self.folded)


def _snapshot_records(app: Store, uuid: UUID) -> Iterator[StoredEvent]:
    if app.snapshots is None:
        return
    after: int | None = None
    while records := app.snapshots.recorder.select_events(uuid, gt=after, limit=PAGE):
        yield from records
        after = records[-1].originator_version


class TimelineReader:
    """Read-only access to the timeline read model for one `verify` run."""

    def __init__(self, app: Store, conn: Connection, t: Tables) -> None:
        self.app = app
        self.conn = conn
        self.t = t
        self._whole_log: bool | None = None

    @staticmethod
    def exists(engine: Engine) -> bool:
        return inspect(engine).has_table(tables().timeline.name)

    def rows(self, tenant: str, ticket_id: str) -> Iterator[dict[str, Any]]:
        return timeline_rows(self.conn, self.t, tenant, ticket_id, page=PAGE)

    def reached(self, tenant: str, ticket_id: str) -> float:
        """The last version of the ticket the read model has projected: every version
        once it has projected the whole log, else its ticket row's; short of the first
        parked version either way (later ones wait behind it)."""
        tickets, parked = self.t.tickets, self.t.parked
        own = self.conn.execute(select(tickets.c.version).where(
            tickets.c.tenant == tenant, tickets.c.ticket_id == ticket_id)).scalar()
        held = self.conn.execute(select(func.min(parked.c.version)).where(
            parked.c.tenant == tenant, parked.c.ticket_id == ticket_id)).scalar()
        reached = float("inf") if self._projected_whole_log() else float(own or 0)
        return reached if held is None else min(reached, held - 1)

    def _projected_whole_log(self) -> bool:
        if self._whole_log is None:
            positions = self.t.positions
            position = self.conn.execute(select(positions.c.position)
                                         .where(positions.c.name == POSITION)).scalar()
            recorder = self.app.event_log.recorder
            self._whole_log = position is not None and not recorder.select_notifications(
                position + 1, 1, topics=STREAM_TOPICS)
        return self._whole_log

    def tickets(self) -> Iterator[tuple[str, str]]:
        """(ticket id, tenant) of every ticket the read model has rows for."""
        timeline = self.t.timeline
        query = (select(timeline.c.ticket_id, timeline.c.tenant).distinct()
                 .order_by(timeline.c.ticket_id))
        for ticket_id, tenant in self.conn.execute(query):
            yield str(ticket_id), str(tenant)


class TimelineCheck:
    """One ticket's timeline rows against its stored events, in version order."""

    def __init__(self, reader: TimelineReader, tenant: str, ticket_id: str) -> None:
        self.reader = reader
        self.tenant, self.ticket_id = tenant, ticket_id
        self.rows = reader.rows(tenant, ticket_id)
        self.row = next(self.rows, None)
        self.difference: Difference | None = None

    def see(self, record: StoredEvent, envelope: dict[str, Any]) -> None:
        if self.difference is not None:
            return
        version, row = envelope["version"], self.row
        if row is not None and row["version"] < version:
            self._extra(row, f"no event of the stream is at version {row['version']}")
        elif row is not None and row["version"] == version:
            self.row = next(self.rows, None)
            differing = _differing(row, envelope)
            if differing:
                self.difference = Difference(version, envelope["type"], (
                    f"timeline row edited: its {', '.join(differing)} differ from the stored"
                    " event"), "timeline row", envelope["tenant"])
        elif version <= self.reader.reached(self.tenant, self.ticket_id):
            self.difference = Difference(version, envelope["type"], (
                "timeline row missing: the read model has no row for this event, though it"
                " has projected the ticket past it"), "timeline row", envelope["tenant"])

    def end(self, last_version: int) -> Difference | None:
        if self.difference is None and self.row is not None:
            where = (f"the store ends at version {last_version}" if last_version else
                     "the store holds no event of this ticket")
            self._extra(self.row, where)
        return self.difference

    def _extra(self, row: dict[str, Any], why: str) -> None:
        self.difference = Difference(row["version"], row["type"], (
            f"timeline row extra: a row at version {row['version']}, but {why}"),
            "timeline row", row["tenant"])


def _differing(row: dict[str, Any], envelope: dict[str, Any]) -> list[str]:
    """What of a timeline row differs from the row projected from the stored event."""
    expected = timeline_row(envelope)
    if row == expected:
        return []
    shown = row["envelope"] if isinstance(row["envelope"], dict) else {}
    fields = [name for name in sorted(envelope.keys() | shown.keys())
              if shown.get(name, _ABSENT) != envelope.get(name, _ABSENT)]
    columns = [f"{name} column" for name in expected
               if name != "envelope" and row.get(name) != expected[name]]
    return fields + columns


_ABSENT = object()


class Copies:
    """The checks of one stream's copies, shown its events as verify reads them."""

    def __init__(self, checks: list[SnapshotCheck | TimelineCheck]) -> None:
        self.checks = checks

    @classmethod
    def of(cls, app: Store, uuid: UUID, reader: TimelineReader | None,
           ticket: tuple[str, str] | None) -> Copies:
        """`ticket`: the stream's (tenant, ticket id), if it is a ticket (sessions have no
        timeline rows)."""
        checks: list[SnapshotCheck | TimelineCheck] = [SnapshotCheck(app, uuid)]
        if reader is not None and ticket is not None:
            checks.append(TimelineCheck(reader, *ticket))
        return cls(checks)

    def see(self, record: StoredEvent, envelope: dict[str, Any]) -> None:
        for check in self.checks:
            check.see(record, envelope)

    def end(self, last_version: int) -> list[Difference]:
        return [found for check in self.checks if (found := check.end(last_version))]


def is_ticket(record: StoredEvent) -> bool:
    return record.topic.startswith(TICKET_TOPIC)
