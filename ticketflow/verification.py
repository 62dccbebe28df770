"""Tamper evidence: what `ticketflow verify` checks.

Every stream (ticket or self-service session) is read from the event store in version
order, a page at a time, and checked three ways; the first problem of each stream is
named by its version:

- **positions**: versions run 1, 2, 3 … with no gap (a deleted event leaves one), and
  an event's id is the UUIDv5 of its stream and the version it was recorded at, so an
  event moved to another position (reordered) says where it came from;
- **the hash chain**: each hash is recomputed from the previous one and the envelope
  (an edited event breaks the chain at that event);
- **receipts**: every accepted message's receipt lists the (type, version) of the
  events it emitted. A stream whose *last* events were deleted still chains, but falls
  short of the versions its receipts promise; an event whose type or causing message
  differs from its receipt was replaced.

When the events are intact, the copies served in their place are compared with them in
the same pass (ticketflow.verification_copies): the stream's snapshots, and a ticket's rows in
the timeline read model. Each names its own first difference.

Receipts are not chained: someone who can rewrite the database can delete an event
and its receipt together, or recompute every hash. Against that, compare with a copy
outside the database (support.ticket-events, or exported head hashes; docs/security.md).

Cost: one pass over the stream's events, its snapshots and its timeline rows, a page
at a time; the receipts' promises are kept as 16 bytes per promised event.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Engine

from ticketflow.domain.accounts import Account
from ticketflow.domain.articles import Article
from ticketflow.domain.chain import chain_hash
from ticketflow.domain.errors import AmbiguousId, NotFound
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.streams import stream_uuid, unscoped_uuid
from ticketflow.event_log import RECEIPT_TOPIC, STREAM_TOPIC_PREFIXES, Store
from ticketflow.projections.db import tables
from ticketflow.verification_copies import Copies, Difference, TimelineReader, is_ticket

BATCH = 1000  # notifications per read of the log
PAGE = 1000  # events per read of one stream
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
    record: str = "event"  # or "snapshot", "timeline row": what holds the problem

    def as_dict(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "tenant": self.tenant, "version": self.version,
                "event_id": self.event_id, "type": self.type, "problem": self.problem,
                "record": self.record}


class Promised:
    """What accepted messages' receipts say one stream holds, kept small: per version a
    64-bit digest of (event type, message id) and the receipt's position in the log,
    read again only to name it in a finding."""

    #: A version this far beyond the others (a tampered receipt) is kept aside.
    FAR = 1_000_000

    def __init__(self) -> None:
        self.stream_id: str | None = None
        self.tenant: str | None = None
        self.highest = 0
        self._digests = array("Q")
        self._receipts = array("Q")
        self._far: dict[int, tuple[int, int]] = {}

    def add(self, version: int, type_: str, message_id: str, receipt: int) -> None:
        self.highest = max(self.highest, version)
        if not 1 <= version <= len(self._digests) + self.FAR:
            self._far[version] = (_digest(type_, message_id), receipt)
            return
        if version > len(self._digests):
            missing = version - len(self._digests)
            self._digests.extend([0] * missing)
            self._receipts.extend([0] * missing)
        self._digests[version - 1] = _digest(type_, message_id)
        self._receipts[version - 1] = receipt

    def _entry(self, version: int) -> tuple[int, int]:
        if 1 <= version <= len(self._digests):
            return self._digests[version - 1], self._receipts[version - 1]
        return self._far.get(version, (0, 0))

    def matches(self, version: int, type_: str, message_id: str) -> bool:
        """Whether the event fits its receipt (true where no receipt names the version)."""
        digest = self._entry(version)[0]
        return digest in (0, _digest(type_, message_id))

    def at(self, app: Store, version: int) -> Promise | None:
        """The promise of a version, read again from its receipt."""
        position = self._entry(version)[1]
        if not position:
            return None
        notification = app.event_log.recorder.select_notifications(position, 1,
                                                                   topics=[RECEIPT_TOPIC])
        receipt = _receipt(app, notification[0]) if notification else None
        if receipt is None or version not in receipt.versions:
            return None
        type_ = receipt.events[receipt.versions.index(version)]
        return Promise(receipt.ticket_id or "", receipt.tenant, type_, receipt.key)


def _digest(type_: str, message_id: str) -> int:
    text = f"{type_}\x00{message_id}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") or 1


Promises = dict[UUID, Promised]


def verify_store(
    app: Store, ticket_id: str | None = None, tenant: str | None = None,
    read_models: Engine | None = None,
) -> list[Finding]:
    """Findings for every damaged stream (none: every stream intact), or NotFound.
    Confined to `tenant`, other tenants' streams are skipped (and their tickets not
    found). With `read_models` (the read-model database, if it has been made), each
    ticket's timeline rows are compared with its events too."""
    if read_models is None or not TimelineReader.exists(read_models):
        return _verify(app, ticket_id, tenant, None)
    with read_models.connect() as conn:
        return _verify(app, ticket_id, tenant, TimelineReader(app, conn, tables()))


