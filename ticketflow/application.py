"""The application service: one inbound message in, one outcome out.

apply(raw) = parse → load (or create) the stream → run the command → save its events
together with the message's receipt in one transaction. A lost optimistic-concurrency
race is retried from a fresh load; a collision with an existing receipt means the
message was seen before and is answered `duplicate`. Rejections are saved as receipts
with the original bytes (the embedded default's dead letters).
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    IntegrityError,
    InternalError,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
)

from ticketflow.domain.errors import (
    AlreadyExists,
    Conflict,
    InvalidMessage,
    NotFound,
    Rejected,
)
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.policy import Policy, PolicyError
from ticketflow.domain.policy_versions import PolicyVersion, policy_version_uuid
from ticketflow.domain.receipt import Receipt, receipt_key, receipt_uuid
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.streams import Context, Stream, stream_uuid
from ticketflow.domain.ticket import Ticket
from ticketflow.domain.timers import Due, due_commands, fire_at
from ticketflow.schemas.commands import (
    CommandBase,
    message_bytes,
    parse_command,
    parse_document,
    peek_identity,
)
from ticketflow.schemas.events import SCHEMA_VERSIONS
from ticketflow.unit_of_work import StreamCache, Unit

CREATIONS = frozenset({"create_ticket", "record_self_service"})
MAX_ATTEMPTS = 10
DUES_REMEMBERED = 20_000
#: First retry waits up to this long; each later one up to twice as long (full jitter).
BACKOFF_SECONDS = 0.002
MAX_BACKOFF_SECONDS = 0.05
#: How long one message keeps retrying lost concurrency races before answering conflict.
RACE_BUDGET_SECONDS = 10.0
STREAM_TOPIC_PREFIXES = (
    f"{Ticket.__module__}:Ticket.",
    f"{SelfServiceSession.__module__}:SelfServiceSession.",
)
#: The exact topics of every ticket and session event type (for filtered log reads).
STREAM_TOPICS = tuple(
    f"{prefix}{name}" for prefix in STREAM_TOPIC_PREFIXES for name in SCHEMA_VERSIONS
    if (name == "SelfServiceRecorded") == prefix.startswith(SelfServiceSession.__module__)
)
RECEIPT_TOPIC = f"{Receipt.__module__}:Receipt.Recorded"
TICKET_TOPIC = STREAM_TOPIC_PREFIXES[0]

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    """What `ticketflow apply` prints for one input line (SPEC §6)."""

    message_id: str | None
    status: str  # accepted | duplicate | rejected
    events: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None
    ticket_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message_id": self.message_id, "status": self.status,
                               "events": self.events}
        if self.ticket_id:
            out["ticket_id"] = self.ticket_id
        if self.error:
            out["error"] = self.error
        return out


class TicketingApp(Application[UUID]):
    """The write model: tickets, self-service sessions, receipts, policy versions."""

    name = "ticketflow"
    snapshotting_intervals = {Ticket: 100}
    env = {"COMPRESSOR_TOPIC": ""}

    def __init__(
        self, policies: dict[str, Policy], env: dict[str, str] | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        super().__init__(env)
        self.policies = policies
        self.clock = clock
        self._stored_policies: dict[tuple[str, str], Policy] = {}
        self._streams = StreamCache()
        self._dues: OrderedDict[UUID, tuple[tuple[Any, ...], list[Due]]] = OrderedDict()

    def construct_recorder(self) -> ApplicationRecorder:
        """A process recorder: the application's events plus Tracking positions,
        which the outbox relay uses to remember how far it has published."""
        return _creating_tables(self.factory.process_recorder)

    def construct_snapshot_store(self) -> EventStore[UUID]:
        recorder = _creating_tables(lambda: self.factory.aggregate_recorder(purpose="snapshots"))
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    @property
    def process_recorder(self) -> ProcessRecorder:
        return cast(ProcessRecorder, self.recorder)

    # -- commands --------------------------------------------------------------------

    def apply(self, raw: bytes | str) -> Outcome:
        """Apply one inbound message (bytes as received, or text) and record its outcome."""
        return self._apply_alone(message_bytes(raw))

    def apply_batch(self, raws: Sequence[bytes]) -> list[Outcome]:
        """Apply messages in order, as `apply` would one by one, saving them all in
        one transaction. If that save collides (a message or a ticket another process
        recorded meanwhile), the batch is applied again one message at a time."""
        if len(raws) > 1:
            unit = Unit()
            outcomes = [self._attempt(unit, raw) for raw in raws]
            if self._commit(unit):
                return outcomes
        return [self._apply_alone(raw) for raw in raws]

    def fire_due(
        self, ticket_id: str, *, before: datetime | None = None, until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Outcome]:
        """Send the ticket's due time-driven commands, earliest first: those due
        strictly before `before`, or at or before `until` (at most `limit`)."""
        fired: list[Outcome] = []
        while limit is None or len(fired) < limit:
            try:
                ticket = self.load_ticket(ticket_id)
            except NotFound:
                break
            due = self._first_due(ticket)
            if due is None or not _in_window(due.at, before, until):
                break
            command, raw = _timer_command(due, ticket)
            outcome = self._apply_alone(raw, command, prefire=False)
            fired.append(outcome)
            if outcome.status != "accepted":
                break  # another timer got there first, or a bug: never loop on it
        return fired

    def next_due_at(self, ticket_id: str) -> datetime | None:
        try:
            due = self._first_due(self.load_ticket(ticket_id))
        except NotFound:
            return None
        return None if due is None else due.at

    def _first_due(self, ticket: Ticket) -> Due | None:
        dues = self._dues_of(ticket)
        return dues[0] if dues else None

    def _dues_of(self, ticket: Ticket) -> list[Due]:
        """`due_commands` of the ticket, remembered while nothing they depend on changes:
        its SLA facts, status, level and priority (a comment or an assignment changes
        none of them, so the SLA clocks are not evaluated again for it)."""
        key = (len(ticket.sla_facts), ticket.status, ticket.level, ticket.priority)
        memo = self._dues.get(ticket.id)
        if memo is None or memo[0] != key:
            memo = (key, due_commands(ticket, self.policy_of(ticket)))
            self._dues[ticket.id] = memo
            if len(self._dues) > DUES_REMEMBERED:
                self._dues.popitem(last=False)
        return memo[1]

    def _apply_alone(
        self, raw: bytes, command: CommandBase | None = None, *, prefire: bool = True
    ) -> Outcome:
        """One message in a transaction of its own. A lost optimistic-concurrency race
        is retried from fresh state (for up to `RACE_BUDGET_SECONDS`, backing off); a
        message seen before is answered `duplicate`. A message that keeps losing is
        answered `conflict` *without* recording it: nothing happened, so the same
        message may be sent again (the command consumer does so itself)."""
        deadline = time.monotonic() + RACE_BUDGET_SECONDS
        attempt = 0
        while True:
            unit = Unit()
            outcome = self._attempt(unit, raw, command, prefire=prefire)
            if self._commit(unit):
                return outcome
            if self._seen(receipt_key(outcome.message_id, raw)):
                return Outcome(outcome.message_id, "duplicate", ticket_id=outcome.ticket_id)
            if time.monotonic() > deadline:
                break
            attempt += 1
            time.sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt)))
        conflict = Conflict(f"still losing to concurrent writers after {attempt + 1} tries in"
                            f" {RACE_BUDGET_SECONDS:.0f} s; nothing was recorded: send it again")
        return Outcome(outcome.message_id, "rejected", error=conflict.as_dict(),
                       ticket_id=outcome.ticket_id)

    def _attempt(
        self, unit: Unit, raw: bytes, command: CommandBase | None = None, *,
        prefire: bool = True,
    ) -> Outcome:
        """Run one message into the unit (nothing is saved yet): first the ticket's
        time-driven commands that fell due before it (so a late or absent timer
        process never changes history), then the message itself."""
        if command is None:
            try:
                command = parse_command(raw)
            except InvalidMessage as rejection:
                return self._reject_in(unit, raw, rejection, peek_identity(raw))
        if command.message_id in unit.keys:
            return Outcome(command.message_id, "duplicate", ticket_id=command.stream_id)
        if prefire and command.type not in CREATIONS and command.ticket_id:
            self._fire_due_in(unit, command.ticket_id, before=command.occurred_at,
                              tenant=command.tenant)
        return self._run_in(unit, command, raw)

    def _fire_due_in(self, unit: Unit, ticket_id: str, *, before: datetime,
                     tenant: str) -> None:
        """Another tenant's command fires nothing: it is refused without side effects."""
        while True:
            try:
                ticket: Ticket = self._checkout(unit, "ticket", ticket_id)
            except NotFound:
                return
            if ticket.tenant != tenant:
                return
            due = self._first_due(ticket)
            if due is None or not due.at < before:
                return
            command, raw = _timer_command(due, ticket)
            if command.message_id in unit.keys:
                return  # never loop on a timer command
            if self._run_in(unit, command, raw).status != "accepted":
                return

    def _run_in(self, unit: Unit, command: CommandBase, raw: bytes) -> Outcome:
        try:
            emitted = self._handle(unit, command)
        except Rejected as rejection:
            identity = {"message_id": command.message_id, "tenant": command.tenant,
                        "ticket_id": command.stream_id}
            return self._reject_in(unit, raw, rejection, identity)
        unit.record(Receipt.accepted(command.message_id, command.tenant, command.stream_id,
                                     [(e.type_name, e.originator_version)
                                      for e in emitted], self.clock()))
        unit.keys.add(command.message_id)
        return Outcome(command.message_id, "accepted",
                       [e.type_name for e in emitted],
                       ticket_id=command.stream_id)

    def _handle(self, unit: Unit, command: CommandBase) -> list[Any]:
        """Run the command on its stream; returns its events (also queued in the unit)."""
        ctx = self._context(command)
        policy = self._tenant_policy(command.tenant)
        payload = command.payload_dict()
        stream: Stream
        done = 0  # events the stream already had pending in this unit
        if command.type == "record_self_service":
            self._must_not_exist(unit, "session", command.stream_id)
            stream = SelfServiceSession.record(ctx, command.stream_id, payload)
            unit.streams[stream.id] = stream
        elif command.type == "create_ticket":
            self._must_not_exist(unit, "ticket", command.stream_id)
            stream = Ticket.create(ctx, policy, command.stream_id, payload)
            unit.streams[stream.id] = stream
            self._publish_policy(unit, policy)
        else:
            ticket: Ticket = self._checkout(unit, "ticket", command.stream_id)
            done = len(ticket.pending_events)
            ticket.handle(command.type, ctx, self.policy_of(ticket), payload)
            stream = ticket
        emitted = list(stream.pending_events[done:])
        unit.events.extend(emitted)
        return emitted

    def _checkout(self, unit: Unit, kind: str, stream_id: str) -> Any:
        """The unit's copy of a stream: cached, or loaded from the store."""
        uuid = stream_uuid(kind, stream_id)
        stream = unit.streams.get(uuid) or self._streams.take(uuid)
        if stream is None:
            try:
                stream = self.repository.get(uuid)
            except AggregateNotFoundError:
                raise NotFound(f"{kind} {stream_id} not found") from None
        unit.streams[uuid] = stream
        return stream

    def _commit(self, unit: Unit) -> bool:
        """Save the unit in one transaction, its events in the order the commands
        produced them; False if it collided with the store."""
        processing = ProcessingEvent[UUID]()
        processing.events.extend(unit.events)
        for stream in unit.streams.values():
            stream.collect_events()  # already queued, in order, in unit.events
            processing.aggregates[stream.id] = stream
        try:
            recordings = self._record(processing)
        except IntegrityError:
            return False  # its streams stay out of the cache: reloaded next time
        self._take_snapshots(processing)
        self._notify(recordings)
        self._streams.give_back(unit.streams.values())
        return True

    def _context(self, command: CommandBase) -> Context:
        return Context(
            message_id=command.message_id, tenant=command.tenant, actor_id=command.actor.id,
            role=Role(command.actor.role), occurred_at=command.occurred_at.astimezone(UTC),
            recorded_at=self.clock().astimezone(UTC),
        )

    def _reject_in(
        self, unit: Unit, raw: bytes, rejection: Rejected, identity: dict[str, Any]
    ) -> Outcome:
        """Keep a rejected message (original bytes, code, reason) as its receipt."""
        message_id = identity.get("message_id")
        key = receipt_key(message_id, raw)
        stream_id = identity.get("ticket_id") or identity.get("session_id")
        if key in unit.keys:
            return Outcome(message_id, "duplicate", ticket_id=stream_id)
        unit.record(Receipt.rejected(key, raw, rejection.as_dict(), self.clock(),
                                     identity.get("tenant"), stream_id))
        unit.keys.add(key)
        return Outcome(message_id, "rejected", error=rejection.as_dict(), ticket_id=stream_id)

    def _seen(self, key: str) -> bool:
        return self._recorded(receipt_uuid(key))

    def _must_not_exist(self, unit: Unit, kind: str, stream_id: str) -> None:
        uuid = stream_uuid(kind, stream_id)
        if uuid in unit.streams or self._recorded(uuid):
            raise AlreadyExists(f"{kind} {stream_id} already exists")

    def _recorded(self, uuid: UUID) -> bool:
        """Whether the store holds the stream (one indexed read, no reconstruction)."""
        return bool(self.recorder.select_events(uuid, limit=1))

    # -- policies --------------------------------------------------------------------

    def _tenant_policy(self, tenant: str) -> Policy:
        try:
            return self.policies[tenant]
        except KeyError:
            known = ", ".join(sorted(self.policies))
            raise InvalidMessage(f"unknown tenant {tenant!r}; known: {known}") from None

    def _publish_policy(self, unit: Unit, policy: Policy) -> None:
        """Save a copy of the policy version with the ticket, the first time it is used."""
        key = (policy.id, policy.version)
        if key in self._stored_policies or key in unit.policies:
            return
        try:
            stored: PolicyVersion = self.repository.get(policy_version_uuid(*key))
        except AggregateNotFoundError:
            unit.record(PolicyVersion.publish(policy))
            unit.policies.add(key)
            return
        _check_same(stored, policy)
        self._stored_policies[key] = policy

    def policy_of(self, ticket: Ticket) -> Policy:
        """The policy version the ticket was created under."""
        ref = ticket.policy
        return self.policy_version(ref["id"], ref["version"], ref["hash"])

    def policy_version(self, policy_id: str, version: str, content_hash: str) -> Policy:
        """A policy version a ticket recorded: the file's, or the copy in the store."""
        current = self.policies.get(policy_id)
        if current and current.version == version and current.content_hash == content_hash:
            return current
        key = (policy_id, version)
        if key not in self._stored_policies:
            stored: PolicyVersion = self.repository.get(policy_version_uuid(*key))
            self._stored_policies[key] = stored.policy()
        return self._stored_policies[key]

    # -- queries ---------------------------------------------------------------------

    def load_ticket(self, ticket_id: str, as_of: datetime | None = None) -> Ticket:
        uuid = stream_uuid("ticket", ticket_id)
        try:
            if as_of is None:
                return self.repository.get(uuid)
            return self._ticket_as_of(uuid, ticket_id, as_of)
        except AggregateNotFoundError:
            raise NotFound(f"ticket {ticket_id} not found") from None

    def _ticket_as_of(self, uuid: UUID, ticket_id: str, as_of: datetime) -> Ticket:
        ticket: Any = None
        for event in self.events.get(uuid):
            if event.occurred_at > as_of:  # type: ignore[attr-defined]
                break
            ticket = event.mutate(ticket)  # type: ignore[attr-defined]
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} did not exist yet at {as_of.isoformat()}")
        return ticket

    def timeline(self, ticket_id: str) -> list[dict[str, Any]]:
        """Every stored event of the ticket as its envelope, exactly as recorded."""
        records = self.recorder.select_events(stream_uuid("ticket", ticket_id))
        if not records:
            raise NotFound(f"ticket {ticket_id} not found")
        return [self.envelope_of(record) for record in records]

    def envelope_of(self, record: StoredEvent) -> dict[str, Any]:
        """The envelope of a stored event, decoded without upcasting (what was hashed)."""
        state = self._plain(record)
        decoded = _decoded(state, instants_as_text=True) or self.mapper.transcoder.decode(state)
        return envelope_from_state(record.topic, record.originator_version, decoded)

    def decode(self, record: StoredEvent) -> dict[str, Any]:
        """A stored event's state: decrypted, decompressed and decoded."""
        state = self._plain(record)
        return _decoded(state) or self.mapper.transcoder.decode(state)

    def _plain(self, record: StoredEvent) -> bytes:
        state = record.state
        if self.mapper.cipher:
            state = self.mapper.cipher.decrypt(state)
        if self.mapper.compressor:
            state = self.mapper.compressor.decompress(state)
        return state

    def stream_records(self, batch: int = 1000) -> Iterator[StoredEvent]:
        """Every ticket and session event in recording order (the notification log)."""
        start = 1
        while True:
            notifications = self.recorder.select_notifications(start, batch,
                                                               topics=STREAM_TOPICS)
            if not notifications:
                return
            yield from notifications
            start = notifications[-1].id + 1

    def verify(self, ticket_id: str | None = None) -> list[dict[str, Any]]:
        """Tamper evidence: one finding per damaged stream (empty = intact); see audit."""
        from ticketflow.audit import verify_store  # noqa: PLC0415 - audit imports this module

        return [finding.as_dict() for finding in verify_store(self, ticket_id)]

    def receipt(self, message_id: str | None, raw: bytes = b"") -> Receipt | None:
        """The recorded outcome of a message (by id; an id-less one by its bytes)."""
        try:
            return self.repository.get(receipt_uuid(receipt_key(message_id, raw)))
        except AggregateNotFoundError:
            return None

    def rejected(self) -> Iterator[Receipt]:
        """Dead letters of the embedded default: every rejected message's receipt."""
        start = 1
        while True:
            notifications = self.recorder.select_notifications(
                start, 500, topics=[RECEIPT_TOPIC]
            )
            if not notifications:
                return
            for notification in notifications:
                receipt = self.mapper.to_domain_event(notification).mutate(None)  # type: ignore[attr-defined]
                if receipt.status == "rejected":
                    yield receipt
            start = notifications[-1].id + 1


