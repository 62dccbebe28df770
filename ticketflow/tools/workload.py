"""Seeded, realistic demo workload for both shipped tenants.

``generate_workload(seed)`` returns inbound command envelopes (SPEC §5) for
``personalysispro`` and ``growgrebuddy``: ticket stories from creation to
closing, plus self-service sessions. The result is a pure function of the
arguments: one ``random.Random(seed)`` drives everything, the wall clock is
never read, and the list is sorted by ``occurred_at`` (stable).

The rules come from the engine, not from a copy: the tenants' catalogues (plans,
channels, categories, priorities, escalation ladders), SLA targets, calendars and
timer rules are read from the shipped policies (``ticketflow.domain.policy``), and
every ticket's story is folded by the engine's own ``Ticket`` aggregate, which refuses
(and the generator raises :class:`GeneratorBug` for) any command the engine would
reject: the lifecycle table, roles, satisfaction once per resolution, publication
after consent, the escalation ladder, non-decreasing time. What stays here is what
makes the workload realistic: mixes, arrival hours, time zones, texts, how long work
takes. Stories stop at ``start + days``: whatever would happen later is simply not
emitted, which leaves a realistic backlog of open tickets at the end of the window.

Commands the timer owns are never generated: SLA breaches, automatic
escalations and ``auto_closed`` closes. So that the generated commands stay
valid whether or not the timer's commands are interleaved, the generator keeps
clear of the timer's territory, as the policies define it:

* a resolution breach that escalates (``escalation.on_breach``, personalysispro):
  manual escalations only happen strictly before the earliest possible resolution
  due time (creation priority, pauses ignored), never after a priority change and
  never after a reopen.
* automatic escalations (``escalation.automatic``, growgrebuddy: to ``tier2`` after
  1 h on ``frontline``, to ``tier3`` one business day after reaching ``tier2``,
  critical tickets to ``tier3`` at creation): manual escalations go to a level only
  before the timer's rule for it could fire, never for a ticket that is or was of a
  priority with a rule of its own, never after a priority change.
* auto-close (``auto_close_after``, 7 days resolved): every ``reopen``, ``close`` and
  ``add_comment`` after a resolution falls at least a day before it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.errors import Rejected
from ticketflow.domain.lifecycle import Role, Status
from ticketflow.domain.policy import AutoEscalation, Policy, shipped_policies
from ticketflow.domain.streams import Context
from ticketflow.domain.ticket import Ticket
from ticketflow.tools import texts

__all__ = ["DEFAULT_START", "GB", "PP", "GeneratorBug", "generate_workload"]

PP = "personalysispro"
GB = "growgrebuddy"
DEFAULT_START = datetime(2026, 10, 5, tzinfo=UTC)
_T = TypeVar("_T")


@cache
def policy_of(tenant: str) -> Policy:
    """The shipped policy the workload writes for (and the engine applies)."""
    return shipped_policies()[tenant]


# ------------------------------------------------------------------------ realism
# Relative weights by name; the names themselves come from the policies.
_PLAN_WEIGHTS = {"standard": 45, "professional": 35, "enterprise": 20}
_CATEGORY_WEIGHTS = {
    PP: {"account": 22, "technical": 30, "feature_request": 13, "survey_management": 27,
         "security": 8},
    GB: {"account": 20, "billing_payments": 18, "app_functionality": 27, "feature_request": 10,
         "bug_report": 20, "data_privacy": 5},
}
# Overall about 5 / 20 / 50 / 25 % critical / high / medium / low.
_BASE_PRIORITY = {"critical": 5.0, "high": 20.0, "medium": 50.0, "low": 25.0}
_CATEGORY_PRIORITY: dict[str, dict[str, float]] = {
    "security": {"critical": 12.0, "high": 33.0, "medium": 40.0, "low": 15.0},
    "data_privacy": {"critical": 10.0, "high": 35.0, "medium": 40.0, "low": 15.0},
    "technical": {"critical": 6.5, "high": 24.0, "medium": 50.0, "low": 19.5},
    "bug_report": {"critical": 7.0, "high": 25.0, "medium": 48.0, "low": 20.0},
    "feature_request": {"critical": 0.0, "high": 5.0, "medium": 42.0, "low": 53.0},
}
# growgrebuddy's channels on weekdays and at weekends (chat dominates at weekends).
_GB_CHANNEL_WEIGHTS = {
    False: {"in_app_chat": 35, "in_app_ticket": 25, "email": 20, "social": 10,
            "community_forum": 10},
    True: {"in_app_chat": 55, "in_app_ticket": 15, "email": 10, "social": 12,
           "community_forum": 8},
}
_FIELD_WEIGHTS = {"platform": {"twitter": 45, "facebook": 30, "instagram": 25}}
# Minutes of work a ticket typically needs where its policy sets no resolution target
# (growgrebuddy); elsewhere the resolution target is the effort.
_EFFORT_WITHOUT_TARGET = {"critical": 180, "high": 480, "medium": 960, "low": 1920}
# growgrebuddy's front line works its `frontline` hours (7 days a week) on tickets whose
# clocks count `business` hours.
_WORKED_ON = {(GB, "business"): "frontline"}
# How long before the timer's earliest escalation a story stops escalating by hand.
_BEFORE_BREACH = timedelta(minutes=5)
_BEFORE_FIRST_AUTOMATIC = timedelta(minutes=2)
_BEFORE_LEVEL_AUTOMATIC = timedelta(minutes=5)
# Customers reopen within 3 days of a resolution, if at all.
_REOPEN_WITHIN = timedelta(days=3)

_PP_TIMEZONES = (
    ("America/New_York", 26),
    ("America/Chicago", 8),
    ("America/Los_Angeles", 14),
    ("Europe/London", 14),
    ("Europe/Berlin", 18),
    ("Europe/Paris", 6),
    ("Asia/Tokyo", 5),
    ("Asia/Singapore", 3),
    ("Australia/Sydney", 6),
)
_GB_TIMEZONES = (
    ("America/New_York", 22),
    ("America/Chicago", 10),
    ("America/Denver", 4),
    ("America/Los_Angeles", 16),
    ("Europe/London", 14),
    ("Europe/Berlin", 10),
    ("Europe/Madrid", 5),
    ("Australia/Sydney", 7),
    ("Asia/Kolkata", 6),
    ("UTC", 6),
)

# Arrivals: relative weight of a local weekday / weekend day and of each local hour.
_PP_HOURS_WEEKDAY = (
    0.25, 0.2, 0.2, 0.2, 0.25, 0.35, 0.6, 1.5, 4.0, 8.0, 9.0, 9.0,
    7.0, 8.0, 8.5, 8.0, 7.0, 4.0, 2.0, 1.5, 1.2, 0.9, 0.6, 0.4,
)  # fmt: skip
_PP_HOURS_WEEKEND = (
    0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.2, 1.6, 2.0, 2.0,
    2.0, 2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 1.0, 0.8, 0.6, 0.4, 0.3,
)  # fmt: skip
_GB_HOURS_WEEKDAY = (
    0.4, 0.3, 0.2, 0.2, 0.2, 0.3, 0.7, 1.8, 3.5, 6.0, 6.5, 6.5,
    6.0, 6.0, 6.0, 5.8, 5.5, 4.5, 4.0, 4.0, 3.6, 3.0, 1.8, 0.9,
)  # fmt: skip
_GB_HOURS_WEEKEND = (
    0.5, 0.4, 0.3, 0.2, 0.2, 0.3, 0.6, 1.5, 3.0, 4.5, 5.5, 5.5,
    5.0, 5.0, 5.0, 5.0, 5.0, 4.8, 4.6, 4.5, 4.0, 3.0, 1.8, 1.0,
)  # fmt: skip
_DAY_WEIGHT = {PP: (1.0, 0.18), GB: (1.0, 0.6)}  # (weekday, weekend)

# ------------------------------------------------------------------------- calendars
def advance(policy: Policy, calendar: str, tz: ZoneInfo, at: datetime, minutes: float) -> datetime:
    """The UTC instant when ``minutes`` of the policy's ``calendar`` have passed after ``at``
    (the engine's own calendar maths)."""
    return policy.calendar_objects[calendar].zoned(tz).advance(at, minutes * 60)


def _automatic(policy: Policy, since: str, priority: str | None = None) -> AutoEscalation | None:
    """The policy's automatic escalation counted from ``since`` ("created" or
    "level:<name>") for tickets of ``priority`` (None: the rule for every priority)."""
    return next((rule for rule in policy.escalation.automatic
                 if rule.since == since and rule.priority == priority), None)


# ---------------------------------------------------------------------------- model
class GeneratorBug(RuntimeError):
    """The generator tried to emit a command the engine would reject."""


class _WindowEnd(Exception):
    """The story reached the end of the window; the rest is not emitted."""


@dataclass(frozen=True)
class _Account:
    tenant: str
    account_id: str
    plan: str
    home_tz: ZoneInfo  # where the people live (drives arrival hours)
    declared_tz: str | None  # payload timezone; None: the policy's default_timezone
    users: tuple[str, ...]


@dataclass
class _Staff:
    agents: tuple[str, ...]
    specialists: tuple[str, ...]
    developers: tuple[str, ...]
    managers: tuple[str, ...]


@dataclass
class _Ctx:
    rng: random.Random
    end: datetime
    staff: dict[str, _Staff]
    articles: dict[str, tuple[str, ...]]
    raw: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)
    published: int = 0

    def push(self, at: datetime, envelope: dict[str, Any]) -> None:
        self.raw.append((at, len(self.raw), envelope))


