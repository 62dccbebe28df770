"""The inbound command envelope of SPEC §5, one pydantic model per command type.

`parse_command(raw_bytes)` is the only way bytes become a command: it decodes UTF-8,
parses JSON and validates the envelope and the payload of its type, raising
`InvalidMessage` with every problem spelled out.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

from ticketflow.domain.errors import InvalidMessage
from ticketflow.domain.lifecycle import Role
from ticketflow.schemas.fields import (
    Id,
    Instant,
    Note,
    Short,
    StreamId,
    Text,
    Wire,
    Zone,
    clip,
)

COMMAND_SCHEMA_VERSION: Literal[1] = 1


def _version_one(value: Any) -> Any:
    if type(value) is not int or value != COMMAND_SCHEMA_VERSION:
        raise ValueError(f"schema_version {clip(repr(value))} is not supported: this engine"
                         f" reads commands of schema_version {COMMAND_SCHEMA_VERSION}")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_version_one)]


class Actor(Wire):
    id: Id
    role: Role


# -- payloads, one per command type ------------------------------------------------------


class CreateTicket(Wire):
    account_id: Id
    plan: Id
    timezone: Zone | None = None
    channel: Id
    platform: Id | None = None
    category: Id
    subcategory: Id | None = None
    priority: Id
    subject: Short
    description: Text = ""


class FreeText(Wire):
    note: Note = None


class RequestUserInput(Wire):
    question: Text


class Resolve(Wire):
    resolution: Text


class Reopen(Wire):
    reason: Text


class Close(Wire):
    reason: Literal["confirmed", "auto_closed"] = "confirmed"


class Escalate(Wire):
    level: Id
    reason: Text


class ChangePriority(Wire):
    priority: Id
    reason: Text


class Assign(Wire):
    agent_id: Id
    tier: Id | None = None


class AddComment(Wire):
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    visibility: Literal["public", "internal"] = "public"


class ArticleRef(Wire):
    article_id: Id


class RecordSatisfaction(Wire):
    score: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Text | None = None
    nps: Annotated[int | None, Field(default=None, ge=0, le=10, strict=True)] = None


class Empty(Wire):
    pass


class RecordSlaBreach(Wire):
    clock: Literal["first_response", "resolution"]
    due_at: Instant


class RecordSelfService(Wire):
    articles_viewed: Annotated[list[Id], Field(max_length=1000)]
    outcome: Literal["solved", "ticket_created"]
    ticket_id: StreamId | None = None


PAYLOADS: dict[str, type[Wire]] = {
    "create_ticket": CreateTicket,
    "acknowledge": FreeText,
    "start_work": FreeText,
    "request_user_input": RequestUserInput,
    "receive_user_input": FreeText,
    "resolve": Resolve,
    "reopen": Reopen,
    "close": Close,
    "escalate": Escalate,
    "change_priority": ChangePriority,
    "assign": Assign,
    "add_comment": AddComment,
    "link_article": ArticleRef,
    "record_satisfaction": RecordSatisfaction,
    "consent_to_publish": Empty,
    "publish_as_article": ArticleRef,
    "record_sla_breach": RecordSlaBreach,
    "record_self_service": RecordSelfService,
}


class CommandBase(Wire):
    """Fields every command carries. `ticket_id` names the ticket; a
    record_self_service command names its `session_id` instead."""

    message_id: Id
    type: str
    schema_version: SchemaVersion = COMMAND_SCHEMA_VERSION
    tenant: Id
    ticket_id: StreamId | None = None
    session_id: StreamId | None = None
    occurred_at: Instant
    actor: Actor
    payload: Wire

    @model_validator(mode="after")
    def _names_its_stream(self) -> CommandBase:
        if self.type == "record_self_service":
            if not self.session_id or self.ticket_id:
                raise ValueError("record_self_service names a session_id and no ticket_id")
        elif not self.ticket_id or self.session_id:
            raise ValueError(f"{self.type} names a ticket_id and no session_id")
        return self

    @property
    def stream_id(self) -> str:
        return self.ticket_id or self.session_id or ""

    def payload_dict(self) -> dict[str, Any]:
        return self.payload.model_dump()


def _command_model(type_name: str, payload: type[Wire]) -> type[CommandBase]:
    name = "".join(part.title() for part in type_name.split("_")) + "Command"
    default: Any = ... if payload.model_fields and any(
        f.is_required() for f in payload.model_fields.values()
    ) else payload()
    # The Literal is built at run time, which a type checker cannot follow: Any.
    type_tag: Any = Literal[type_name]
    return create_model(name, __base__=CommandBase, type=(type_tag, ...),
                        payload=(payload, default))


COMMAND_MODELS = {name: _command_model(name, model) for name, model in PAYLOADS.items()}
_COMMAND_UNION: Any = Annotated[
    Union[tuple(COMMAND_MODELS.values())],  # noqa: UP007 - built from the table above
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[CommandBase] = TypeAdapter(_COMMAND_UNION)
#: Largest inbound message accepted; anything bigger is rejected unread.
MAX_MESSAGE_BYTES = 256 * 1024
ID_ADAPTER: TypeAdapter[str] = TypeAdapter(Id)


def message_bytes(raw: bytes | str) -> bytes:
    """An inbound message as the bytes it is: text is encoded as UTF-8, a lone surrogate
    included (`surrogatepass`), so such text is refused as not UTF-8, not a crash."""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw)
    raise TypeError(f"a message is bytes (or str), not {type(raw).__name__}")


def parse_command(raw: bytes) -> CommandBase:
    """Decode and validate one inbound message, or raise InvalidMessage saying why."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"message is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"message is not JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise InvalidMessage("message is not a command: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InvalidMessage(f"message is not a command: {clip(str(exc), 120)}") from None
    return parse_document(document)


def parse_document(document: Any) -> CommandBase:
    if not isinstance(document, dict):
        raise InvalidMessage("a command is a JSON object")
    type_ = document.get("type")
    if not isinstance(type_, str) or type_ not in COMMAND_MODELS:
        known = ", ".join(sorted(COMMAND_MODELS))
        raise InvalidMessage(f"unknown command type {clip(repr(type_))}; known: {known}")
    try:
        return COMMAND_ADAPTER.validate_python(document)
    except ValidationError as exc:
        raise InvalidMessage(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """'payload.priority: Field required; occurred_at: ...' with the type tag dropped."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        if loc and loc[0] in COMMAND_MODELS:
            loc = loc[1:]
        reason = err["msg"].removeprefix("Value error, ")
        problems.append(f"{'.'.join(loc) or 'message'}: {reason}")
    return "; ".join(problems)


def peek_identity(raw: bytes) -> dict[str, Any]:
    """Best-effort message_id / tenant / ticket of an unreadable message, for its receipt."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, a 5,000-digit number, …
        return {}
    if not isinstance(document, dict):
        return {}
    found = {}
    for key in ("message_id", "tenant", "ticket_id", "session_id"):
        try:
            found[key] = ID_ADAPTER.validate_python(document.get(key))
        except ValidationError:
            continue  # absent, or not a usable id (a lone surrogate cannot be stored)
    return found
