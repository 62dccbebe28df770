"""The commands of SPEC §3 and §5, one entry each: `COMMANDS`.

An entry (`CommandType`) is everything the engine knows of a command type: its name on
the wire, its payload model, the event it records and that event's data model, the
roles that may send it, the states it is allowed from and the state it leads to (SPEC
§3), and whether it starts a stream or acts on an existing ticket. The inbound
envelope is validated from these entries (`ticketflow.schemas.commands`), the event
envelope's `data` too (`ticketflow.schemas.events`), the application dispatches by
them, and the aggregate checks them (`CommandType.check`) before running the method
registered for the entry (`Handlers.on`), which receives the payload as its model,
never as a dict.

Adding a command: its payload model, its event's data model (unless it records an
existing event's shape) and its entry here, its method on the aggregate, its tests
(docs/architecture.md, "One command, one entry").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, Field, StrictBool, StringConstraints

from ticketflow.domain.errors import Forbidden, InvalidTransition
from ticketflow.domain.lifecycle import ALL, DONE, OPEN, Role, Status
from ticketflow.schemas.fields import (
    Id,
    Instant,
    Note,
    Short,
    StreamId,
    Text,
    Wire,
    Zone,
)

# -- payloads (SPEC §5), one model per shape ---------------------------------------------


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
    #: The articles the widget suggested (`ticketflow suggest`), in the order shown.
    suggestions_shown: Annotated[list[Id], Field(max_length=20)] = []


Tags = Annotated[list[Id], Field(max_length=20)]


class CreateArticle(Wire):
    title: Short
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    tags: Tags = []


class UpdateArticle(Wire):
    """The fields to change; those left out stay as they are."""

    title: Short | None = None
    body: Annotated[str | None, StringConstraints(min_length=1, max_length=100_000)] = None
    tags: Tags | None = None


class AssignAccountManager(Wire):
    """The account's plan (it must offer a dedicated account manager) and its manager;
    None removes the manager the account has."""

    plan: Id
    manager_id: Id | None


class ReviewTicket(Wire):
    """A manager's review of a resolved ticket's handling: a score and every item of the
    policy's rubric (`[quality]`) marked passed or not."""

    score: Annotated[int, Field(ge=1, le=5, strict=True)]
    #: JSON true or false only: not 0, 1, 0.0 or "yes" (the contracts say boolean).
    rubric: Annotated[dict[Id, StrictBool], Field(max_length=50)]
    note: Note = None


# -- event data (SPEC §5): what each event records, one model per shape ----------------
# The envelope's `data` exactly as the aggregates emit it (a property test feeds every
# emitted envelope through `ticketflow.schemas.events.validate_envelope`).

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


# -- the registry ------------------------------------------------------------------------

P = TypeVar("P", bound=Wire)


@dataclass(frozen=True, eq=False)
class CommandType(Generic[P]):
    """One command type: a row of the SPEC §3 table with its payload, its event and
    the event's data model (what the envelope's `data` holds).

    `stream` is the kind of stream it acts on (`ticket`, `session` for a
    self-service session, `article` for a knowledge-base article); a command that
    `creates` its stream is allowed from no state (`allowed_from` is empty); one that
    `opens` its stream starts it when it is missing and acts on it after (an account's
    `assign_account_manager`). `result` None means the state stays as it is.
    `judged_by` is the policy a ticket command is checked against: the version the
    ticket recorded at creation (`recorded`), or the tenant's current one (`current`:
    a review, judged by the rubric in force when it is made)."""

    name: str
    payload: type[P]
    event: str
    data: type[Wire]
    roles: frozenset[Role]
    allowed_from: frozenset[Status] = frozenset()
    result: Status | None = None
    creates: bool = False
    stream: str = "ticket"
    opens: bool = False
    judged_by: Literal["recorded", "current"] = "recorded"

    def check(self, status: Status, role: Role) -> Status:
        """The state after this command from `status`, or raise Forbidden (a role the
        table does not name) / InvalidTransition (a state it is not allowed from)."""
        self.check_role(role)
        if status not in self.allowed_from:
            allowed = ", ".join(sorted(self.allowed_from))
            raise InvalidTransition(
                f"cannot {self.name} a ticket that is {status.value}; allowed from: {allowed}"
            )
        return self.result or status

    def check_role(self, role: Role) -> None:
        if role not in self.roles:
            allowed = ", ".join(sorted(self.roles))
            raise Forbidden(f"role {role.value!r} may not {self.name}; allowed: {allowed}")


C, A, M, S = Role.CUSTOMER, Role.AGENT, Role.MANAGER, Role.SYSTEM
CREATED, ACKNOWLEDGED = Status.CREATED, Status.ACKNOWLEDGED
IN_PROGRESS, PENDING = Status.IN_PROGRESS, Status.PENDING_USER_INPUT
RESOLVED, CLOSED = Status.RESOLVED, Status.CLOSED


def _command(name: str, payload: type[P], event: str, data: type[Wire], roles: set[Role],
             allowed_from: frozenset[Status] = frozenset(), result: Status | None = None,
             *, creates: bool = False, stream: str = "ticket", opens: bool = False,
             judged_by: Literal["recorded", "current"] = "recorded") -> CommandType[P]:
    return CommandType(name, payload, event, data, frozenset(roles), allowed_from, result,
                       creates, stream, opens, judged_by)


