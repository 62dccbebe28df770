"""The shapes of the HTTP API's answers, for its OpenAPI document.

Handlers send the query layer's answers as they are (the same JSON `ticketflow … --json`
prints); these models describe them, and the API fuzz test (schemathesis) checks every
answer against them. Fields a sender wrote (event data, ids, texts) are left open.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    """An answer that may grow members; the documented ones are checked."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Problem(Open):
    """RFC 9457 problem details, with the stable rejection `code`."""

    type: str = Field(description="A URI naming the kind of problem: urn:ticketflow:problem:CODE")
    title: str
    status: int
    detail: str
    code: str = Field(description="invalid_message, unauthenticated, forbidden, not_found,"
                      " invalid_transition, already_exists, conflict, idempotency_mismatch,"
                      " policy_violation; and, for the HTTP door only, rate_limited,"
                      " method_not_allowed, unavailable, internal")
    message_id: str | None = Field(None, description="a rejected command's message id")
    ticket_id: str | None = Field(None, description="a rejected command's ticket or session")


class Error(BaseModel):
    code: str
    message: str


class Outcome(BaseModel):
    """One command's outcome, as a line of `ticketflow apply`."""

    message_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    events: list[str] = Field(description="the types of the events it recorded")
    ticket_id: str | None = None
    error: Error | None = None
    notifications: list[str] | None = Field(
        None, description="the ids of the notifications it recorded (SPEC §10)")
    suggestions: list[str] | None = Field(
        None, description="an accepted create_ticket's: up to 5 of its tenant's knowledge"
        "-base articles for its subject and description, best first (SPEC §11)")


class PolicyIdentity(BaseModel):
    id: str
    version: str
    hash: str


class TicketState(Open):
    """`ticketflow ticket --json`."""

    ticket_id: str
    tenant: str
    status: str
    plan: str | None
    priority: str | None
    timezone: str | None
    level: str | None
    assignee: str | None
    version: int
    created_at: str | None
    resolved_at: str | None
    closed_at: str | None
    resolutions: int
    publication_consented: bool
    policy: PolicyIdentity | None
    last_event_at: str | None
    account_id: str | None = Field(None, description="the account the ticket was created for")
    account_manager: str | None = Field(
        None, description="the account's current dedicated manager (None: none recorded)")
    as_of: str | None = Field(None, description="the instant asked for (as_of)")


class EventActor(BaseModel):
    id: str
    role: str


class Envelope(Open):
    """A recorded event (SPEC §5), exactly as stored; `hash` chains it to the one before."""

    event_id: str
    type: str
    schema_version: int
    tenant: str
    ticket_id: str
    version: int
    occurred_at: str
    recorded_at: str
    actor: EventActor
    causation_id: str | None
    data: dict[str, Any]
    hash: str


class TimelinePage(BaseModel):
    events: list[Envelope]
    next: int | None = Field(description="pass as `after` for the next page; null: no more"
                             " events now (a later event has a higher version)")


class LedgerEntry(BaseModel):
    from_: str = Field(alias="from")
    to: str
    counted: bool
    reason: str
    calendar: str | None
    minutes: float


class SlaClock(BaseModel):
    status: Literal["running", "paused", "met", "breached", "not_applicable"]
    target_minutes: int | None
    due_at: str | None
    met_at: str | None
    breached_at: str | None
    counted_minutes: float
    ledger: list[LedgerEntry] | None = Field(None, description="with explain=true")


class Sla(BaseModel):
    """`ticketflow sla --json`."""

    ticket_id: str
    tenant: str
    plan: str | None
    priority: str | None
    calendar: str | None
    timezone: str | None
    as_of: str
    first_response: SlaClock
    resolution: SlaClock


class EventRef(BaseModel):
    type: str
    version: int


class MessageOutcome(BaseModel):
    """`ticketflow outcome --json`."""

    message_id: str
    status: Literal["accepted", "rejected"]
    ticket_id: str | None
    events: list[EventRef]
    error: Error | None


class Tally(BaseModel):
    met: int
    breached: int
    open: int
    compliance_percent: float | None


