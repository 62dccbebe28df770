"""The Ticket aggregate: every command of SPEC §3, guarded first, then emitted.

`handle` checks the command's entry in the registry (`domain.commands`: who may send
it, from which state, to which state), the tenant and time order, then runs the method
registered for the entry, which checks the ticket's policy and emits. A refused command
raises a typed `Rejected` error before anything is emitted. Applying an event folds it
into the ticket's state with the one reducer (`domain.ticket_state`) and never raises.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from ticketflow.domain import commands
from ticketflow.domain.chain import utc_iso
from ticketflow.domain.commands import CommandType, Handlers
from ticketflow.domain.errors import AlreadyExists, Forbidden, InvalidMessage, PolicyViolation
from ticketflow.domain.lifecycle import Role, Status
from ticketflow.domain.policy import Policy, iana_zone
from ticketflow.domain.sla import CLOCKS, ClockStatus, Fact, SlaResult, evaluate
from ticketflow.domain.streams import Context, Stream
from ticketflow.domain.ticket_state import FactRecord, TicketState, changes, start
from ticketflow.schemas.fields import Wire

Payload = dict[str, Any]
P = TypeVar("P", bound=Wire)


class Ticket(Stream):
    """One support ticket. State is plain data so snapshots can carry it."""

    KIND = "ticket"

    class TicketEvent(Stream.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.note_event(self)
            aggregate.on_event(self)

    class TicketCreated(Stream.Created, TicketEvent):
        def apply(self, aggregate: Any) -> None:
            aggregate.note_event(self)  # __init__ took the state this event starts

    class TicketAcknowledged(TicketEvent): ...
    class WorkStarted(TicketEvent): ...
    class UserInputRequested(TicketEvent): ...
    class UserInputReceived(TicketEvent): ...
    class TicketResolved(TicketEvent): ...
    class TicketReopened(TicketEvent): ...
    class TicketClosed(TicketEvent): ...
    class TicketEscalated(TicketEvent): ...
    class PriorityChanged(TicketEvent): ...
    class TicketAssigned(TicketEvent): ...
    class ArticleLinked(TicketEvent): ...
    class SatisfactionRecorded(TicketEvent): ...
    class PublicationConsented(TicketEvent): ...
    class PublishedAsArticle(TicketEvent): ...
    class SlaBreached(TicketEvent): ...
    class TicketReviewed(TicketEvent): ...

    class CommentAdded(TicketEvent):
        """v2: `data.visibility` ('public' | 'internal') replaced v1's `data.public` flag."""

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            data = dict(state["data"])
            data["visibility"] = "public" if data.pop("public", True) else "internal"
            state["data"] = data

    # -- construction ----------------------------------------------------------------

    def __init__(
        self, tenant: str, ticket_id: str, occurred_at: datetime, data: Payload, hash: str
    ) -> None:
        self.tenant = tenant
        self.stream_id = ticket_id
        self.last_hash = hash
        self.last_occurred_at = occurred_at
        self.policy: dict[str, str] = dict(data["policy"])
        # The state's fields the aggregate holds (all but the read model's first response):
        # a snapshot is these attributes, so they stay what they always were.
        state = start(occurred_at, data)
        self.status: str = state["status"]
        self.plan: str = state["plan"]
        self.priority: str = state["priority"]
        self.timezone: str = state["timezone"]
        self.level: str | None = state["level"]
        self.level_reached_at: dict[str, datetime] = state["level_reached_at"]
        self.assignee: str | None = state["assignee"]
        self.created_at: datetime = state["created_at"]
        self.resolved_at: datetime | None = state["resolved_at"]
        self.closed_at: datetime | None = state["closed_at"]
        self.resolutions: int = state["resolutions"]
        self.rated_resolution: int = state["rated_resolution"]
        self.consented: bool = state["consented"]
        self.sla_facts: list[FactRecord[datetime]] = state["sla_facts"]

    @classmethod
    def create(cls, ctx: Context, policy: Policy, ticket_id: str,
               payload: commands.CreateTicket) -> Ticket:
        commands.CREATE_TICKET.check_role(ctx.role)
        data = _creation_data(policy, payload)
        return cls._start(cls.TicketCreated, ticket_id, ctx, data)

    # -- reading ---------------------------------------------------------------------

    @property
    def ticket_id(self) -> str:
        return self.stream_id

    @property
    def facts(self) -> list[Fact]:
        return [Fact(f["at"], f["kind"], f.get("value")) for f in self.sla_facts]

    def sla(self, policy: Policy, as_of: datetime, *, explain: bool = False) -> SlaResult:
        return evaluate(policy, self.plan, self.timezone, self.facts, as_of, explain=explain)

    def state(self) -> dict[str, Any]:
        """The ticket's state as a JSON-friendly dict (for `ticketflow ticket`)."""
        stamp = _iso_or_none
        return {
            "ticket_id": self.ticket_id, "tenant": self.tenant, "status": self.status,
            "plan": self.plan, "priority": self.priority, "timezone": self.timezone,
            "level": self.level, "assignee": self.assignee, "version": self.version,
            "created_at": stamp(self.created_at), "resolved_at": stamp(self.resolved_at),
            "closed_at": stamp(self.closed_at), "resolutions": self.resolutions,
            "publication_consented": self.consented, "policy": self.policy,
            "last_event_at": stamp(self.last_occurred_at),
        }

    # -- commands --------------------------------------------------------------------

    handlers = Handlers()

    def handle(self, command: CommandType[P], ctx: Context, policy: Policy, payload: P) -> None:
        """Run one command on the ticket; raises `Rejected` (and emits nothing) if it is
        refused."""
        if not isinstance(payload, command.payload):
            raise TypeError(f"{command.name} takes a {command.payload.__name__} payload,"
                            f" not {type(payload).__name__}")
        self._guard_common(ctx)
        target = command.check(Status(self.status), ctx.role)
        self.handlers[command](self, ctx, policy, payload, target)

    @handlers.on(commands.ACKNOWLEDGE)
    def _acknowledge(self, ctx: Context, policy: Policy, p: commands.FreeText, to: Status) -> None:
        self._emit_transition(self.TicketAcknowledged, ctx, _note(p), to)

    @handlers.on(commands.START_WORK)
    def _start_work(self, ctx: Context, policy: Policy, p: commands.FreeText, to: Status) -> None:
        self._emit_transition(self.WorkStarted, ctx, _note(p), to)

    @handlers.on(commands.RECEIVE_USER_INPUT)
    def _receive_user_input(
        self, ctx: Context, policy: Policy, p: commands.FreeText, to: Status
    ) -> None:
        self._emit_transition(self.UserInputReceived, ctx, _note(p), to)

    @handlers.on(commands.REQUEST_USER_INPUT)
    def _request_user_input(
        self, ctx: Context, policy: Policy, p: commands.RequestUserInput, to: Status
    ) -> None:
        self._emit_transition(self.UserInputRequested, ctx, {"question": p.question}, to)

    @handlers.on(commands.RESOLVE)
    def _resolve(self, ctx: Context, policy: Policy, p: commands.Resolve, to: Status) -> None:
        self._emit_transition(self.TicketResolved, ctx, {"resolution": p.resolution}, to)

    @handlers.on(commands.REOPEN)
    def _reopen(self, ctx: Context, policy: Policy, p: commands.Reopen, to: Status) -> None:
        window = policy.reopen_window
        if window and self.resolved_at and ctx.occurred_at > self.resolved_at + _minutes(window):
            raise PolicyViolation(f"the reopen window of {window} minutes after resolve has passed")
        self._emit_transition(self.TicketReopened, ctx, {"reason": p.reason}, to)

    @handlers.on(commands.CLOSE)
    def _close(self, ctx: Context, policy: Policy, p: commands.Close, to: Status) -> None:
        if p.reason == "auto_closed":
            self._guard_auto_close(ctx, policy)
        self._emit_transition(self.TicketClosed, ctx, {"reason": p.reason}, to)

    @handlers.on(commands.ESCALATE)
    def _escalate(self, ctx: Context, policy: Policy, p: commands.Escalate, to: Status) -> None:
        self._guard_escalation(policy, p.level, ctx.role)
        self._emit(self.TicketEscalated, ctx, {
            "from_level": self.level, "level": p.level, "reason": p.reason,
        })

    @handlers.on(commands.CHANGE_PRIORITY)
    def _change_priority(
        self, ctx: Context, policy: Policy, p: commands.ChangePriority, to: Status
    ) -> None:
        new = p.priority
        if new not in policy.priorities:
            raise PolicyViolation(f"unknown priority {new!r}; allowed: {_list(policy.priorities)}")
        if new == self.priority:
            raise PolicyViolation(f"the ticket's priority is already {new!r}")
        self._emit(self.PriorityChanged, ctx, {
            "from_priority": self.priority, "priority": new, "reason": p.reason,
            "calendar": policy.calendar_name(self.plan, new),
        })

    @handlers.on(commands.ASSIGN)
    def _assign(self, ctx: Context, policy: Policy, p: commands.Assign, to: Status) -> None:
        if p.tier is not None and p.tier != self.level:
            raise PolicyViolation(
                f"tier {p.tier!r} is not the ticket's current level ({self.level!r});"
                " escalate the ticket first"
            )
        self._emit(self.TicketAssigned, ctx, {"agent_id": p.agent_id, "tier": p.tier})

    @handlers.on(commands.ADD_COMMENT)
    def _add_comment(
        self, ctx: Context, policy: Policy, p: commands.AddComment, to: Status
    ) -> None:
        if p.visibility == "internal" and ctx.role is Role.CUSTOMER:
            raise Forbidden("a customer may not add an internal comment")
        self._emit(self.CommentAdded, ctx, {"body": p.body, "visibility": p.visibility})

    @handlers.on(commands.LINK_ARTICLE)
    def _link_article(
        self, ctx: Context, policy: Policy, p: commands.ArticleRef, to: Status
    ) -> None:
        self._emit(self.ArticleLinked, ctx, {"article_id": p.article_id})

    @handlers.on(commands.RECORD_SATISFACTION)
    def _record_satisfaction(
        self, ctx: Context, policy: Policy, p: commands.RecordSatisfaction, to: Status
    ) -> None:
        if self.rated_resolution == self.resolutions:
            raise PolicyViolation("satisfaction is already recorded for this resolution")
        self._emit(self.SatisfactionRecorded, ctx, {
            "score": p.score, "comment": p.comment, "nps": p.nps, "resolution": self.resolutions,
        })

    @handlers.on(commands.CONSENT_TO_PUBLISH)
    def _consent_to_publish(
        self, ctx: Context, policy: Policy, p: commands.Empty, to: Status
    ) -> None:
        if self.consented:
            raise PolicyViolation("the customer has already consented to publication")
        self._emit(self.PublicationConsented, ctx, {})

    @handlers.on(commands.PUBLISH_AS_ARTICLE)
    def _publish_as_article(
        self, ctx: Context, policy: Policy, p: commands.ArticleRef, to: Status
    ) -> None:
        if not self.consented:
            raise PolicyViolation("publishing needs the customer's consent_to_publish first")
        self._emit(self.PublishedAsArticle, ctx, {"article_id": p.article_id})

    @handlers.on(commands.RECORD_SLA_BREACH)
    def _record_sla_breach(
        self, ctx: Context, policy: Policy, p: commands.RecordSlaBreach, to: Status
    ) -> None:
        clock, due_at = p.clock, p.due_at
        self._guard_breach(policy, clock, due_at, ctx.occurred_at)
        self._emit(self.SlaBreached, ctx, {"clock": clock, "due_at": utc_iso(due_at)})
        level = policy.escalation.on_breach.get(clock)
        if level and policy.level_rank(level) > policy.level_rank(self.level):
            self._emit(self.TicketEscalated, ctx, {
                "from_level": self.level, "level": level,
                "reason": f"{clock} target breached (policy)",
            })

    @handlers.on(commands.REVIEW_TICKET)
    def _review(self, ctx: Context, policy: Policy, p: commands.ReviewTicket, to: Status) -> None:
        """A quality review of the handling that resolved the ticket: who handled it
        (the assignee) at which level are the ticket's at its latest resolution, since
        neither changes while it is resolved or closed."""
        rubric = policy.quality.rubric
        if not rubric:
            raise PolicyViolation(f"policy {policy.id} {policy.version} has no quality rubric"
                                  " ([quality] rubric)")
        unknown, missing = sorted(set(p.rubric) - set(rubric)), [i for i in rubric
                                                                 if i not in p.rubric]
        if unknown or missing:
            raise PolicyViolation(
                "a review marks exactly the rubric's items (" + _list(rubric) + ")"
                + (f"; unknown: {_list(unknown)}" if unknown else "")
                + (f"; missing: {_list(missing)}" if missing else ""))
        self._emit(self.TicketReviewed, ctx, {
            "score": p.score, "rubric": {item: p.rubric[item] for item in rubric},
            "note": p.note, "agent_id": self.assignee, "level": self.level,
            "resolution": self.resolutions, "as_account_manager": ctx.via == "account_manager",
        })

    # -- guards ----------------------------------------------------------------------

    def _guard_escalation(self, policy: Policy, level: str, role: Role) -> None:
        if level not in policy.escalation.levels:
            raise PolicyViolation(
                f"unknown level {level!r}; the ladder is {_list(policy.escalation.levels)}"
            )
        current, wanted = policy.level_rank(self.level), policy.level_rank(level)
        if wanted <= current:
            raise PolicyViolation(f"levels only rise: the ticket is already at {self.level!r}")
        skips = wanted > current + 1
        if skips and self.priority != "critical" and role is not Role.SYSTEM:
            nxt = policy.escalation.levels[current + 1]
            raise PolicyViolation(
                f"only critical tickets may skip a level; escalate to {nxt!r} first"
            )

    def _guard_auto_close(self, ctx: Context, policy: Policy) -> None:
        if ctx.role is not Role.SYSTEM:
            raise Forbidden("only the system closes a ticket with reason auto_closed")
        window = policy.auto_close_after
        if window is None:
            raise PolicyViolation(f"policy {policy.id} has no auto-close rule")
        assert self.resolved_at is not None  # close is only allowed from resolved
        due = self.resolved_at + _minutes(window)
        if ctx.occurred_at < due:
            raise PolicyViolation(f"auto-close is due at {due.isoformat()}, not before")

    def _guard_breach(self, policy: Policy, clock: str, due_at: datetime, at: datetime) -> None:
        if clock not in CLOCKS:
            raise InvalidMessage(f"unknown clock {clock!r}; expected one of {_list(CLOCKS)}")
        if any(f["kind"] == "breach" and f.get("value") == clock for f in self.sla_facts):
            raise AlreadyExists(f"the {clock} breach is already recorded")
        result = self.sla(policy, at).clock(clock)
        if result.status is not ClockStatus.BREACHED:
            raise PolicyViolation(
                f"the {clock} clock is {result.status.value} at {at.isoformat()}"
                f" (due {_iso_or_none(result.due_at)}), not breached"
            )

    # -- emitting and applying -------------------------------------------------------

    def _emit_transition(self, event_class: type[Stream.Event], ctx: Context, data: Payload,
                         to: Status) -> None:
        self._emit(event_class, ctx, {**data, "from": self.status, "to": to.value})

    def on_event(self, event: Stream.Event) -> None:
        """Fold one event into the ticket's state, which is its attributes."""
        state: TicketState[datetime] = vars(self)  # type: ignore[assignment]
        vars(self).update(changes(state, event.type_name, event.occurred_at, event.data))