CREATE_TICKET = _command("create_ticket", CreateTicket, "TicketCreated", TicketCreatedData,
                         {C, A, S}, creates=True)
ACKNOWLEDGE = _command("acknowledge", FreeText, "TicketAcknowledged", NoteTransition, {A},
                       frozenset({CREATED}), ACKNOWLEDGED)
START_WORK = _command("start_work", FreeText, "WorkStarted", NoteTransition, {A},
                      frozenset({ACKNOWLEDGED}), IN_PROGRESS)
REQUEST_USER_INPUT = _command("request_user_input", RequestUserInput, "UserInputRequested",
                              UserInputRequestedData, {A},
                              frozenset({ACKNOWLEDGED, IN_PROGRESS}), PENDING)
RECEIVE_USER_INPUT = _command("receive_user_input", FreeText, "UserInputReceived",
                              NoteTransition, {C}, frozenset({PENDING}), IN_PROGRESS)
RESOLVE = _command("resolve", Resolve, "TicketResolved", TicketResolvedData, {A}, OPEN,
                   RESOLVED)
REOPEN = _command("reopen", Reopen, "TicketReopened", TicketReopenedData, {C, A},
                  frozenset({RESOLVED}), IN_PROGRESS)
CLOSE = _command("close", Close, "TicketClosed", TicketClosedData, {C, A, S},
                 frozenset({RESOLVED}), CLOSED)
ESCALATE = _command("escalate", Escalate, "TicketEscalated", TicketEscalatedData, {A, M, S},
                    OPEN)
CHANGE_PRIORITY = _command("change_priority", ChangePriority, "PriorityChanged",
                           PriorityChangedData, {A, M}, OPEN)
ASSIGN = _command("assign", Assign, "TicketAssigned", TicketAssignedData, {A, M, S}, OPEN)
ADD_COMMENT = _command("add_comment", AddComment, "CommentAdded", CommentAddedData, {C, A},
                       ALL - {CLOSED})
LINK_ARTICLE = _command("link_article", ArticleRef, "ArticleLinked", ArticleData, {A}, ALL)
RECORD_SATISFACTION = _command("record_satisfaction", RecordSatisfaction,
                               "SatisfactionRecorded", SatisfactionRecordedData, {C}, DONE)
CONSENT_TO_PUBLISH = _command("consent_to_publish", Empty, "PublicationConsented", EmptyData,
                              {C}, DONE)
PUBLISH_AS_ARTICLE = _command("publish_as_article", ArticleRef, "PublishedAsArticle",
                              ArticleData, {A}, DONE)
RECORD_SLA_BREACH = _command("record_sla_breach", RecordSlaBreach, "SlaBreached",
                             SlaBreachedData, {S}, OPEN)
RECORD_SELF_SERVICE = _command("record_self_service", RecordSelfService,
                               "SelfServiceRecorded", SelfServiceRecordedData, {C, S},
                               creates=True, stream="session")
CREATE_ARTICLE = _command("create_article", CreateArticle, "ArticleCreated", ArticleTextData,
                          {A, M}, creates=True, stream="article")
UPDATE_ARTICLE = _command("update_article", UpdateArticle, "ArticleUpdated", ArticleTextData,
                          {A, M}, stream="article")
ASSIGN_ACCOUNT_MANAGER = _command("assign_account_manager", AssignAccountManager,
                                  "AccountManagerAssigned", AccountManagerAssignedData, {M},
                                  stream="account", opens=True)
REVIEW_TICKET = _command("review_ticket", ReviewTicket, "TicketReviewed", TicketReviewedData,
                         {M}, DONE, judged_by="current")

#: Every command type by its wire name, in the order of SPEC §3 (then self-service, the
#: knowledge base's articles, SPEC §11, accounts' managers and quality reviews).
COMMANDS: dict[str, CommandType[Any]] = {command.name: command for command in (
    CREATE_TICKET, ACKNOWLEDGE, START_WORK, REQUEST_USER_INPUT, RECEIVE_USER_INPUT, RESOLVE,
    REOPEN, CLOSE, ESCALATE, CHANGE_PRIORITY, ASSIGN, ADD_COMMENT, LINK_ARTICLE,
    RECORD_SATISFACTION, CONSENT_TO_PUBLISH, PUBLISH_AS_ARTICLE, RECORD_SLA_BREACH,
    RECORD_SELF_SERVICE, CREATE_ARTICLE, UPDATE_ARTICLE, ASSIGN_ACCOUNT_MANAGER,
    REVIEW_TICKET,
)}


# -- the aggregate's side: which method runs which entry ---------------------------------

H = TypeVar("H", bound=Callable[..., Any])


class Handlers:
    """An aggregate's command methods by entry, declared on each method:

        handlers = Handlers()

        @handlers.on(RESOLVE)
        def _resolve(self, ctx, policy, payload: Resolve, to: Status) -> None: ...
    """

    def __init__(self) -> None:
        self._methods: dict[str, Callable[..., None]] = {}

    def on(self, *commands: CommandType[Any]) -> Callable[[H], H]:
        def register(method: H) -> H:
            for command in commands:
                if command.name in self._methods:
                    raise ValueError(f"{command.name} has two handlers")
                self._methods[command.name] = method
            return method
        return register

    def __getitem__(self, command: CommandType[Any]) -> Callable[..., None]:
        return self._methods[command.name]

    def names(self) -> frozenset[str]:
        return frozenset(self._methods)