#: A report's periods (SPEC §12), named by their first day.
Period = Literal["day", "week", "month", "quarter", "year"]
PERIOD = Field(None, description="the period (with `by`): its first day, in `timezone`")


#: Rows by account (`group=account`): the account and its current manager, in place of
#: plan and priority.
ACCOUNT = Field(None, description="the account (with `group=account`)")
MANAGER = Field(None, description="the account's current manager (with `group=account`)")


class SlaRow(BaseModel):
    period: str | None = PERIOD
    tenant: str
    plan: str | None = None
    priority: str | None = None
    account_id: str | None = ACCOUNT
    manager_id: str | None = MANAGER
    tickets: int
    first_response: Tally
    resolution: Tally


class TierRow(BaseModel):
    """Tier-goal attainment of one tenant's level (docs/decisions.md, "Tier goals")."""

    period: str | None = PERIOD
    tenant: str
    level: str
    goal_minutes: int
    calendar: str
    stints: int
    met: int
    missed: int
    escalated: int = Field(description="left the tier unresolved before the goal fell due")
    pending: int
    measured: int = Field(description="met + missed + escalated")
    attainment_percent: float | None = Field(description="met ÷ measured")
    median_minutes: float | None = Field(
        description="counted minutes at the tier of the stints that ended (nearest rank)")


class SlaReport(BaseModel):
    from_: str = Field(alias="from")
    to: str
    as_of: str
    by: Period | None = None
    timezone: str | None = None
    group: Literal["account"] | None = None
    tenant: str | None
    rows: list[SlaRow]
    tiers: list[TierRow] = Field(
        [], description="tier goals: empty for tenants whose policy sets none")


class VolumeRow(BaseModel):
    period: str
    tenant: str
    category: str | None
    channel: str | None
    priority: str | None
    created: int
    resolved: int
    closed: int
    backlog: int
    resolution_rate: float | None


class VolumeReport(BaseModel):
    from_: str = Field(alias="from")
    to: str
    by: Period
    timezone: str
    tenant: str | None
    rows: list[VolumeRow]


class SatisfactionRow(BaseModel):
    period: str
    tenant: str
    plan: str | None
    responses: int
    mean_score: float | None
    csat_percent: float | None
    nps_responses: int
    nps: float | None


class SelfServiceRow(BaseModel):
    period: str
    tenant: str
    sessions: int
    solved: int
    success_rate: float | None


class SatisfactionReport(BaseModel):
    from_: str = Field(alias="from")
    to: str
    by: Period
    timezone: str
    tenant: str | None
    satisfaction: list[SatisfactionRow]
    self_service: list[SelfServiceRow]


class Spread(BaseModel):
    count: int
    mean: float | None
    p50: float | None
    p90: float | None


class TimesRow(BaseModel):
    period: str | None = PERIOD
    tenant: str
    plan: str | None = None
    priority: str | None = None
    account_id: str | None = ACCOUNT
    manager_id: str | None = MANAGER
    first_response: Spread
    resolution: Spread


class TimesReport(BaseModel):
    from_: str = Field(alias="from")
    to: str
    by: Period | None = None
    timezone: str | None = None
    group: Literal["account"] | None = None
    tenant: str | None
    rows: list[TimesRow]
    tiers: list[TierRow] = Field(
        [], description="tier goals, each period's stints measured at its end")


class QualityRow(BaseModel):
    period: str | None = PERIOD
    tenant: str
    tier: str | None = Field(None, description="the escalation level at resolution"
                             " (with `group=tier`; None: not escalated)")
    agent: str | None = Field(None, description="the assignee at resolution (with"
                              " `group=agent`; None: unassigned)")
    reviews: int = Field(description="tickets reviewed: each one's latest review counts")
    mean_score: float
    pass_percent: dict[str, float] = Field(
        description="per rubric item, the share of the reviews that passed it")


class QualityReport(BaseModel):
    """`ticketflow report quality --json` (issue 19)."""

    from_: str = Field(alias="from")
    to: str
    by: Period | None = None
    timezone: str | None = None
    group: Literal["tier", "agent"] | None = None
    tenant: str | None
    rows: list[QualityRow]


# -- the knowledge base (SPEC §11) and the service review (SPEC §12) ---------------------


