"""The domain event envelope of SPEC §5, one pydantic model per event type.

The data models are the command registry's (`ticketflow.domain.commands`: each entry
names its event and that event's data model); they mirror exactly what the aggregates
emit (a property test feeds every emitted envelope through `validate_envelope`).
Envelopes written under an older schema version are brought up to date by
`upcast_envelope`, with the same upcasters the aggregate uses when it loads stored
events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AwareDatetime, Field, TypeAdapter, create_model

from ticketflow.domain.accounts import Account
from ticketflow.domain.articles import Article
from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.ticket import Ticket
from ticketflow.schemas.commands import Actor
from ticketflow.schemas.fields import Wire

#: The data model of each event type, from the command registry: each event is the one
#: its command records (`CommandType.event`, `CommandType.data`), in the registry's order.
EVENT_DATA: dict[str, type[Wire]] = {command.event: command.data
                                     for command in COMMANDS.values()}

#: The aggregate class of each kind of stream a command acts on (`CommandType.stream`).
_STREAM_CLASSES: dict[str, Any] = {cls.KIND: cls for cls in (Ticket, SelfServiceSession,
                                                             Article, Account)}

#: The aggregate class whose nested event class defines each type (for versions).
_EVENT_CLASSES: dict[str, Any] = {
    command.event: getattr(_STREAM_CLASSES[command.stream], command.event)
    for command in COMMANDS.values()
}
SCHEMA_VERSIONS = {name: getattr(cls, "class_version", 1) for name, cls in _EVENT_CLASSES.items()}


class EnvelopeBase(Wire):
    event_id: str
    type: str
    schema_version: int
    tenant: str
    ticket_id: str
    version: Annotated[int, Field(ge=1)]
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    actor: Actor
    causation_id: str
    data: Wire
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _event_model(name: str, data: type[Wire]) -> type[EnvelopeBase]:
    # Literals built at run time, which a type checker cannot follow: Any.
    type_tag: Any = Literal[name]
    version_tag: Any = Literal[SCHEMA_VERSIONS[name]]
    return create_model(f"{name}Envelope", __base__=EnvelopeBase, type=(type_tag, ...),
                        schema_version=(version_tag, ...), data=(data, ...))


EVENT_MODELS = {name: _event_model(name, data) for name, data in EVENT_DATA.items()}
_EVENT_UNION: Any = Annotated[
    Union[tuple(EVENT_MODELS.values())],  # noqa: UP007 - built from the table above
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(_EVENT_UNION)


def upcast_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    """Bring an envelope of an older schema_version up to the current one."""
    cls = _EVENT_CLASSES[envelope["type"]]
    current = SCHEMA_VERSIONS[envelope["type"]]
    upgraded = dict(envelope)
    version = upgraded.get("schema_version", 1)
    while version < current:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(upgraded)
        version += 1
    upgraded["schema_version"] = version
    return upgraded


def validate_envelope(envelope: dict[str, Any]) -> EnvelopeBase:
    return EVENT_ADAPTER.validate_python(upcast_envelope(envelope))