@dataclass
class _Plan:
    tenant: str
    created_at: datetime
    account: _Account
    category: str
    subcategory: str | None
    priority: str
    channel: str
    incident: bool = False
    via_session: bool = False
    creator: str | None = None  # the customer of the self-service session, if any
    ticket_id: str = ""


class _Ticket:
    """One ticket's story. The engine's ``Ticket`` aggregate holds its state and
    refuses what the engine would; the rest is what the story plans around the timer."""

    def __init__(self, ctx: _Ctx, rng: random.Random, plan: _Plan) -> None:
        self.ctx, self.rng, self.plan = ctx, rng, plan
        self.policy = policy_of(plan.tenant)
        self.tz = _engine_tz(plan.account)  # the account's time zone as the engine knows it
        self.aggregate: Ticket | None = None
        # A ticket of a priority the timer escalates on its own is never escalated by hand.
        self.timer_priority = _automatic(self.policy, "created", plan.priority) is not None
        self.escalation_deadline: datetime | None = None  # escalate only strictly before

    @property
    def tenant(self) -> str:
        return self.plan.tenant

    @property
    def state(self) -> str | None:
        return None if self.aggregate is None else self.aggregate.status

    @property
    def priority(self) -> str:
        return self.plan.priority if self.aggregate is None else self.aggregate.priority

    @property
    def last(self) -> datetime | None:
        return None if self.aggregate is None else self.aggregate.last_occurred_at

    @property
    def agent(self) -> str | None:
        return None if self.aggregate is None else self.aggregate.assignee

    @property
    def resolutions(self) -> int:
        return 0 if self.aggregate is None else self.aggregate.resolutions

    def next_time(self, at: datetime) -> datetime:
        """``at`` at seconds precision, pushed just past the ticket's previous command."""
        at = at.astimezone(UTC).replace(microsecond=0)
        if self.last is not None and at <= self.last:
            at = self.last + timedelta(seconds=1)
        return at

    def can(self, ctype: str) -> bool:
        return self.state is not None and Status(self.state) in COMMANDS[ctype].allowed_from

    def emit(
        self, ctype: str, at: datetime, actor: str, role: str, payload: dict[str, Any]
    ) -> datetime:
        at = self.next_time(at)
        if at >= self.ctx.end:
            raise _WindowEnd
        self._fold(ctype, Context("workload", self.tenant, actor, Role(role), at, at), payload)
        self.ctx.push(
            at,
            {
                "type": ctype,
                "tenant": self.tenant,
                "ticket_id": self.plan.ticket_id,
                "occurred_at": at.astimezone(self.tz).isoformat(timespec="seconds"),
                "actor": {"id": actor, "role": role},
                "payload": payload,
            },
        )
        return at

    def _fold(self, ctype: str, context: Context, payload: dict[str, Any]) -> None:
        """Run the command on the aggregate, as the engine will; its events are dropped."""
        try:
            if ctype == "create_ticket":
                if self.aggregate is not None:
                    raise GeneratorBug("ticket created twice")
                self.aggregate = Ticket.create(context, self.policy, self.plan.ticket_id,
                                               COMMANDS[ctype].payload.model_validate(payload))
            elif self.aggregate is None:
                raise GeneratorBug(f"{ctype} before create_ticket")
            else:
                entry = COMMANDS[ctype]
                self.aggregate.handle(entry, context, self.policy,
                                      entry.payload.model_validate(payload))
        except Rejected as refused:
            raise GeneratorBug(f"{self.plan.ticket_id}: the engine would refuse {ctype}"
                               f" ({refused.code}): {refused}") from refused
        self.aggregate.collect_events()
        if ctype == "change_priority":  # targets recomputed: stay clear of the timer
            new = payload["priority"]
            self.timer_priority |= _automatic(self.policy, "created", new) is not None
            self.escalation_deadline = None

    # -- calendars of this ticket ------------------------------------------------
    @property
    def sla_calendar(self) -> str:
        return self.policy.calendar_name(self.plan.account.plan, self.priority)

    @property
    def work_calendar(self) -> str:
        """The hours in which agents work on the ticket."""
        return _WORKED_ON.get((self.tenant, self.sla_calendar), self.sla_calendar)

    @property
    def first_response(self) -> tuple[float, str]:
        """The first-response target (minutes) and the calendar it counts on."""
        target = self.policy.first_response_minutes(self.plan.account.plan, self.priority)
        return target, self.sla_calendar

    @property
    def effort(self) -> float:
        target = self.policy.resolution_minutes(self.priority)
        return target if target is not None else _EFFORT_WITHOUT_TARGET[self.priority]

    def advance(self, at: datetime, minutes: float, calendar: str) -> datetime:
        return advance(self.policy, calendar, self.tz, at, minutes)

    def after_work(self, at: datetime, minutes: float) -> datetime:
        return self.advance(at, minutes, self.work_calendar)