class Suggested(BaseModel):
    article_id: str
    title: str
    rank: int = Field(description="1 for the best match, then 2, …")


class Suggestions(BaseModel):
    """`ticketflow suggest --json`: the key's tenant's articles for a text, best first."""

    tenant: str
    terms: list[str] = Field(description="the words searched for (the text is only words,"
                             " never search syntax)")
    suggestions: list[Suggested] = Field(max_length=5)


class Trend(BaseModel):
    previous: int = Field(description="in the window of the same length just before")
    change: int
    trend: Literal["rising", "falling", "steady"]


class TopicRow(Trend):
    period: str | None = PERIOD
    tenant: str
    category: str | None
    subcategory: str | None
    tickets: int
    articles: int = Field(description="articles linked or published from these tickets")
    candidate: bool = Field(description="no article covers it: worth writing one")


class TermRow(Trend):
    period: str | None = PERIOD
    tenant: str
    term: str
    tickets: int
    article: str | None = Field(description="the best article matching the word")
    candidate: bool


class TopicsReport(BaseModel):
    """`ticketflow report topics --json`."""

    from_: str = Field(alias="from")
    to: str
    by: Period | None = None
    timezone: str | None = None
    tenant: str | None
    categories: list[TopicRow]
    terms: list[TermRow]


class ArticleRow(Open):
    period: str | None = PERIOD
    tenant: str
    article_id: str
    title: str | None
    source: str | None
    shown: int = Field(description="self-service sessions that suggested it")
    viewed: int = Field(description="self-service sessions that opened it")
    sessions: int
    deflections: int = Field(description="those sessions that ended solved")
    deflection_rate: float | None
    links: int
    resolved_links: int
    csat_responses: int
    csat_percent: float | None


class ArticlesReport(BaseModel):
    """`ticketflow report articles --json`."""

    from_: str = Field(alias="from")
    to: str
    by: Period | None = None
    timezone: str | None = None
    tenant: str | None
    rows: list[ArticleRow]


class Review(Open):
    """`ticketflow report review --json`: a quarter by month or a year by quarter, each
    part the report of its name over the review's window."""

    review: str
    from_: str = Field(alias="from")
    to: str
    by: Literal["month", "quarter"]
    tenant: str | None
    sla: list[SlaRow]
    volume: list[dict[str, Any]]
    times: list[TimesRow]
    satisfaction: list[SatisfactionRow]
    self_service: list[SelfServiceRow]
    top_categories: list[dict[str, Any]]
    knowledge_base: list[dict[str, Any]]


class Break(Open):
    ticket_id: str | None
    tenant: str | None
    version: int | None
    event_id: str | None
    type: str | None
    problem: str


class Verification(BaseModel):
    """`ticketflow verify --json`."""

    ok: bool
    breaks: list[Break]


class Health(BaseModel):
    status: Literal["ok"]


class WebhookIn(BaseModel):
    """A webhook to register: where the key's tenant's notifications go (SPEC §10)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="an http:// or https:// URL on a public"
                     " address (docs/notifications.md, Webhooks)")
    rules: list[str] = Field([], max_length=100, description="the notification rules it"
                             " wants (of the tenant's policy); none: every rule")


class Webhook(BaseModel):
    """A registered webhook, as `ticketflow webhooks list --json` shows it: never its
    secret."""

    webhook_id: str
    tenant: str
    url: str
    rules: list[str]
    created_at: str
    removed_at: str | None


class WebhookCreated(Webhook):
    """A webhook just registered, with its secret: shown this once, never again."""

    secret: str = Field(description="whsec_…: the HMAC-SHA256 key of the"
                        " Ticketflow-Signature header of every delivery")


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class Delivery(BaseModel):
    """A notification's delivery to a webhook, as `ticketflow webhooks deliveries --json`
    shows it (SPEC §10: the delivery log)."""

    notification_id: str
    webhook_id: str
    tenant: str
    ticket_id: str
    rule: str
    at: str = Field(description="the notification's instant")
    position: int = Field(description="its record's position in the event log")
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    delivered_at: str | None


class Deliveries(BaseModel):
    deliveries: list[Delivery]
