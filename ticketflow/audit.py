"""Tamper evidence: what `ticketflow verify` checks in the event store itself.

Every stream (ticket or self-service session) is read in version order and checked
three ways; the first problem of each stream is named by its version:

- **positions**: versions run 1, 2, 3 … with no gap (a deleted event leaves one), and
  an event's id is the UUIDv5 of its stream and the version it was recorded at, so an
  event moved to another position (reordered) says where it came from;
- **the hash chain**: each hash is recomputed from the previous one and the envelope
  (an edited event breaks the chain at that event);
- **receipts**: every accepted message's receipt lists the (type, version) of the
  events it emitted. A stream whose *last* events were deleted still chains, but falls
  short of the versions its receipts promise; an event whose type or causing message
  differs from its receipt was replaced.

Receipts are not chained: someone who can rewrite the database can delete an event
and its receipt together, or recompute every hash. Against that, compare with a copy
outside the database (support.ticket-events, or exported head hashes; docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import StoredEvent

from ticketflow.application import RECEIPT_TOPIC, STREAM_TOPIC_PREFIXES, TicketingApp
from ticketflow.domain.chain import chain_hash
from ticketflow.domain.errors import AmbiguousId, NotFound
from ticketflow.domain.receipt import Receipt
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.streams import stream_uuid, unscoped_uuid

BATCH = 1000
#: What a tampered row can make decoding raise (bad JSON, a missing field, bad cipher).
UNREADABLE = (ValueError, KeyError, TypeError)


@dataclass(frozen=True)
class Promise:
    """One event a receipt says was recorded."""

    stream_id: str
    tenant: str | None
    type: str
    message_id: str


@dataclass(frozen=True)
class Finding:
    ticket_id: str
    tenant: str | None
    version: int
    event_id: str
    type: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "tenant": self.tenant, "version": self.version,
                "event_id": self.event_id, "type": self.type, "problem": self.problem}


Promises = dict[UUID, dict[int, Promise]]


def verify_store(
    app: TicketingApp, ticket_id: str | None = None, tenant: str | None = None
) -> list[Finding]:
    """One finding per damaged stream (none: every stream intact), or NotFound. Confined
    to `tenant`, other tenants' streams are skipped (and their tickets not found)."""
    if ticket_id is None:
        streams, promises = _scan_log(app)
    else:
        uuid, promised = _stream_of(app, ticket_id, tenant)
        promises = {uuid: promised}
        streams = {uuid}
    findings = []
    for uuid in sorted(streams | set(promises), key=str):
        records = app.recorder.select_events(uuid)
        promised = promises.get(uuid, {})
        if tenant is not None and _owner(app, records, promised) != tenant:
            records, promised = [], {}  # as if it did not exist
        if ticket_id is not None and not records and not promised:
            raise NotFound(f"ticket {ticket_id} not found")
        finding = check_stream(app, uuid, records, promised)
        if finding is not None:
            findings.append(finding)
    return findings


def check_stream(
    app: TicketingApp, uuid: UUID, records: Sequence[StoredEvent],
    promised: dict[int, Promise],
) -> Finding | None:
    """The first problem of one stream, in version order, or None."""
    previous = ""
    for version, record in enumerate(records, start=1):
        if record.originator_version != version:
            return _missing(uuid, version, promised, f"the stream goes on at version"
                            f" {record.originator_version}")
        try:
            envelope = app.envelope_of(record)
        except UNREADABLE as exc:
            return _at(uuid, version, promised, "?", f"unreadable: the stored bytes do not"
                       f" decode ({type(exc).__name__}); the row was edited or damaged")
        positions = max(len(records), max(promised, default=0))
        problem = _problem(uuid, version, envelope, previous, promised.get(version), positions)
        if problem:
            return _at(uuid, version, promised, envelope["type"], problem, envelope)
        previous = envelope["hash"]
    last = len(records)
    if promised and max(promised) > last:
        return _missing(uuid, last + 1, promised, f"receipts promise versions up to"
                        f" {max(promised)}; the store ends at version {last}")
    return None


def _problem(
    uuid: UUID, version: int, envelope: dict[str, Any], previous: str, promise: Promise | None,
    positions: int,
) -> str | None:
    if envelope["event_id"] != event_id(uuid, version):
        recorded_at = _recorded_version(uuid, envelope["event_id"], positions)
        return (f"reordered: this event was recorded as version {recorded_at}"
                if recorded_at else "replaced: its event_id belongs to no position of"
                " this stream")
    if envelope.get("hash") != chain_hash(previous, envelope):
        return ("edited: its hash does not match the recomputed chain (this event, or the"
                " hash of the one before it, changed after recording)")
    if promise and (promise.type, promise.message_id) != (envelope["type"],
                                                          envelope["causation_id"]):
        return (f"replaced: the receipt of message {promise.message_id} recorded"
                f" {promise.type} here")
    return None


