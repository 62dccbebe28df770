"""The inbound command envelope of SPEC §5, one pydantic model per command type.

`parse_command(raw_bytes)` is the only way bytes become a command: it decodes UTF-8,
parses JSON and validates the envelope and the payload of its type, raising
`InvalidMessage` with every problem spelled out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)

from ticketflow.domain.errors import InvalidMessage
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.policy import iana_zone
from ticketflow.schemas.characters import id_problem

COMMAND_SCHEMA_VERSION: Literal[1] = 1
#: Instants a command may carry: anything outside is a typo or garbage, and keeps the
#: calendar maths (due instants days or years later) far from datetime's limits.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _iso_instant(value: Any) -> Any:
    """Only ISO-8601 text (or a datetime): pydantic would also read 1700000000 or
    "1700000000" as a Unix time, an instant without a written offset."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("an instant is ISO-8601 text with a UTC offset, e.g."
                         " 2026-11-20T14:03:00-05:00")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{_clip(value)} is not an ISO-8601 instant, e.g."
                         " 2026-11-20T14:03:00-05:00") from None


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{value.isoformat()} is outside the years {EARLIEST.year}–"
                         f"{LATEST.year - 1} a command may carry")
    return value


def _version_one(value: Any) -> Any:
    if type(value) is not int or value != COMMAND_SCHEMA_VERSION:
        raise ValueError(f"schema_version {_clip(repr(value))} is not supported: this engine"
                         f" reads commands of schema_version {COMMAND_SCHEMA_VERSION}")
    return value


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_instant), AfterValidator(_in_range)]
SchemaVersion = Annotated[Literal[1], BeforeValidator(_version_one)]


def _plain_id(value: str) -> str:
    problem = id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


#: What the JSON Schema can say of an id's characters (ECMA-262 syntax): no control
#: characters, no common invisible, bidi or non-ASCII space characters, no space at
#: either end. The engine checks the whole rule (`id_problem`), NFC included.
_NOT_IN_ID = (r"\x00-\x1f\x7f-\x9f\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f"
              r"\u2028-\u202f\u205f-\u206f\u3000\ufeff")
ID_PATTERN = rf"^[^ {_NOT_IN_ID}](?:[^{_NOT_IN_ID}]*[^ {_NOT_IN_ID}])?$"
ID_MAX = 200
#: A ticket or session id leaves room for the ids the engine derives from it: the
#: timer's message id `timer:<ticket>:<rule>:<due instant>` is itself an `Id`, and a rule
#: (`breach:first_response`, `escalate:<level>`) and an instant take up to 66 more.
STREAM_ID_MAX = 128


def _id_schema(max_length: int) -> WithJsonSchema:
    return WithJsonSchema({
        "type": "string", "minLength": 1, "maxLength": max_length, "pattern": ID_PATTERN,
        "description": "An identifier, compared exactly: no control, invisible or"
        " formatting (bidi, zero-width) characters, no space but U+0020 and none at"
        " either end, in Unicode normalisation form NFC."})


Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX),
               AfterValidator(_plain_id), _id_schema(ID_MAX)]
StreamId = Annotated[str, StringConstraints(min_length=1, max_length=STREAM_ID_MAX),
                     AfterValidator(_plain_id), _id_schema(STREAM_ID_MAX)]


def _loadable_zone(name: str) -> str:
    iana_zone(name)  # 'America' is a folder of the zone database, not a zone
    return name


Zone = Annotated[Id, AfterValidator(_loadable_zone)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Text = Annotated[str, StringConstraints(max_length=20_000)]
Note = Annotated[str | None, Field(default=None, max_length=20_000)]


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        raise InvalidMessage(f"message is not a command: {_clip(str(exc), 120)}") from None
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
        raise InvalidMessage(f"unknown command type {_clip(repr(type_))}; known: {known}")
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
