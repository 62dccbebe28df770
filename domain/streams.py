"""What every event stream shares: the envelope fields on each event, the hash chain,
and the checks common to every command (tenant, time order)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ticketflow.domain.chain import event_leaf, hash_and_leaf, make_envelope
from ticketflow.domain.errors import Forbidden, InvalidMessage
from ticketflow.domain.lifecycle import Role

NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/streams")


@lru_cache(maxsize=65536)
def stream_uuid(kind: str, tenant: str, stream_id: str) -> UUID:
    """The event-store id of a tenant's stream: a ticket, a self-service session, a
    receipt. Ids are scoped by tenant (SPEC §5): two tenants' "T-1" are two streams."""
    return uuid5(NAMESPACE, f"{kind}@{tenant}/{stream_id}")


@lru_cache(maxsize=65536)
def unscoped_uuid(kind: str, name: str) -> UUID:
    """The id of something every tenant shares (a policy version), and the id the
    release before tenant scoping gave every stream (read where it is: see
    `TicketingApp.legacy_ids`). Never equal to a `stream_uuid`: "kind/…" vs "kind@…"."""
    return uuid5(NAMESPACE, f"{kind}/{name}")


@dataclass(frozen=True)
class Context:
    """Who asks, for which tenant, when it happened and when it is being recorded.
    `via`: why the actor holds `role` when the message claimed another, as the store
    says (`account_manager`: the recorded manager of the ticket's account)."""

    message_id: str
    tenant: str
    actor_id: str
    role: Role
    occurred_at: datetime
    recorded_at: datetime
    via: str | None = None

    @property
    def actor(self) -> dict[str, str]:
        return {"id": self.actor_id, "role": self.role.value}


S = TypeVar("S", bound="Stream")


class Stream(Aggregate):
    """An aggregate whose events carry the SPEC §5 envelope and a hash chain."""

    KIND: ClassVar[str] = "stream"

    class Event(Aggregate.Event):
        #: schema version 1 unless an event type says otherwise; declared here, as a
        #: type without it raises (and formats) an AttributeError for each
        #: `getattr(cls, "class_version", 1)`: twice an event
        class_version = 1
        __slots__ = ("_leaf",)  # not a field: kept beside the event (`keep_leaf`)
        if TYPE_CHECKING:
            _leaf: bytes
        event_id: str
        tenant: str
        ticket_id: str
        occurred_at: datetime
        actor: dict[str, str]
        causation_id: str
        data: dict[str, Any]
        hash: str

        @property
        def type_name(self) -> str:
            return type(self).__name__

        def keep_leaf(self, leaf: bytes) -> None:
            """Keep the event's audit log leaf, made with its hash (`_event_fields`), in
            a slot: not a field, so neither stored nor compared."""
            object.__setattr__(self, "_leaf", leaf)

        def leaf(self) -> bytes:
            """The event's audit log leaf (`event_leaf`): kept when it was emitted, else
            made from its envelope."""
            try:
                return self._leaf
            except AttributeError:  # an event not emitted here (a fold's, a test's)
                return event_leaf(self.envelope())

        def envelope(self) -> dict[str, Any]:
            return make_envelope(
                event_id=self.event_id, type_=self.type_name,
                schema_version=getattr(type(self), "class_version", 1),
                tenant=self.tenant, ticket_id=self.ticket_id, version=self.originator_version,
                occurred_at=self.occurred_at, recorded_at=self.timestamp, actor=self.actor,
                causation_id=self.causation_id, data=self.data, hash=self.hash,
            )

        def apply(self, aggregate: Any) -> None:
            aggregate.note_event(self)

    if TYPE_CHECKING:  # set by each stream's __init__; runtime annotations would
        # become fields of the Created event (eventsourcing's dataclass-style aggregates)
        tenant: str
        stream_id: str
        last_hash: str
        last_occurred_at: datetime

    def note_event(self, event: Stream.Event) -> None:
        self.last_hash = event.hash
        self.last_occurred_at = event.occurred_at

    @classmethod
    def from_envelopes(cls: type[S], envelopes: Iterable[dict[str, Any]]) -> S | None:
        """The aggregate folded from its envelopes (current schema versions, in order),
        through the same events and mutators as a load from the event store."""
        aggregate: Any = None
        for envelope in envelopes:
            event_class = getattr(cls, envelope["type"])
            fields: dict[str, Any] = {
                "originator_id": stream_uuid(cls.KIND, envelope["tenant"],
                                             envelope["ticket_id"]),
                "originator_version": envelope["version"],
                "timestamp": datetime.fromisoformat(envelope["recorded_at"]),
                "occurred_at": datetime.fromisoformat(envelope["occurred_at"]),
                **{name: envelope[name] for name in (
                    "event_id", "tenant", "ticket_id", "actor", "causation_id", "data", "hash")},
            }
            if issubclass(event_class, Aggregate.Created):
                fields["originator_topic"] = get_topic(cls)
            aggregate = event_class(**fields).mutate(aggregate)
        return aggregate

    @classmethod
    def _start(
        cls: type[S], created: type[Any], stream_id: str, ctx: Context,
        data: dict[str, Any],
    ) -> S:
        uuid = stream_uuid(cls.KIND, ctx.tenant, stream_id)
        fields, leaf = _event_fields(created, uuid, stream_id, 1, "", ctx, data)
        made = cls._create(created, id=uuid, **fields)
        cast(Stream.Event, made.pending_events[-1]).keep_leaf(leaf)
        return made

    def _emit(self, event_class: type[Stream.Event], ctx: Context, data: dict[str, Any]) -> None:
        fields, leaf = _event_fields(
            event_class, self.id, self.stream_id, self.version + 1, self.last_hash, ctx, data
        )
        self.trigger_event(event_class, **fields)
        cast(Stream.Event, self.pending_events[-1]).keep_leaf(leaf)

    def _guard_common(self, ctx: Context) -> None:
        if ctx.tenant != self.tenant:
            raise Forbidden(
                f"an actor of tenant {ctx.tenant!r} may not act on {self.KIND} {self.stream_id}"
                f" of another tenant"
            )
        if ctx.occurred_at < self.last_occurred_at:
            raise InvalidMessage(
                f"occurred_at {ctx.occurred_at.isoformat()} is older than the {self.KIND}'s"
                f" last event ({self.last_occurred_at.isoformat()})"
            )