def _creation_data(policy: Policy, p: commands.CreateTicket) -> Payload:
    """Validate a create_ticket payload against the policy; the TicketCreated data."""
    plan = _one_of("plan", p.plan, list(policy.plans))
    channel = _one_of("channel", p.channel, policy.channels)
    if channel not in policy.plans[plan].channels:
        raise PolicyViolation(
            f"plan {plan!r} does not include channel {channel!r};"
            f" it offers {_list(policy.plans[plan].channels)}"
        )
    extras = _channel_extras(policy, channel, dict(p))
    category = _one_of("category", p.category, list(policy.categories))
    subcategory = _subcategory(policy.categories[category], category, p.subcategory)
    data: Payload = {
        "account_id": p.account_id, "plan": plan, "channel": channel, **extras,
        "category": category, "subcategory": subcategory,
        "priority": _one_of("priority", p.priority, policy.priorities),
        "timezone": _timezone(policy, p.timezone),
        "subject": p.subject, "description": p.description,
        "policy": policy.identity(), "level": policy.escalation.initial,
    }
    data["calendar"] = policy.calendar_name(plan, data["priority"])
    return data


def _one_of(field: str, value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise PolicyViolation(f"unknown {field} {value!r}; allowed: {_list(allowed)}")
    return value


def _channel_extras(policy: Policy, channel: str, fields: Payload) -> Payload:
    """The payload fields the policy asks of the channel (by name: a policy names them)."""
    extras: Payload = {}
    required = policy.channel_fields.get(channel, {})
    for name, allowed in required.items():
        if fields.get(name) is None:
            raise PolicyViolation(f"channel {channel!r} needs {name!r} ({_list(allowed)})")
        extras[name] = _one_of(name, fields[name], allowed)
    known = {name for names in policy.channel_fields.values() for name in names}
    for name in sorted(known - set(required)):
        if fields.get(name) is not None:
            raise PolicyViolation(f"{name!r} does not apply to channel {channel!r}")
    return extras


def _subcategory(allowed: list[str], category: str, value: str | None) -> str | None:
    if not allowed:
        if value is not None:
            raise PolicyViolation(f"category {category!r} has no subcategories")
        return None
    if value is None:
        raise PolicyViolation(f"category {category!r} needs a subcategory: {_list(allowed)}")
    return _one_of("subcategory", value, allowed)


def _timezone(policy: Policy, value: str | None) -> str:
    if value is None:
        if policy.require_account_timezone:
            raise PolicyViolation(f"policy {policy.id} needs the account's IANA 'timezone'")
        return policy.default_timezone
    try:
        iana_zone(value)
    except ValueError as exc:
        raise InvalidMessage(str(exc)) from None
    return value


def _note(p: commands.FreeText) -> Payload:
    return {"note": p.note} if p.note else {}


def _minutes(count: int) -> timedelta:
    return timedelta(minutes=count)


def _list(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def _iso_or_none(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()