def _verify(app: Store, ticket_id: str | None, tenant: str | None,
            reader: TimelineReader | None) -> list[Finding]:
    if ticket_id is not None:
        return _verify_ticket(app, ticket_id, tenant, reader)
    streams, promises = _scan_log(app)
    findings: list[Finding] = []
    known = streams | set(promises)
    for uuid in sorted(known, key=str):
        audit = StreamAudit(app, uuid, promises.get(uuid) or Promised(), reader, None)
        if tenant is None or audit.owner() == tenant:  # else as if it did not exist
            findings += audit.check() or []
    if reader is not None:
        findings += _rows_without_stream(app, reader, known, tenant)
    return findings


def _verify_ticket(app: Store, ticket_id: str, tenant: str | None,
                   reader: TimelineReader | None) -> list[Finding]:
    """One ticket: its stream (of `tenant`, or of the one tenant using the id); a ticket
    with no event and no receipt left is looked for in each tenant's place, where a
    snapshot or timeline rows may still stand."""
    try:
        uuid, promised = _stream_of(app, ticket_id, tenant)
    except NotFound:
        places = {stream_uuid("ticket", name, ticket_id): name
                  for name in ([tenant] if tenant is not None else app.event_log.tenants)}
    else:
        audit = StreamAudit(app, uuid, promised, reader, ticket_id)
        found = audit.check() if tenant in (None, audit.owner()) else None
        if found is None:
            raise NotFound(f"ticket {ticket_id} not found")
        return found
    results = [StreamAudit(app, uuid, Promised(), reader, ticket_id, owner).check()
               for uuid, owner in places.items()]
    if all(found is None for found in results):
        raise NotFound(f"ticket {ticket_id} not found")
    return [finding for found in results for finding in found or []]