# ---------------------------------------------------------------------- randomness
def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def _pick(rng: random.Random, options: Sequence[_T], weights: Sequence[float]) -> _T:
    return rng.choices(options, weights=weights)[0]


def _customer_time(rng: random.Random, at: datetime, tz: ZoneInfo) -> datetime:
    """Move an instant that falls in the customer's night to the next morning."""
    local = at.astimezone(tz)
    if 7 <= local.hour < 23:
        return at
    day = local.date() if local.hour < 7 else local.date() + timedelta(days=1)
    morning = datetime.combine(day, time(7, 30), tzinfo=tz)
    return (morning + timedelta(minutes=rng.uniform(0, 150))).astimezone(UTC)


def _wall(rng: random.Random, median_hours: float, sigma: float, cap_hours: float) -> timedelta:
    return timedelta(hours=min(_lognormal(rng, median_hours, sigma), cap_hours))


# ------------------------------------------------------------------------ accounts
_NAME_A = (
    "north", "blue", "bright", "silver", "cedar", "summit", "harbor", "quantum", "river",
    "atlas", "maple", "granite", "lumen", "orbit", "pioneer", "vertex", "willow", "crest",
)  # fmt: skip
_NAME_B = (
    "analytics", "research", "insights", "labs", "health", "retail", "bank", "media",
    "logistics", "university", "foods", "energy", "travel", "systems", "partners",
)  # fmt: skip


