"""The inbound command envelope of SPEC §5, one pydantic model per command type.

The types and their payload models are the registry's (`ticketflow.domain.commands`);
this module wraps each in the envelope every command shares. `parse_command(raw_bytes)`
is the only way bytes become a command: it decodes UTF-8, parses JSON and validates
the envelope and the payload of its type, raising `InvalidMessage` with every problem
spelled out.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.errors import InvalidMessage
from ticketflow.domain.lifecycle import Role
from ticketflow.schemas.fields import Id, Instant, StreamId, Wire, clip

COMMAND_SCHEMA_VERSION: Literal[1] = 1


def _version_one(value: Any) -> Any:
    if type(value) is not int or value != COMMAND_SCHEMA_VERSION:
        raise ValueError(f"schema_version {clip(repr(value))} is not supported: this engine"
                         f" reads commands of schema_version {COMMAND_SCHEMA_VERSION}")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_version_one)]


#: The envelope field that names each kind of stream.
STREAM_FIELDS = {"ticket": "ticket_id", "session": "session_id", "article": "article_id",
                 "account": "account_id"}


class Actor(Wire):
    id: Id
    role: Role


class CommandBase(Wire):
    """Fields every command carries. `ticket_id` names the ticket; a
    record_self_service command names its `session_id` instead, an article command
    (create_article, update_article) its `article_id`, assign_account_manager its
    `account_id`."""

    message_id: Id
    type: str
    schema_version: SchemaVersion = COMMAND_SCHEMA_VERSION
    tenant: Id
    ticket_id: StreamId | None = None
    session_id: StreamId | None = None
    article_id: StreamId | None = None
    account_id: StreamId | None = None
    occurred_at: Instant
    actor: Actor
    payload: Wire

    @model_validator(mode="after")
    def _names_its_stream(self) -> CommandBase:
        command = COMMANDS.get(self.type)
        named = STREAM_FIELDS[command.stream if command else "ticket"]
        others = [name for name in STREAM_FIELDS.values() if name != named]
        if not getattr(self, named) or any(getattr(self, other) for other in others):
            raise ValueError(f"{self.type} names a {named} and no {' or '.join(others)}")
        return self

    @property
    def stream_id(self) -> str:
        return self.ticket_id or self.session_id or self.article_id or self.account_id or ""


def _command_model(type_name: str, payload: type[Wire]) -> type[CommandBase]:
    name = "".join(part.title() for part in type_name.split("_")) + "Command"
    default: Any = ... if payload.model_fields and any(
        f.is_required() for f in payload.model_fields.values()
    ) else payload()
    # The Literal is built at run time, which a type checker cannot follow: Any.
    type_tag: Any = Literal[type_name]
    return create_model(name, __base__=CommandBase, type=(type_tag, ...),
                        payload=(payload, default))


COMMAND_MODELS = {name: _command_model(name, command.payload)
                  for name, command in COMMANDS.items()}
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
    if b"\\ud" in raw or b"\\uD" in raw:  # JSON may escape a lone surrogate; rare, so cheap
        _refuse_lone_surrogates(document)
    return parse_document(document)


def _refuse_lone_surrogates(document: Any) -> None:
    """A lone surrogate (`"\\ud800"` in JSON) is no Unicode text: it cannot be stored."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMessage(f"message holds a lone surrogate (U+{ord(exc.object[exc.start]):04X}),"
                             " which is not Unicode text") from None


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
    for key in ("message_id", "tenant", "ticket_id", "session_id", "article_id", "account_id"):
        try:
            found[key] = ID_ADAPTER.validate_python(document.get(key))
        except ValidationError:
            continue  # absent, or not a usable id (a lone surrogate cannot be stored)
    return found