def _event_fields(
    event_class: type[Stream.Event], uuid: UUID, stream_id: str, version: int,
    previous_hash: str, ctx: Context, data: dict[str, Any],
) -> tuple[dict[str, Any], bytes]:
    """The fields of an event being emitted, and its audit log leaf."""
    event_id = str(uuid5(uuid, str(version)))  # the stream's own id: legacy ones keep theirs
    envelope = make_envelope(
        event_id=event_id, type_=event_class.__name__,
        schema_version=getattr(event_class, "class_version", 1), tenant=ctx.tenant,
        ticket_id=stream_id, version=version, occurred_at=ctx.occurred_at,
        recorded_at=ctx.recorded_at, actor=ctx.actor, causation_id=ctx.message_id, data=data,
    )
    found, leaf = hash_and_leaf(previous_hash, envelope)
    return {
        "event_id": event_id, "tenant": ctx.tenant, "ticket_id": stream_id,
        "occurred_at": ctx.occurred_at, "actor": ctx.actor, "causation_id": ctx.message_id,
        "data": data, "hash": found, "timestamp": ctx.recorded_at,
    }, leaf


def envelope_from_state(topic: str, version: int, state: dict[str, Any]) -> dict[str, Any]:
    """The SPEC §5 envelope of a stream event, from its stored topic, version and state
    (decoded, not upcast: the envelope that was hashed; instants as objects or text)."""
    return make_envelope(
        event_id=state["event_id"], type_=topic.rsplit(".", 1)[-1],
        schema_version=state.get("class_version", 1), tenant=state["tenant"],
        ticket_id=state["ticket_id"], version=version, occurred_at=state["occurred_at"],
        recorded_at=state["timestamp"], actor=state["actor"],
        causation_id=state["causation_id"], data=state["data"], hash=state["hash"],
    )