def _make_accounts(rng: random.Random, n_pp: int, n_gb: int) -> dict[str, list[_Account]]:
    pp: list[_Account] = []
    names: set[str] = set()
    pp_tz = [name for name, _ in _PP_TIMEZONES]
    pp_tz_w = [w for _, w in _PP_TIMEZONES]
    while len(pp) < max(12, n_pp // 25):
        name = f"{rng.choice(_NAME_A)}-{rng.choice(_NAME_B)}"
        if name in names:
            name = f"{name}-{len(pp)}"
        names.add(name)
        plan = _weighted(rng, list(policy_of(PP).plans), _PLAN_WEIGHTS)
        tz_name = _pick(rng, pp_tz, pp_tz_w)
        users = tuple(f"{name}-user{k}" for k in range(1, 2 + rng.randrange(8)))
        pp.append(_Account(PP, name, plan, ZoneInfo(tz_name), tz_name, users))
    gb: list[_Account] = []
    gb_tz = [name for name, _ in _GB_TIMEZONES]
    gb_tz_w = [w for _, w in _GB_TIMEZONES]
    (gb_plan,) = policy_of(GB).plans  # one plan for every app user
    for k in range(max(10, int(n_gb * 0.8))):
        tz_name = _pick(rng, gb_tz, gb_tz_w)
        declared = tz_name if rng.random() < 0.7 else None
        account_id = f"gb-user-{k + 1:05d}"
        gb.append(_Account(GB, account_id, gb_plan, ZoneInfo(tz_name), declared, (account_id,)))
    return {PP: pp, GB: gb}


def _account_weights(accounts: list[_Account]) -> list[float]:
    """Zipf-like: a few busy accounts file many tickets; enterprise accounts file more."""
    boost = {"standard": 1.0, "professional": 1.6, "enterprise": 2.5}
    return [boost[a.plan] / (k + 1) ** 0.6 for k, a in enumerate(accounts)]


def _engine_tz(account: _Account) -> ZoneInfo:
    return ZoneInfo(account.declared_tz or policy_of(account.tenant).default_timezone)


# ------------------------------------------------------------------------ arrivals
@lru_cache(maxsize=256)
def _local_days(
    tenant: str, tz: ZoneInfo, start: datetime, end: datetime
) -> tuple[tuple[date, ...], tuple[float, ...]]:
    """The local dates the window touches and their arrival weights (pure, so cached)."""
    first = start.astimezone(tz).date()
    n_days = (end.astimezone(tz).date() - first).days + 1
    days = tuple(first + timedelta(days=k) for k in range(n_days))
    weekday_w, weekend_w = _DAY_WEIGHT[tenant]
    return days, tuple(weekday_w if d.weekday() < 5 else weekend_w for d in days)


_HOURS = tuple(range(24))


def _arrival(
    rng: random.Random, tenant: str, tz: ZoneInfo, start: datetime, end: datetime
) -> datetime:
    days, day_weights = _local_days(tenant, tz, start, end)
    while True:
        day = _pick(rng, days, day_weights)
        weekend = day.weekday() >= 5
        if tenant == PP:
            profile = _PP_HOURS_WEEKEND if weekend else _PP_HOURS_WEEKDAY
        else:
            profile = _GB_HOURS_WEEKEND if weekend else _GB_HOURS_WEEKDAY
        hour = _pick(rng, _HOURS, profile)
        local = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=tz)
        at = local.astimezone(UTC)
        if start <= at < end:
            return at


def _weighted(rng: random.Random, names: Sequence[str], weights: Mapping[str, float]) -> str:
    """One of ``names`` (in the policy's order) by its weight."""
    return _pick(rng, names, [weights[name] for name in names])


def _priority(rng: random.Random, tenant: str, category: str) -> str:
    weights = _CATEGORY_PRIORITY.get(category, _BASE_PRIORITY)
    return _weighted(rng, policy_of(tenant).priorities, weights)


def _pp_channel(rng: random.Random, plan: str) -> str:
    channels = policy_of(PP).plans[plan].channels
    weights = (55, 45) if len(channels) == 2 else (45, 35, 20)
    return _pick(rng, channels, weights)


def _gb_channel(rng: random.Random, plan: str, at: datetime, tz: ZoneInfo) -> str:
    weekend = at.astimezone(tz).weekday() >= 5
    return _weighted(rng, policy_of(GB).plans[plan].channels, _GB_CHANNEL_WEIGHTS[weekend])


def _plan_tickets(
    rng: random.Random,
    tenant: str,
    *,
    count: int,
    accounts: list[_Account],
    start: datetime,
    end: datetime,
) -> list[_Plan]:
    if tenant == PP:
        weights = _account_weights(accounts)
    else:  # most app users write once, a few come back again and again
        weights = [3.0 if k % 11 == 0 else 1.0 for k in range(len(accounts))]
    plans: list[_Plan] = []
    n_incident = round(count * 0.02) if tenant == PP and (end - start) > timedelta(days=4) else 0
    incident_at = _incident_start(rng, start, end) if n_incident else start
    for k in range(count):
        account = rng.choices(accounts, weights=weights)[0]
        tz = account.home_tz
        if k < n_incident:
            at = incident_at + timedelta(minutes=min(rng.expovariate(1 / 50), 240))
            at = at.replace(microsecond=0)
            category = "technical"
            sub: str | None = rng.choice(("application_error", "performance"))
            priority = _pick(rng, ("critical", "high"), (30, 70))
        else:
            at = _arrival(rng, tenant, tz, start, end)
            categories = policy_of(tenant).categories
            category = _weighted(rng, list(categories), _CATEGORY_WEIGHTS[tenant])
            sub = rng.choice(categories[category]) if categories[category] else None
            priority = _priority(rng, tenant, category)
        if tenant == PP:
            channel = _pp_channel(rng, account.plan)
        else:
            channel = _gb_channel(rng, account.plan, at, tz)
        plans.append(
            _Plan(tenant, at, account, category, sub, priority, channel, incident=k < n_incident)
        )
    plans.sort(key=lambda p: p.created_at)
    prefix = "PP" if tenant == PP else "GB"
    for number, plan in enumerate(plans, start=1):
        plan.ticket_id = f"{prefix}-{number:06d}"
    return plans


