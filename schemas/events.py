"""The domain event envelope of SPEC §5, one pydantic model per event type.

The data models mirror exactly what the aggregates emit (a property test feeds every
emitted envelope through `validate_envelope`). Envelopes written under an older schema
version are brought up to date by `upcast_envelope`, with the same upcasters the
aggregate uses when it loads stored events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AwareDatetime, Field, TypeAdapter, create_model

from ticketflow.domain.accounts import Account
from ticketflow.domain.articles import Article
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.ticket import Ticket
from ticketflow.schemas.commands import Actor
from ticketflow.schemas.fields import Wire

Level = str | None


class PolicyRef(Wire):
    id: str
    version: str
    hash: str


class TicketCreatedData(Wire):
    account_id: str
    plan: str
    channel: str
    platform: str | None = None
    category: str
    subcategory: str | None
    priority: str
    timezone: str
    subject: str
    description: str
    policy: PolicyRef
    level: Level
    calendar: str


class Transition(Wire):
    from_: Annotated[str, Field(alias="from")]
    to: str


class NoteTransition(Transition):
    note: str | None = None


class UserInputRequestedData(Transition):
    question: str


class TicketResolvedData(Transition):
    resolution: str


class TicketReopenedData(Transition):
    reason: str


class TicketClosedData(Transition):
    reason: Literal["confirmed", "auto_closed"]


class TicketEscalatedData(Wire):
    from_level: Level
    level: str
    reason: str


class PriorityChangedData(Wire):
    from_priority: str
    priority: str
    reason: str
    calendar: str


class TicketAssignedData(Wire):
    agent_id: str
    tier: str | None


class CommentAddedData(Wire):
    body: str
    visibility: Literal["public", "internal"]


class ArticleData(Wire):
    article_id: str


class SatisfactionRecordedData(Wire):
    score: int
    comment: str | None
    nps: int | None
    resolution: int


class EmptyData(Wire):
    pass


class SlaBreachedData(Wire):
    clock: Literal["first_response", "resolution"]
    due_at: AwareDatetime


class SelfServiceRecordedData(Wire):
    session_id: str
    articles_viewed: list[str]
    outcome: Literal["solved", "ticket_created"]
    ticket_id: str | None
    suggestions_shown: list[str] | None = None


class ArticleTextData(Wire):
    article_id: str
    title: str
    body: str
    tags: list[str]


class AccountManagerAssignedData(Wire):
    account_id: str
    plan: str
    manager_id: str | None
    from_manager_id: str | None


class TicketReviewedData(Wire):
    score: Annotated[int, Field(ge=1, le=5)]
    rubric: dict[str, bool]
    note: str | None
    #: The assignee and escalation level at the ticket's latest resolution.
    agent_id: str | None
    level: Level
    resolution: int
    #: Sent by an agent who is the recorded manager of the ticket's account.
    as_account_manager: bool


EVENT_DATA: dict[str, type[Wire]] = {
    "TicketCreated": TicketCreatedData,
    "TicketAcknowledged": NoteTransition,
    "WorkStarted": NoteTransition,
    "UserInputRequested": UserInputRequestedData,
    "UserInputReceived": NoteTransition,
    "TicketResolved": TicketResolvedData,
    "TicketReopened": TicketReopenedData,
    "TicketClosed": TicketClosedData,
    "TicketEscalated": TicketEscalatedData,
    "PriorityChanged": PriorityChangedData,
    "TicketAssigned": TicketAssignedData,
    "CommentAdded": CommentAddedData,
    "ArticleLinked": ArticleData,
    "SatisfactionRecorded": SatisfactionRecordedData,
    "PublicationConsented": EmptyData,
    "PublishedAsArticle": ArticleData,
    "SlaBreached": SlaBreachedData,
    "SelfServiceRecorded": SelfServiceRecordedData,
    "ArticleCreated": ArticleTextData,
    "ArticleUpdated": ArticleTextData,
    "AccountManagerAssigned": AccountManagerAssignedData,
    "TicketReviewed": TicketReviewedData,
}

#: The stream class of the event types that are not a ticket's.
_NOT_TICKETS: dict[str, Any] = {"SelfServiceRecorded": SelfServiceSession,
                                "ArticleCreated": Article, "ArticleUpdated": Article,
                                "AccountManagerAssigned": Account}

#: The aggregate class whose nested event class defines each type (for versions).
_EVENT_CLASSES: dict[str, Any] = {
    name: getattr(_NOT_TICKETS.get(name, Ticket), name)
    for name in EVENT_DATA
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
