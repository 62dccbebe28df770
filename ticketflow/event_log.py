"""The event log: the store as everything downstream of the write service reads it.

One home for what the relay, the projections, the timer, export, verification and the
query layer all need: the topics of stream and receipt records, the notification log
read in pages, a stored event decoded into its SPEC §5 envelope (exactly as hashed, no
upcasting), where a tenant's ticket or session is stored, and receipts. Nothing here
writes; nothing here imports the write service (`ticketflow.application`).

A `Store` is what a reader is handed: the log, the policy versions and the engine's
clock. `TicketingApp` is one; a read-only process can build one without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.application import Repository
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    Mapper,
    Notification,
    ProcessRecorder,
    StoredEvent,
)

from ticketflow.clock import Clock
from ticketflow.domain.accounts import Account
from ticketflow.domain.articles import Article
from ticketflow.domain.errors import AmbiguousId, NotFound
from ticketflow.domain.receipt import Receipt, digest_key, legacy_receipt_uuid, receipt_uuid
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.store_format import STORE_FORMAT_ID
from ticketflow.domain.streams import envelope_from_state, stream_uuid, unscoped_uuid
from ticketflow.domain.ticket import Ticket
from ticketflow.policy_store import PolicyStore
from ticketflow.schemas.commands import peek_identity
from ticketflow.schemas.events import SCHEMA_VERSIONS

STREAM_CLASSES = (Ticket, SelfServiceSession, Article, Account)
STREAM_TOPIC_PREFIXES = tuple(f"{cls.__module__}:{cls.__name__}."
                              for cls in STREAM_CLASSES)
#: The exact topics of every ticket, session and article event type (for filtered log
#: reads): each type is an event class of one stream class.
STREAM_TOPICS = tuple(
    f"{cls.__module__}:{cls.__name__}.{name}" for cls in STREAM_CLASSES
    for name in SCHEMA_VERSIONS
    if getattr(getattr(cls, name, None), "__qualname__", "") == f"{cls.__name__}.{name}"
)
TICKET_TOPIC = STREAM_TOPIC_PREFIXES[0]
TICKET_TOPICS = tuple(topic for topic in STREAM_TOPICS if topic.startswith(TICKET_TOPIC))
RECEIPT_TOPIC = f"{Receipt.__module__}:Receipt.Recorded"
PAGE = 1000


class EventLog:
    """Reads of one event store: its log in pages, envelopes, streams, receipts."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID],
                 tenants: Iterable[str]) -> None:
        self.recorder, self.mapper = recorder, mapper
        self.tenants = sorted(tenants)
        #: The store holds streams of the release before ids were scoped by tenant
        #: (set by the application when it opens the store; see domain/store_format.py).
        self.legacy_ids = False

    def legacy_ids_from_format(self) -> bool:
        """Whether the store holds events but no format mark: written by the release
        before ids were scoped by tenant (domain/store_format.py)."""
        if self.recorded(STORE_FORMAT_ID):
            return False
        return bool(self.recorder.select_notifications(1, 1))

    # -- the notification log --------------------------------------------------------

    def pages(self, start: int = 1, topics: Sequence[str] = (), size: int = PAGE,
              stop: int | None = None) -> Iterator[list[Notification]]:
        """The log from position `start` on (up to `stop`; only `topics`, if given), a
        page at a time: the one loop every reader of the log goes through."""
        while True:
            page = self.recorder.select_notifications(start, size, stop=stop, topics=topics)
            if not page:
                return
            yield list(page)
            start = page[-1].id + 1

    def records(self, start: int = 1, topics: Sequence[str] = (),
                size: int = PAGE) -> Iterator[Notification]:
        for page in self.pages(start, topics, size):
            yield from page

    def stream_records(self, size: int = PAGE) -> Iterator[Notification]:
        """Every ticket and session event in recording order."""
        return self.records(topics=STREAM_TOPICS, size=size)

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    # -- decoding ----------------------------------------------------------------------

    def envelope_of(self, record: StoredEvent) -> dict[str, Any]:
        """The envelope of a stored event, decoded without upcasting (what was hashed)."""
        state = self.plain(record)
        decoded = _decoded(state, instants_as_text=True) or self.mapper.transcoder.decode(state)
        return envelope_from_state(record.topic, record.originator_version, decoded)

    def decode(self, record: StoredEvent) -> dict[str, Any]:
        """A stored event's state: decrypted, decompressed and decoded."""
        state = self.plain(record)
        return _decoded(state) or self.mapper.transcoder.decode(state)

    def plain(self, record: StoredEvent) -> bytes:
        state = record.state
        if self.mapper.cipher:
            state = self.mapper.cipher.decrypt(state)
        if self.mapper.compressor:
            state = self.mapper.compressor.decompress(state)
        return state

    def envelope_at(self, uuid: UUID, version: int) -> dict[str, Any] | None:
        """The envelope of a stream's stored event at a version (None: there is none)."""
        records = self.recorder.select_events(uuid, gt=version - 1, lte=version)
        return self.envelope_of(records[0]) if records else None

    def account_of(self, ticket: UUID) -> str:
        """The account a ticket was created for (its TicketCreated's `account_id`)."""
        created = self.envelope_at(ticket, 1)
        if created is None:
            raise NotFound(f"ticket {ticket} not found")
        return str(created["data"]["account_id"])

    def account_manager(self, tenant: str, account_id: str) -> str | None:
        """The current manager of a tenant's account (its stream's latest event), or None:
        none recorded, or removed."""
        for uuid in self.stream_uuids(Account.KIND, tenant, account_id):
            records = self.recorder.select_events(uuid, desc=True, limit=1)
            if records:
                latest = self.envelope_of(records[0])
                if latest["tenant"] == tenant:
                    return latest["data"]["manager_id"]
        return None

    # -- where a tenant's stream is ------------------------------------------------------

    def stream_uuids(self, kind: str, tenant: str, stream_id: str) -> list[UUID]:
        """Where a tenant's stream may be: its own id, and in a store written before ids
        were scoped by tenant, the id that release gave it."""
        scoped = stream_uuid(kind, tenant, stream_id)
        return [scoped, unscoped_uuid(kind, stream_id)] if self.legacy_ids else [scoped]

    def recorded(self, uuid: UUID, tenant: str | None = None) -> bool:
        """Whether the store holds the stream (of `tenant`, if given): one indexed read,
        no reconstruction."""
        records = self.recorder.select_events(uuid, limit=1)
        if not records or tenant is None:
            return bool(records)
        return bool(self.envelope_of(records[0])["tenant"] == tenant)

    def stream_uuid_of(self, kind: str, stream_id: str, tenant: str | None = None) -> UUID:
        """The store id of a ticket or session named by its id, and its tenant where
        given. A bare id that only one tenant uses needs no tenant; one that several
        use raises AmbiguousId; one that none uses (for `tenant`) raises NotFound."""
        tenants = [tenant] if tenant is not None else self.tenants
        found: dict[str, UUID] = {}
        for name in tenants:
            scoped = stream_uuid(kind, name, stream_id)
            if self.recorded(scoped):
                found[name] = scoped
        if self.legacy_ids:  # the release before kept it under its bare id
            legacy = unscoped_uuid(kind, stream_id)
            records = self.recorder.select_events(legacy, limit=1)
            owner = self.envelope_of(records[0])["tenant"] if records else None
            if owner is not None and tenant in (None, owner):
                found.setdefault(owner, legacy)
        if not found:
            raise NotFound(f"{kind} {stream_id} not found")
        if len(found) > 1:
            raise AmbiguousId(kind, stream_id, sorted(found))
        return next(iter(found.values()))

    def stream_uuid_for(self, kind: str, tenant: str, stream_id: str) -> UUID:
        """Where the tenant's stream is (under its old id, in a store from before tenant
        scoping), or where it would be."""
        if not self.legacy_ids:  # the common case: no read at all
            return stream_uuid(kind, tenant, stream_id)
        for uuid in self.stream_uuids(kind, tenant, stream_id):
            if self.recorded(uuid, tenant):
                return uuid
        return stream_uuid(kind, tenant, stream_id)

    def stream_tenant(self, kind: str, stream_id: str, tenant: str | None = None) -> str:
        """The tenant of the ticket or session `stream_id` (of `tenant`, if given)."""
        uuid = self.stream_uuid_of(kind, stream_id, tenant)  # NotFound if not theirs
        if tenant is not None:
            return tenant
        return str(self.envelope_of(self.recorder.select_events(uuid, limit=1)[0])["tenant"])

    def ticket_events(self, ticket_id: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every stored event of the ticket as its envelope, exactly as recorded."""
        records = self.recorder.select_events(self.stream_uuid_of("ticket", ticket_id, tenant))
        return [self.envelope_of(record) for record in records]

    # -- receipts ----------------------------------------------------------------------

    def receipt(self, tenant: str | None, key: str) -> Receipt | None:
        """The recorded outcome of a tenant's message id (or of a message kept by its
        digest, `key` = "sha256:…"); in a store from before tenant scoping, also the
        receipt that release kept under the bare id, if it was this tenant's."""
        found = self._receipt_at(receipt_uuid(tenant, key))
        if found is not None or not self.legacy_ids:
            return found
        return self.legacy_receipt(tenant, key)

    def legacy_receipt(self, tenant: str | None, key: str) -> Receipt | None:
        """The receipt the release before kept under the bare id, if it was `tenant`'s."""
        legacy = self._receipt_at(legacy_receipt_uuid(key))
        return legacy if legacy is not None and tenant in (None, legacy.tenant) else None

    def _receipt_at(self, uuid: UUID) -> Receipt | None:
        records = self.recorder.select_events(uuid, limit=1)
        return self.receipt_from(records[0]) if records else None

    def receipt_from(self, record: StoredEvent) -> Receipt:
        return self.mapper.to_domain_event(record).mutate(None)  # type: ignore[attr-defined]

    def receipt_of(self, raw: bytes) -> Receipt | None:
        """The receipt that answered these bytes: under their tenant and message id, or
        under their digest (an invalid message, a reuse of an id for another body)."""
        identity = peek_identity(raw)
        tenant = identity.get("tenant") if identity.get("tenant") in self.tenants else None
        by_digest = self.receipt(tenant, digest_key(raw))
        if by_digest is not None or tenant is None or not identity.get("message_id"):
            return by_digest
        return self.receipt(tenant, str(identity["message_id"]))

    def receipts_of(self, message_id: str, tenant: str | None = None) -> list[Receipt]:
        """The receipts of a message id, in every tenant (or in `tenant`)."""
        tenants = [tenant] if tenant is not None else self.tenants
        found = [receipt for name in tenants if (receipt := self.receipt(name, message_id))]
        if tenant is None and not found and self.legacy_ids:
            legacy = self.receipt(None, message_id)
            found = [legacy] if legacy is not None else []
        return found

    def outcome(self, message_id: str, tenant: str | None = None) -> CommandOutcome | None:
        """What became of a message, from its receipt; None while it is not yet handled,
        or (for a caller confined to `tenant`) when only another tenant used the id. A
        message kept by its digest (invalid, or reusing an id for another body) has no
        outcome under its id: it did not use the id up. Several tenants: AmbiguousId."""
        receipts = self.receipts_of(message_id, tenant)
        if not receipts:
            return None
        if len(receipts) > 1:
            raise AmbiguousId("message", message_id, sorted(str(r.tenant) for r in receipts))
        receipt = receipts[0]
        return CommandOutcome(message_id, receipt.status, receipt.ticket_id,
                              list(zip(receipt.events, receipt.versions, strict=True)),
                              receipt.error)

    def rejected(self) -> Iterator[Receipt]:
        """Dead letters of the embedded default: every rejected message's receipt."""
        for record in self.records(topics=[RECEIPT_TOPIC], size=500):
            receipt = self.receipt_from(record)
            if receipt.status == "rejected":
                yield receipt