def _incident_start(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """An outage on a weekday afternoon (Europe) / morning (US) inside the window."""
    span = max(1, (end - start).days - 4)
    for _ in range(50):
        day = (start + timedelta(days=1 + rng.randrange(span))).date()
        if day.weekday() < 5:
            break
    return datetime.combine(day, time(14, rng.randrange(60)), tzinfo=UTC)


# ------------------------------------------------------------------------- stories
def _agent(tk: _Ticket) -> str:
    return tk.agent or tk.rng.choice(tk.ctx.staff[tk.tenant].agents)


def _customer(tk: _Ticket) -> str:
    return tk.rng.choice(tk.plan.account.users)


def _create(tk: _Ticket) -> None:
    rng = tk.rng
    plan = tk.plan
    role, actor = "customer", plan.creator or _customer(tk)
    if plan.via_session:
        pass  # the customer gave up on self-service and wrote to us
    elif plan.channel == "phone" and rng.random() < 0.85:
        role, actor = "agent", rng.choice(tk.ctx.staff[PP].agents)
    elif plan.channel == "social" and rng.random() < 0.5:
        role, actor = "system", "social-monitor"
    elif plan.incident and rng.random() < 0.15:
        role, actor = "system", "status-monitor"
    elif not plan.via_session and rng.random() < 0.04:
        role, actor = "agent", rng.choice(tk.ctx.staff[plan.tenant].agents)
    if plan.incident:
        subject = rng.choice(texts.INCIDENT_SUBJECTS)
    elif plan.tenant == PP:
        subject = rng.choice(texts.PP_SUBJECTS[plan.subcategory or ""])
    else:
        subject = rng.choice(texts.GB_SUBJECTS[plan.category])
    payload: dict[str, Any] = {"account_id": plan.account.account_id, "plan": plan.account.plan}
    if plan.account.declared_tz is not None:
        payload["timezone"] = plan.account.declared_tz
    payload["channel"] = plan.channel
    for name, allowed in tk.policy.channel_fields.get(plan.channel, {}).items():
        payload[name] = _weighted(rng, allowed, _FIELD_WEIGHTS[name])  # social: platform
    payload["category"] = plan.category
    if plan.subcategory is not None:
        payload["subcategory"] = plan.subcategory
    payload["priority"] = plan.priority
    payload["subject"] = subject
    stop = "" if subject.endswith(("?", "!", ".")) else "."
    payload["description"] = f"{subject}{stop} {rng.choice(texts.DETAILS)}"
    tk.emit("create_ticket", plan.created_at, actor, role, payload)


def _comment(tk: _Ticket, at: datetime, role: str, body: str, internal: bool = False) -> None:
    actor = _agent(tk) if role == "agent" else _customer(tk)
    visibility = "internal" if internal else "public"
    tk.emit("add_comment", at, actor, role, {"body": body, "visibility": visibility})


def _escalate(tk: _Ticket, at: datetime, level: str) -> bool:
    """Escalate if it can still happen before the timer's territory; report success."""
    deadline = tk.escalation_deadline
    if deadline is None or not tk.can("escalate") or tk.next_time(at) >= deadline:
        return False
    rng = tk.rng
    role = "manager" if level == "management" or rng.random() < 0.25 else "agent"
    staff = tk.ctx.staff[tk.tenant]
    actor = rng.choice(staff.managers) if role == "manager" else _agent(tk)
    reason = texts.ESCALATION_REASONS[level]
    at = tk.emit("escalate", at, actor, role, {"level": level, "reason": reason})
    pool = {"second_level": staff.specialists, "tier2": staff.specialists}.get(level)
    if level == "tier3":
        pool = staff.developers
    if pool and rng.random() < 0.6:
        tk.emit("assign", at + timedelta(minutes=rng.uniform(2, 30)), rng.choice(staff.managers),
                "manager", {"agent_id": rng.choice(pool)})  # fmt: skip
    rule = _automatic(tk.policy, f"level:{level}")
    if rule is not None:  # growgrebuddy: tier3 one business day after tier2
        tk.escalation_deadline = tk.advance(at, rule.after, rule.calendar) - _BEFORE_LEVEL_AUTOMATIC
    return True


def _escalation_plan(tk: _Ticket) -> list[str]:
    """The levels this ticket will be escalated to (possibly none)."""
    rng = tk.rng
    p = {"critical": 0.55, "high": 0.3, "medium": 0.15, "low": 0.06}[tk.priority]
    if rng.random() >= p:
        return []
    ladder = tk.policy.escalation.levels
    if tk.tenant == GB:
        if tk.timer_priority:
            return []  # the timer raises it to the top at creation (critical: tier3)
        _, tier2, tier3 = ladder
        return [tier2, tier3] if rng.random() < 0.3 else [tier2]
    # only critical tickets may skip a level
    levels = [_pick(rng, ladder, (55, 35, 10)) if tk.priority == "critical" else ladder[0]]
    while levels[-1] != ladder[-1] and rng.random() < 0.3:
        levels.append(ladder[ladder.index(levels[-1]) + 1])
    return levels


def _story(tk: _Ticket) -> None:
    ctx, rng, plan = tk.ctx, tk.rng, tk.plan
    _create(tk)
    created = plan.created_at
    tk.escalation_deadline = _first_escalation_deadline(tk)
    levels = _escalation_plan(tk)

    if rng.random() < 0.03:  # spam, duplicates, solved by the customer meanwhile
        at = tk.after_work(created, rng.uniform(5, 90))
        agent = _agent(tk)  # drawn before the text: the seed's stories stay the same
        tk.emit("resolve", at, agent, "agent", {"resolution": rng.choice(texts.QUICK_RESOLUTIONS)})
        _after_resolve(tk, quick=True)
        return

    ack_at = _ack_time(tk)
    before_ack: list[tuple[datetime, Callable[[datetime], None]]] = []
    if rng.random() < 0.72:
        staff = ctx.staff[tk.tenant]
        by_manager = rng.random() < 0.4
        agent = rng.choice(staff.agents)
        actor, role = (rng.choice(staff.managers), "manager") if by_manager else (agent, "agent")

        def assign(at: datetime) -> None:
            tk.emit("assign", at, actor, role, {"agent_id": agent})

        before_ack.append((created + (ack_at - created) * rng.uniform(0.05, 0.6), assign))
    if rng.random() < 0.08:
        when = created + timedelta(minutes=rng.uniform(10, 240))
        when = _customer_time(rng, when, plan.account.home_tz)

        def nudge(at: datetime) -> None:
            _comment(tk, at, "customer", rng.choice(texts.CUSTOMER_COMMENTS))

        before_ack.append((when, nudge))
    if tk.tenant == GB and levels and tk.escalation_deadline is not None:
        window = (tk.escalation_deadline - created).total_seconds()
        when = created + timedelta(seconds=window * rng.uniform(0.1, 0.8))

        def triage(at: datetime) -> None:
            if _escalate(tk, at, levels[0]):
                levels.pop(0)

        before_ack.append((when, triage))
    for when, action in sorted(before_ack, key=lambda item: item[0]):
        action(when)
    if tk.tenant == GB and levels and levels[0] == tk.policy.escalation.levels[1]:
        levels.clear()  # the triage window passed: the timer escalates to tier2 instead

    _acknowledge_and_work(tk, ack_at, levels)


def _first_escalation_deadline(tk: _Ticket) -> datetime | None:
    """Manual escalations stop before the earliest escalation the timer may make: the
    resolution breach where it escalates, else the first automatic escalation."""
    policy, created = tk.policy, tk.plan.created_at
    target = policy.resolution_minutes(tk.priority)
    if "resolution" in policy.escalation.on_breach and target is not None:
        return tk.advance(created, target, tk.sla_calendar) - _BEFORE_BREACH
    rule = _automatic(policy, "created")
    if rule is None or tk.timer_priority:
        return None
    return tk.advance(created, rule.after, rule.calendar) - _BEFORE_FIRST_AUTOMATIC


def _ack_time(tk: _Ticket) -> datetime:
    """Usually within the first-response target, sometimes (about 1 in 9) beyond."""
    rng, created = tk.rng, tk.plan.created_at
    if tk.plan.channel == "phone":  # the agent is on the call
        return created + timedelta(minutes=rng.uniform(1, 12))
    if tk.plan.channel == "in_app_chat" and rng.random() < 0.8:  # tier 1 picks up the chat
        return tk.advance(created, rng.uniform(1, 20), "frontline")
    target, calendar = tk.first_response
    return tk.advance(created, target * _lognormal(rng, 0.35, 0.85), calendar)


def _acknowledge_and_work(tk: _Ticket, ack_at: datetime, levels: list[str]) -> None:
    rng = tk.rng
    at = tk.emit("acknowledge", ack_at, _agent(tk), "agent", {})
    if rng.random() < 0.1 and not levels:  # answered in the first reply
        at = tk.after_work(at, rng.uniform(3, 40))
        tk.emit("resolve", at, _agent(tk), "agent", {"resolution": rng.choice(texts.RESOLUTIONS)})
        _after_resolve(tk)
        return
    if rng.random() < 0.1:
        if not _pause(tk, at):
            return
        at = tk.last or at
    else:
        start_at = tk.after_work(at, tk.effort * rng.uniform(0.01, 0.08))
        at = tk.emit("start_work", start_at, _agent(tk), "agent", {})
    for level in levels:
        at = tk.after_work(at, tk.effort * rng.uniform(0.03, 0.2))
        if not _escalate(tk, at, level):
            break
        at = tk.last or at
    _work(tk, tk.last or at, first_round=True)


def _pause(tk: _Ticket, at: datetime) -> bool:
    """request_user_input and, usually, the answer. False if the story ended here."""
    rng = tk.rng
    question = {"question": rng.choice(texts.QUESTIONS)}
    asked = tk.emit("request_user_input", at, _agent(tk), "agent", question)
    if rng.random() < 0.07:  # the customer never answers
        reminder = tk.after_work(asked + timedelta(days=2), 30)
        _comment(tk, reminder, "agent", "Friendly reminder: we still need your answer.")
        final = tk.after_work(asked + timedelta(days=5), 30)
        tk.emit("resolve", final, _agent(tk), "agent", {"resolution": texts.NO_RESPONSE})
        _after_resolve(tk)
        return False
    answer = asked + _wall(rng, 5, 1.1, 96)
    answer = _customer_time(rng, answer, tk.plan.account.home_tz)
    tk.emit("receive_user_input", answer, _customer(tk), "customer", {})
    return True


def _work(tk: _Ticket, at: datetime, first_round: bool) -> None:
    """From in_progress to resolved, with interludes in between."""
    rng = tk.rng
    interludes: list[str] = []
    interludes += ["internal"] * _pick(rng, (0, 1, 2, 3), (35, 35, 20, 10))
    interludes += ["update"] * _pick(rng, (0, 1, 2), (60, 30, 10))
    interludes += ["customer"] * _pick(rng, (0, 1, 2), (70, 22, 8))
    if rng.random() < 0.25:
        interludes.append("link")
    if rng.random() < (0.22 if first_round else 0.1):
        interludes.append("pause")
        if rng.random() < 0.25:
            interludes.append("pause")
    rng.shuffle(interludes)
    if first_round and rng.random() < 0.06:
        interludes.insert(rng.randrange(len(interludes) + 1), "priority")
    backlog = tk.plan.category == "feature_request" and rng.random() < 0.5
    share = _lognormal(rng, 0.45, 0.9) if first_round else _lognormal(rng, 0.2, 0.8)
    total = tk.effort * share
    bounds = [0.0, *sorted(rng.random() for _ in interludes), 1.0]
    chunks = [hi - lo for lo, hi in pairwise(bounds)]
    for kind, chunk in zip(interludes, chunks, strict=False):
        at = tk.after_work(at, total * chunk)
        if not _interlude(tk, kind, at):
            return
        at = tk.last or at
    at = tk.after_work(at, total * chunks[-1])
    resolution = rng.choice(texts.RESOLUTIONS)
    if backlog:
        _comment(tk, at, "agent", "Logged as product feedback.", internal=True)
        at = tk.after_work(at + _wall(rng, 14 * 24, 0.6, 60 * 24), 30)
        resolution = rng.choice(texts.BACKLOG_RESOLUTIONS)
    elif rng.random() < 0.07:  # waiting for a vendor or a release
        at = at + _wall(rng, 6 * 24, 0.6, 30 * 24)
    tk.emit("resolve", at, _agent(tk), "agent", {"resolution": resolution})
    _after_resolve(tk)


def _interlude(tk: _Ticket, kind: str, at: datetime) -> bool:
    rng = tk.rng
    if kind == "internal":
        _comment(tk, at, "agent", rng.choice(texts.INTERNAL_NOTES), internal=True)
    elif kind == "update":
        _comment(tk, at, "agent", rng.choice(texts.AGENT_UPDATES))
    elif kind == "customer":
        when = _customer_time(rng, at, tk.plan.account.home_tz)
        _comment(tk, when, "customer", rng.choice(texts.CUSTOMER_COMMENTS))
    elif kind == "link":
        article = rng.choice(tk.ctx.articles[tk.tenant])
        tk.emit("link_article", at, _agent(tk), "agent", {"article_id": article})
    elif kind == "pause":
        return _pause(tk, at)
    elif kind == "priority":
        _change_priority(tk, at)
    return True


def _change_priority(tk: _Ticket, at: datetime) -> None:
    """One step more or less urgent (the policy lists priorities most urgent first)."""
    rng = tk.rng
    priorities = tk.policy.priorities
    index = priorities.index(tk.priority)
    if index == 0:
        new = priorities[1]
    elif index == len(priorities) - 1:
        new = priorities[-2]
    else:
        new = priorities[index - 1] if rng.random() < 0.6 else priorities[index + 1]
    manager = rng.random() < 0.4
    actor = rng.choice(tk.ctx.staff[tk.tenant].managers) if manager else _agent(tk)
    reason = rng.choice(texts.PRIORITY_REASONS)
    tk.emit("change_priority", at, actor, "manager" if manager else "agent",
            {"priority": new, "reason": reason})  # fmt: skip


def _satisfaction(tk: _Ticket, late: bool) -> Callable[[datetime], None]:
    rng = tk.rng
    weights = (8, 12, 20, 32, 28) if late else (4, 6, 12, 30, 48)
    score = _pick(rng, (1, 2, 3, 4, 5), weights)
    payload: dict[str, Any] = {"score": score}
    if rng.random() < 0.35:
        payload["comment"] = rng.choice(texts.SAT_COMMENTS)
    if tk.tenant == GB and rng.random() < 0.85:
        low, high = {1: (0, 4), 2: (0, 6), 3: (4, 8), 4: (6, 9), 5: (8, 10)}[score]
        payload["nps"] = rng.randint(low, high)

    def record(at: datetime) -> None:
        tk.emit("record_satisfaction", at, _customer(tk), "customer", payload)

    return record


def _after_resolve(tk: _Ticket, quick: bool = False) -> None:
    rng = tk.rng
    resolved = tk.last or tk.plan.created_at
    home = tk.plan.account.home_tz
    reopened = tk.resolutions > 1
    quiet_until = resolved + _quiet_after_resolve(tk.policy)
    if not quick and rng.random() < (0.07 if tk.resolutions == 1 else 0.02):
        reopen_at = _customer_time(rng, resolved + _wall(rng, 18, 0.9, 60), home)
        reopen_at = min(reopen_at, resolved + _REOPEN_WITHIN, quiet_until)
        if rng.random() < 0.3:
            _satisfaction(tk, late=True)(resolved + (reopen_at - resolved) * rng.uniform(0.1, 0.9))
        if rng.random() < 0.8:
            tk.emit("reopen", reopen_at, _customer(tk), "customer",
                    {"reason": rng.choice(texts.REOPEN_REASONS)})  # fmt: skip
        else:
            tk.emit("reopen", reopen_at, _agent(tk), "agent",
                    {"reason": rng.choice(texts.AGENT_REOPEN_REASONS)})  # fmt: skip
        _work(tk, tk.last or reopen_at, first_round=False)
        return
    events: list[tuple[datetime, Callable[[datetime], None]]] = []
    if not quick and rng.random() < (0.55 if tk.tenant == GB else 0.45):
        when = _customer_time(rng, resolved + _wall(rng, 4, 1.2, 120), home)
        events.append((when, _satisfaction(tk, late=reopened)))
    close_at: datetime | None = None
    if not quick and rng.random() < 0.4:
        close_at = _customer_time(rng, resolved + _wall(rng, 10, 1.0, 120), home)
        close_at = min(close_at, quiet_until)
        events.append((close_at, _close(tk)))
    if not quick and rng.random() < 0.1:
        when = resolved + timedelta(minutes=rng.uniform(5, 600))
        if close_at is None or when < close_at:
            events.append((min(when, quiet_until), _thanks(tk)))
    if not quick and rng.random() < 0.035:
        consent = _customer_time(rng, resolved + _wall(rng, 8, 1.0, 120), home)
        events.append((consent, _consent(tk)))
        if rng.random() < 0.8:
            events.append((tk.after_work(consent, rng.uniform(60, 960)), _publish(tk)))
    if not quick and rng.random() < 0.04:
        events.append((tk.after_work(resolved, rng.uniform(10, 240)), _late_link(tk)))
    for when, action in sorted(events, key=lambda item: item[0]):
        action(when)


def _quiet_after_resolve(policy: Policy) -> timedelta:
    """How long after a resolution the customer may still reopen, close or comment: a
    day short of the policy's auto-close, so the timer's close never races them."""
    if policy.auto_close_after is None:
        return timedelta(days=6)
    return timedelta(minutes=policy.auto_close_after) - timedelta(days=1)


def _close(tk: _Ticket) -> Callable[[datetime], None]:
    rng = tk.rng
    by_agent = rng.random() < 0.08  # the customer confirmed by phone or chat

    def close(at: datetime) -> None:
        actor, role = (_agent(tk), "agent") if by_agent else (_customer(tk), "customer")
        tk.emit("close", at, actor, role, {"reason": "confirmed"})

    return close


def _thanks(tk: _Ticket) -> Callable[[datetime], None]:
    def thanks(at: datetime) -> None:
        if tk.can("add_comment"):
            _comment(tk, at, "customer", tk.rng.choice(texts.THANKS))

    return thanks


def _consent(tk: _Ticket) -> Callable[[datetime], None]:
    def consent(at: datetime) -> None:
        tk.emit("consent_to_publish", at, _customer(tk), "customer", {})

    return consent


def _publish(tk: _Ticket) -> Callable[[datetime], None]:
    def publish(at: datetime) -> None:
        tk.ctx.published += 1
        prefix = "PP" if tk.tenant == PP else "GB"
        article = f"KB-{prefix}-{9000 + tk.ctx.published:05d}"
        tk.emit("publish_as_article", at, _agent(tk), "agent", {"article_id": article})

    return publish


def _late_link(tk: _Ticket) -> Callable[[datetime], None]:
    def link(at: datetime) -> None:
        article = tk.rng.choice(tk.ctx.articles[tk.tenant])
        tk.emit("link_article", at, _agent(tk), "agent", {"article_id": article})

    return link


# --------------------------------------------------------------------- self-service
def _sessions(
    ctx: _Ctx,
    tenant: str,
    *,
    count: int,
    plans: list[_Plan],
    accounts: list[_Account],
    start: datetime,
) -> None:
    """record_self_service sessions; ~60 % solved, the rest lead to a real ticket."""
    rng = ctx.rng
    chat = {"in_app_chat", "in_app_ticket"} if tenant == GB else {"in_app"}
    eligible = [p for p in plans if p.channel in chat and p.created_at > start]
    rng.shuffle(eligible)
    prefix = "GB" if tenant == GB else "PP"
    sessions: list[tuple[datetime, _Account, str, dict[str, Any]]] = []
    for _ in range(count):
        articles = rng.sample(ctx.articles[tenant], rng.randint(1, 4))
        payload: dict[str, Any] = {"articles_viewed": articles}
        if rng.random() < 0.38 and eligible:
            plan = eligible.pop()
            plan.via_session = True
            plan.creator = rng.choice(plan.account.users)
            at = max(start, plan.created_at - timedelta(seconds=rng.randint(60, 1200)))
            payload["outcome"] = "ticket_created"
            payload["ticket_id"] = plan.ticket_id
            account, user = plan.account, plan.creator
        else:
            account = rng.choice(accounts)
            user = rng.choice(account.users)
            at = _arrival(rng, tenant, account.home_tz, start, ctx.end)
            payload["outcome"] = "solved"
        sessions.append((at, account, user, payload))
    sessions.sort(key=lambda s: s[0])
    for number, (at, account, user, payload) in enumerate(sessions, start=1):
        ctx.push(
            at,
            {
                "type": "record_self_service",
                "tenant": tenant,
                "session_id": f"SS-{prefix}-{number:06d}",
                "occurred_at": at.astimezone(_engine_tz(account)).isoformat(timespec="seconds"),
                "actor": {"id": user, "role": "customer"},
                "payload": payload,
            },
        )


# ----------------------------------------------------------------------------- api
def _staff() -> dict[str, _Staff]:
    return {
        PP: _Staff(
            agents=tuple(f"pp-agent-{k:02d}" for k in range(1, 21)),
            specialists=tuple(f"pp-specialist-{k:02d}" for k in range(1, 7)),
            developers=tuple(f"pp-dev-{k:02d}" for k in range(1, 4)),
            managers=tuple(f"pp-manager-{k}" for k in range(1, 4)),
        ),
        GB: _Staff(
            agents=tuple(f"gb-tier1-{k:02d}" for k in range(1, 16)),
            specialists=tuple(f"gb-tier2-{k:02d}" for k in range(1, 7)),
            developers=tuple(f"gb-tier3-{k:02d}" for k in range(1, 4)),
            managers=tuple(f"gb-manager-{k}" for k in range(1, 3)),
        ),
    }


#: The knowledge base's articles the workload's agents link and its customers view, by
#: tenant (the demo creates each of them first: `ticketflow.tools.demo`).
KNOWN_ARTICLES: dict[str, tuple[str, ...]] = {
    PP: tuple(f"KB-PP-{k:05d}" for k in range(1, 121)),
    GB: tuple(f"KB-GB-{k:05d}" for k in range(1, 81)),
}


def generate_workload(
    seed: int,
    tickets: int = 3000,
    start: datetime = DEFAULT_START,
    days: int = 42,
) -> list[dict[str, Any]]:
    """Inbound command envelopes for both tenants, sorted by ``occurred_at``.

    Deterministic for a given ``(seed, tickets, start, days)``. ``tickets`` is
    the total over both tenants (55 % personalysispro, 45 % growgrebuddy); no
    command occurs at or after ``start + days``.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must carry a time zone")
    if tickets < 0 or days < 1:
        raise ValueError("tickets must be >= 0 and days >= 1")
    rng = random.Random(seed)
    start = start.astimezone(UTC).replace(microsecond=0)
    end = start + timedelta(days=days)
    n_pp = round(tickets * 0.55)
    n_gb = tickets - n_pp
    accounts = _make_accounts(rng, n_pp, n_gb)
    ctx = _Ctx(rng=rng, end=end, staff=_staff(), articles=KNOWN_ARTICLES)
    plans = {
        tenant: _plan_tickets(
            rng, tenant, count=count, accounts=accounts[tenant], start=start, end=end
        )
        for tenant, count in ((PP, n_pp), (GB, n_gb))
    }
    for tenant, count in ((GB, round(n_gb * 0.65)), (PP, round(n_pp * 0.08))):
        _sessions(
            ctx, tenant, count=count, plans=plans[tenant], accounts=accounts[tenant], start=start
        )
    merged = sorted([*plans[PP], *plans[GB]], key=lambda p: (p.created_at, p.ticket_id))
    for plan in merged:
        ticket = _Ticket(ctx, random.Random(rng.getrandbits(64)), plan)
        with suppress(_WindowEnd):  # the rest of the story happens after the window
            _story(ticket)
    ctx.raw.sort(key=lambda item: (item[0], item[1]))
    out: list[dict[str, Any]] = []
    for n, (_, _, envelope) in enumerate(ctx.raw, start=1):
        out.append({"message_id": f"demo-{seed}-{n:06d}", **envelope})
    return out