class StreamAudit:
    """One stream's events, read once in version order, checked and shown to its copies."""

    def __init__(self, app: Store, uuid: UUID, promised: Promised,
                 reader: TimelineReader | None, ticket_id: str | None,
                 tenant: str | None = None) -> None:
        self.app, self.uuid, self.promised, self.reader = app, uuid, promised, reader
        self.stream_id = ticket_id or promised.stream_id or str(uuid)
        self.tenant = promised.tenant or tenant
        self.asked = ticket_id
        self.copies: Copies | None = None

    def owner(self) -> str | None:
        """The stream's tenant: from its receipts, else its first readable event."""
        if self.tenant is not None:
            return self.tenant
        for record in _events(self.app, self.uuid):
            try:
                return str(self.app.event_log.envelope_of(record)["tenant"])
            except UNREADABLE:
                continue
        return None

    def check(self) -> list[Finding] | None:
        """The first problem of the stream's events, else of each copy ([]: intact);
        None if nothing of the stream is stored (no event, receipt, snapshot or row)."""
        previous, version = "", 0
        for record in _events(self.app, self.uuid):
            version += 1
            problem = self._event_problem(record, version, previous)
            if problem is not None:
                return [problem]
            previous = self._envelope["hash"]
            self._copies(record).see(record, self._envelope)
        if self.promised.highest > version:
            return [self._missing(version + 1, f"receipts promise versions up to"
                                  f" {self.promised.highest}; the store ends at version"
                                  f" {version}")]
        differences = self._copies(None).end(version)
        if not version and not self.promised.highest and not differences:
            return None
        return [self._found(d) for d in differences]

    def _event_problem(self, record: StoredEvent, version: int,
                       previous: str) -> Finding | None:
        if record.originator_version != version:
            return self._missing(version, f"the stream goes on at version"
                                 f" {record.originator_version}")
        try:
            self._envelope: dict[str, Any] = self.app.event_log.envelope_of(record)
        except UNREADABLE as exc:
            return self._at(version, "?", f"unreadable: the stored bytes do not decode"
                            f" ({type(exc).__name__}); the row was edited or damaged")
        if version == 1:
            self.stream_id, self.tenant = self._envelope["ticket_id"], self._envelope["tenant"]
        problem = self._problem(version, self._envelope, previous)
        return self._at(version, self._envelope["type"], problem) if problem else None

    def _problem(self, version: int, envelope: dict[str, Any], previous: str) -> str | None:
        if envelope["event_id"] != event_id(self.uuid, version):
            recorded_at = _recorded_version(self.uuid, envelope["event_id"],
                                            max(self._last_stored(), self.promised.highest))
            return (f"reordered: this event was recorded as version {recorded_at}"
                    if recorded_at else "replaced: its event_id belongs to no position of"
                    " this stream")
        if envelope.get("hash") != chain_hash(previous, envelope):
            return ("edited: its hash does not match the recomputed chain (this event, or"
                    " the hash of the one before it, changed after recording)")
        if not self.promised.matches(version, envelope["type"], envelope["causation_id"]):
            promise = self.promised.at(self.app, version)
            recorded = f"{promise.type} here" if promise else "another event here"
            by = f" of message {promise.message_id}" if promise else ""
            return f"replaced: the receipt{by} recorded {recorded}"
        return None

    def _copies(self, record: StoredEvent | None) -> Copies:
        if self.copies is None:
            ticket = self.asked if record is None else (
                self.stream_id if is_ticket(record) else None)
            owner = self.owner()
            self.copies = Copies.of(self.app, self.uuid, self.reader,
                                    (owner, ticket) if ticket and owner else None)
        return self.copies

    def _last_stored(self) -> int:
        last = self.app.event_log.recorder.select_events(self.uuid, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def _missing(self, version: int, why: str) -> Finding:
        promise = self.promised.at(self.app, version)
        by = f" (recorded by message {promise.message_id})" if promise else ""
        return self._at(version, promise.type if promise else "?",
                        f"missing: version {version}{by} is not in the store; {why}")

    def _at(self, version: int, type_: str, problem: str) -> Finding:
        return Finding(self.stream_id, self.tenant, version, event_id(self.uuid, version),
                       type_, problem)

    def _found(self, difference: Difference) -> Finding:
        return Finding(self.stream_id, difference.tenant or self.tenant, difference.version,
                       event_id(self.uuid, difference.version), difference.type,
                       difference.problem, difference.record)


def _rows_without_stream(app: Store, reader: TimelineReader, known: set[UUID],
                         tenant: str | None) -> list[Finding]:
    """Tickets the timeline read model shows and the store holds nothing of."""
    findings = []
    for ticket_id, owner in reader.tickets():
        uuid = app.event_log.stream_uuid_for("ticket", owner, ticket_id)
        if uuid not in known and tenant in (None, owner):
            findings += StreamAudit(app, uuid, Promised(), reader, ticket_id,
                                    owner).check() or []
    return findings


def event_id(uuid: UUID, version: int) -> str:
    """The deterministic event_id of a stream position (decisions.md)."""
    return str(uuid5(uuid, str(version)))


def _recorded_version(uuid: UUID, found: str, positions: int) -> int | None:
    return next((v for v in range(1, positions + 1) if event_id(uuid, v) == found), None)


# -- reading the store ------------------------------------------------------------------


def _events(app: Store, uuid: UUID) -> Iterator[StoredEvent]:
    """The stream's stored events in version order, read a page at a time."""
    after: int | None = None
    while records := app.event_log.recorder.select_events(uuid, gt=after, limit=PAGE):
        yield from records
        after = records[-1].originator_version


def _scan_log(app: Store) -> tuple[set[UUID], Promises]:
    """One pass over the notification log: every stream's id, every receipt's promises."""
    streams: set[UUID] = set()
    promises: Promises = {}
    for notification in _notifications(app, topics=None):
        if notification.topic.startswith(STREAM_TOPIC_PREFIXES):
            streams.add(notification.originator_id)
        elif notification.topic == RECEIPT_TOPIC:
            _note_promises(app, notification, promises)
    return streams, promises


def _stream_of(app: Store, ticket_id: str, tenant: str | None) -> tuple[UUID, Promised]:
    """The ticket's stream and what its receipts promise; for a ticket whose every
    event is gone, the stream its receipts still promise events of."""
    try:
        uuid = app.event_log.stream_uuid_of("ticket", ticket_id, tenant)
        return uuid, _scan_receipts(app, {uuid}).get(uuid) or Promised()
    except NotFound:
        tenants = [tenant] if tenant is not None else sorted(app.policy_store.policies)
        candidates = {stream_uuid("ticket", name, ticket_id): name for name in tenants}
        promised = _scan_receipts(app, set(candidates))
        if len(promised) > 1:
            raise AmbiguousId("ticket", ticket_id,
                              sorted(candidates[uuid] for uuid in promised)) from None
        if not promised:
            raise
        return next(iter(promised.items()))


def _scan_receipts(app: Store, only: set[UUID]) -> Promises:
    promises: Promises = {}
    for notification in _notifications(app, topics=[RECEIPT_TOPIC]):
        _note_promises(app, notification, promises, only)
    return promises


def _notifications(app: Store, topics: list[str] | None) -> Iterator[Any]:
    return app.event_log.records(topics=topics or (), size=BATCH)


@dataclass(frozen=True)
class _Receipt:
    """What verify reads of a receipt (ticketflow.domain.receipt.Receipt.Recorded)."""

    key: str
    status: str
    tenant: str | None
    ticket_id: str | None
    events: list[str]
    versions: list[int]
    #: recorded by a release that scopes ids by tenant (see Receipt.scoped)
    scoped: bool = True


def _receipt(app: Store, notification: StoredEvent) -> _Receipt | None:
    """The receipt's fields, decoded without building the aggregate (receipts are most
    of what `verify ID` reads); None if unreadable: it promises nothing, and its stream
    is still checked."""
    try:
        state = app.event_log.decode(notification)
        receipt = _Receipt(**{name: state[name] for name in _RECEIPT_FIELDS},
                           scoped=state["status"] != "accepted"
                           or state.get("body_sha256") is not None)
    except UNREADABLE:
        return None
    events, versions = receipt.events, receipt.versions
    if not isinstance(events, list) or not isinstance(versions, list) \
            or len(events) != len(versions):
        return None
    return receipt


#: The kind of stream a receipt's first event type belongs to (tickets: every other).
_STREAM_KIND_OF = {
    SelfServiceSession.SelfServiceRecorded.__name__: SelfServiceSession.KIND,
    Article.ArticleCreated.__name__: Article.KIND, Article.ArticleUpdated.__name__: Article.KIND,
    Account.AccountManagerAssigned.__name__: Account.KIND,
}
_RECEIPT_FIELDS = ("key", "status", "tenant", "ticket_id", "events", "versions")


def _note_promises(
    app: Store, notification: Any, promises: Promises, only: set[UUID] | None = None
) -> None:
    receipt = _receipt(app, notification)
    if receipt is None or receipt.status != "accepted" or not receipt.ticket_id:
        return
    kind = _STREAM_KIND_OF.get(receipt.events[0], "ticket") if receipt.events else "ticket"
    uuid = (app.event_log.stream_uuid_for(kind, str(receipt.tenant), receipt.ticket_id)
            if receipt.scoped else unscoped_uuid(kind, receipt.ticket_id))
    if only is not None and uuid not in only:
        return
    stream = promises.setdefault(uuid, Promised())
    stream.stream_id, stream.tenant = receipt.ticket_id, receipt.tenant
    for type_, version in zip(receipt.events, receipt.versions, strict=True):
        stream.add(version, type_, receipt.key, notification.id)