@dataclass(frozen=True)
class CommandOutcome:
    """What became of a message: its status, and its events or its rejection."""

    message_id: str
    status: str  # accepted | rejected
    ticket_id: str | None
    events: list[tuple[str, int]]  # (type, version) of each event it produced
    error: dict[str, str] | None


class Store(Protocol):
    """What a reader of the store is handed: `ticketflow.store.ReadStore`, or the write
    service, which extends it."""

    event_log: EventLog
    policy_store: PolicyStore
    clock: Clock

    @property
    def env(self) -> Any: ...  # its eventsourcing environment (to open it in another process)

    @property
    def process_recorder(self) -> ProcessRecorder: ...

    @property
    def snapshots(self) -> EventStore[UUID] | None: ...

    @property
    def repository(self) -> Repository[UUID]: ...


def _decoded(state: bytes, *, instants_as_text: bool = False) -> dict[str, Any] | None:
    """What the library's JSON transcoder decodes, about twice as fast: orjson, then the
    top-level datetimes the transcoder encodes as {"_type_": "datetime_iso", …} (left
    as their ISO text with `instants_as_text`). None if the state holds any other
    encoded value: the transcoder must decode it."""
    decoded: dict[str, Any] = orjson.loads(state)
    found = 0
    for name, value in decoded.items():
        if type(value) is dict and value.get("_type_") == "datetime_iso":
            text = value["_data_"]
            decoded[name] = text if instants_as_text else datetime.fromisoformat(text)
            found += 1
    return decoded if state.count(b'"_type_"') == found else None