R = TypeVar("R")


def _creating_tables(make: Callable[[], R]) -> R:
    """Construct a recorder, whose construction creates its tables if missing.

    Processes opening a fresh store at once all create its tables. On SQLite they
    both insert the table-migration record (eventsourcing 9.5) or collide while
    switching the file to WAL (IntegrityError, "database is locked"); on PostgreSQL
    concurrent DDL fails with "tuple concurrently updated" or "already exists". The
    losers try again and find the tables made. Anything else (a server that is not
    there) fails at once.
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            return make()
        except (PersistenceError, sqlite3.OperationalError) as exc:
            if attempt == MAX_ATTEMPTS - 1 or not _lost_creation_race(exc):
                raise
            time.sleep(BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")


def _lost_creation_race(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError | InternalError | ProgrammingError):
        return True
    # eventsourcing wraps most SQLite errors, but not the one from switching to WAL
    locked = isinstance(exc, OperationalError | sqlite3.OperationalError)
    return locked and "locked" in str(exc)


def _timer_command(due: Due, ticket: Ticket) -> tuple[CommandBase, bytes]:
    """The inbound command the timer sends for a due rule (parsed, and as its bytes)."""
    envelope = due.envelope(ticket, fire_at(due, ticket))
    return parse_document(envelope), json.dumps(envelope).encode("utf-8")


def _in_window(at: datetime, before: datetime | None, until: datetime | None) -> bool:
    return (before is None or at < before) and (until is None or at <= until)


def _check_same(stored: PolicyVersion, policy: Policy) -> None:
    if stored.content_hash != policy.content_hash:
        raise PolicyError(
            f"policy {policy.id} version {policy.version} differs from the copy stored when"
            f" it was first used (hash {stored.content_hash[:12]}… vs {policy.content_hash[:12]}…)."
            " Give the changed policy a new `version`."
        )


def envelope_from_state(topic: str, version: int, state: dict[str, Any]) -> dict[str, Any]:
    """The SPEC §5 envelope of a stream event, from its stored topic, version and state."""
    return {
        "event_id": state["event_id"], "type": topic.rsplit(".", 1)[-1],
        "schema_version": state.get("class_version", 1), "tenant": state["tenant"],
        "ticket_id": state["ticket_id"], "version": version,
        "occurred_at": _utc(state["occurred_at"]), "recorded_at": _utc(state["timestamp"]),
        "actor": state["actor"], "causation_id": state["causation_id"],
        "data": state["data"], "hash": state["hash"],
    }


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


def _utc(value: datetime | str) -> str:
    """An instant as UTC ISO-8601 text (ISO text already in UTC is taken as it is)."""
    if isinstance(value, str):
        if value.endswith("+00:00"):
            return value
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat()