def _owner(
    app: TicketingApp, records: Sequence[StoredEvent], promised: dict[int, Promise]
) -> str | None:
    """The stream's tenant: from its receipts, else its first readable event."""
    for promise in promised.values():
        return promise.tenant
    for record in records:
        try:
            return str(app.envelope_of(record)["tenant"])
        except UNREADABLE:
            continue
    return None


def event_id(uuid: UUID, version: int) -> str:
    """The deterministic event_id of a stream position (decisions.md)."""
    return str(uuid5(uuid, str(version)))


def _recorded_version(uuid: UUID, found: str, positions: int) -> int | None:
    return next((v for v in range(1, positions + 1) if event_id(uuid, v) == found), None)


def _missing(uuid: UUID, version: int, promised: dict[int, Promise], why: str) -> Finding:
    promise = promised.get(version)
    by = f" (recorded by message {promise.message_id})" if promise else ""
    return _at(uuid, version, promised, promise.type if promise else "?",
               f"missing: version {version}{by} is not in the store; {why}")


def _at(
    uuid: UUID, version: int, promised: dict[int, Promise], type_: str, problem: str,
    envelope: dict[str, Any] | None = None,
) -> Finding:
    any_promise = next(iter(promised.values()), None)
    stream_id = envelope["ticket_id"] if envelope else (
        any_promise.stream_id if any_promise else str(uuid))
    tenant = envelope["tenant"] if envelope else (any_promise.tenant if any_promise else None)
    return Finding(stream_id, tenant, version, event_id(uuid, version), type_, problem)


def _stream_of(app: TicketingApp, ticket_id: str,
               tenant: str | None) -> tuple[UUID, dict[int, Promise]]:
    """The ticket's stream and what its receipts promise; for a ticket whose every
    event is gone, the stream its receipts still promise events of."""
    try:
        uuid = app.stream_uuid_of("ticket", ticket_id, tenant)
        return uuid, _scan_receipts(app, {uuid}).get(uuid, {})
    except NotFound:
        tenants = [tenant] if tenant is not None else sorted(app.policies)
        candidates = {stream_uuid("ticket", name, ticket_id): name for name in tenants}
        promised = _scan_receipts(app, set(candidates))
        if len(promised) > 1:
            raise AmbiguousId("ticket", ticket_id,
                              sorted(candidates[uuid] for uuid in promised)) from None
        if not promised:
            raise
        return next(iter(promised.items()))


# -- reading the log --------------------------------------------------------------------


def _scan_log(app: TicketingApp) -> tuple[set[UUID], Promises]:
    """One pass over the notification log: every stream's id, every receipt's promises."""
    streams: set[UUID] = set()
    promises: Promises = {}
    for notification in _notifications(app, topics=None):
        if notification.topic.startswith(STREAM_TOPIC_PREFIXES):
            streams.add(notification.originator_id)  # type: ignore[arg-type]
        elif notification.topic == RECEIPT_TOPIC:
            _note_promises(app, notification, promises)
    return streams, promises


def _scan_receipts(app: TicketingApp, only: set[UUID]) -> Promises:
    promises: Promises = {}
    for notification in _notifications(app, topics=[RECEIPT_TOPIC]):
        _note_promises(app, notification, promises, only)
    return promises


def _notifications(app: TicketingApp, topics: list[str] | None) -> Iterator[StoredEvent]:
    start = 1
    while True:
        batch = app.recorder.select_notifications(start, BATCH, topics=topics or ())
        if not batch:
            return
        yield from batch
        start = batch[-1].id + 1


def _note_promises(
    app: TicketingApp, notification: StoredEvent, promises: Promises,
    only: set[UUID] | None = None,
) -> None:
    try:
        receipt: Receipt = app.mapper.to_domain_event(notification).mutate(None)  # type: ignore[attr-defined]
    except UNREADABLE:
        return  # an unreadable receipt promises nothing; its stream is still checked
    if receipt.status != "accepted" or not receipt.ticket_id:
        return
    kind = "session" if SelfServiceSession.SelfServiceRecorded.__name__ in receipt.events \
        else "ticket"
    uuid = (app.stream_uuid_for(kind, str(receipt.tenant), receipt.ticket_id)
            if receipt.scoped else unscoped_uuid(kind, receipt.ticket_id))
    if only is not None and uuid not in only:
        return
    stream = promises.setdefault(uuid, {})
    for type_, version in zip(receipt.events, receipt.versions, strict=True):
        stream[version] = Promise(receipt.ticket_id, receipt.tenant, type_, receipt.key)
