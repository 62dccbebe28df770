"""Tenant policies as data: TOML files validated by pydantic (SPEC §2).

A policy is identified by id and version and fingerprinted by a content hash (SHA-256
of its canonical JSON form), which every ticket records at creation.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import date
from functools import cached_property
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ticketflow.domain.calendar import MAX_SEARCH_DAYS, MINUTES_PER_DAY, Calendar
from ticketflow.domain.notification_templates import (
    AUDIENCES,
    VISIBLE_FIELDS,
    TemplateProblem,
    render,
    sample_context,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


#: The longest duration a policy may give (a target, a window, an escalation delay):
#: anything longer is a typo, and would send the calendar maths on a very long walk.
MAX_DURATION_MINUTES = 366 * MINUTES_PER_DAY
#: Every SLA target and automatic-escalation delay must fall due within this many days
#: (50 years) on its calendar, wherever it starts, in any time zone. The evaluator looks
#: twice as far (`calendar.MAX_SEARCH_DAYS`), which leaves daylight-saving changes room.
DUE_HORIZON_DAYS = MAX_SEARCH_DAYS // 2


class PolicyError(ValueError):
    """A policy file is unreadable or invalid; the message names file, key and problem."""


def parse_minutes(value: object) -> int:
    """'4h' → 240, '30m' → 30, '1d' → 1440, '1h30m' → 90; an int is minutes already."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    else:
        match = _DURATION.match(str(value).strip())
        if not match or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration like '30m', '4h', '1d' or '1h30m'")
        days, hours, mins = (int(g or 0) for g in match.groups())
        minutes = days * MINUTES_PER_DAY + hours * 60 + mins
    if minutes <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    if minutes > MAX_DURATION_MINUTES:
        raise ValueError(f"duration {value!r} is longer than the limit of 366d")
    return minutes


Minutes = Annotated[int, BeforeValidator(parse_minutes)]


def _parse_window(text: str) -> tuple[int, int]:
    match = _HOURS.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not opening hours like '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= MINUTES_PER_DAY) or m1 > 59 or m2 > 59:
        raise ValueError(f"{text!r}: opening must be before closing, within 00:00-24:00")
    return start, end


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarSpec(Strict):
    """Weekly hours per weekday ('mon' … 'sun'), each a list of 'HH:MM-HH:MM'."""

    hours: dict[Weekday, list[str]]
    holidays: list[date] = []

    @field_validator("hours")
    @classmethod
    def _windows_ordered(cls, hours: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, windows in hours.items():
            parsed = [_parse_window(w) for w in windows]
            for (_, end), (start, _) in pairwise(parsed):
                if start < end:
                    raise ValueError(f"{day}: windows must be sorted and must not overlap")
        if not any(hours.values()):
            raise ValueError("a calendar needs some opening hours")
        return hours

    def open_minutes(self, day: Weekday) -> int:
        return sum(end - start for start, end in map(_parse_window, self.hours.get(day, [])))

    def surely_open_minutes(self) -> int:
        """Open minutes the calendar has within `DUE_HORIZON_DAYS` of any instant, at the
        least: the whole weeks there, less every holiday it lists (wherever they fall)."""
        weekly = sum(self.open_minutes(day) for day in WEEKDAYS)
        lost = sum(self.open_minutes(WEEKDAYS[day.weekday()]) for day in set(self.holidays))
        return (DUE_HORIZON_DAYS - 1) // 7 * weekly - lost

    def describe(self) -> str:
        """'open 120 min a week, less 3 holidays'."""
        weekly = sum(self.open_minutes(day) for day in WEEKDAYS)
        holidays = len(set(self.holidays))
        return f"open {weekly} min a week" + (f", less {holidays} holidays" if holidays else "")

    def build(self, name: str) -> Calendar:
        weekly = tuple(
            tuple(_parse_window(w) for w in self.hours.get(day, [])) for day in WEEKDAYS
        )
        return Calendar(name, weekly, frozenset(self.holidays))


#: Per model class, the fields added after the first release; the content hash leaves
#: each out while it holds its default (`Policy.hashed_document`). A new optional section
#: or plan field goes here, or every stored version's hash would change.
ADDED_LATER: dict[str, frozenset[str]] = {
    "Policy": frozenset({"notifications", "quality", "tier_goals"}),
    "PlanSpec": frozenset({"account_manager"}),
}


def _drop_defaults(model: BaseModel, dumped: dict[str, Any]) -> None:
    fields = type(model).model_fields
    for name in ADDED_LATER.get(type(model).__name__, frozenset()):
        if getattr(model, name) == fields[name].get_default(call_default_factory=True):
            del dumped[name]


class PlanSpec(Strict):
    """What a plan allows and the first-response targets it buys."""

    channels: list[str]
    #: Calendar per priority; the key "default" covers priorities not listed.
    calendar: dict[str, str]
    first_response: dict[str, Minutes]
    #: A priority the plan lists no target for borrows another priority's target.
    priority_fallback: dict[str, str] = {}
    #: Whether an account on the plan may have a dedicated account manager
    #: (`assign_account_manager`).
    account_manager: bool = False


class AutoEscalation(Strict):
    """Raise the level `to` once `after` has passed on `calendar` since `since`."""

    to: str
    after: Minutes | Literal[0] = 0
    calendar: str = "always"
    since: str = "created"  # "created" or "level:<name>"
    priority: str | None = None  # only tickets of this priority


class EscalationSpec(Strict):
    levels: list[str]

    @field_validator("levels")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        return _distinct(values)
    initial: str | None = None
    #: A breach of this clock raises the ticket to this level (SPEC §2.1).
    on_breach: dict[Literal["first_response", "resolution"], str] = {}
    automatic: list[AutoEscalation] = []


class TierGoal(Strict):
    """A tier's resolution goal: a ticket that reaches the tier should be resolved there
    within `resolve_within` on `calendar` (its pauses for the customer not counted)."""

    resolve_within: Minutes
    calendar: str


class TemplateSpec(Strict):
    """A notification's Jinja2 sources: a subject line, a plain-text and an HTML body."""

    subject: str
    text: str
    html: str


class NotificationRule(Strict):
    """When to tell whom, how and with which template (SPEC §10): on a ticket event
    (`on`, and the event's customer-visible fields in `when`), or on a timer (`every`
    so long on the ticket's calendar while the ticket sits, open, at `while_level`)."""

    on: str | None = None
    when: dict[str, str] = {}
    every: Minutes | None = None
    while_level: str | None = None
    audience: list[Literal["customer", "assignee", "account_manager"]]
    channel: Literal["email", "in_app", "sms", "push"]
    template: str

    @field_validator("audience")
    @classmethod
    def _some_audience(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError(f"name at least one of {', '.join(AUDIENCES)}")
        return _distinct(values)


class NotificationsSpec(Strict):
    """Notification rules and templates by name, and each account's manager (by
    account id) where it has one."""

    rules: dict[str, NotificationRule] = {}
    templates: dict[str, TemplateSpec] = {}
    account_managers: dict[str, str] = {}

    def problems(self, tenant: str, levels: set[str]) -> list[str]:
        problems: list[str] = []
        for name, rule in self.rules.items():
            where = f"notifications.rules.{name}"
            shape = [f"{where}: {problem}" for problem in _rule_shape(rule, levels)]
            problems += shape
            if rule.template not in self.templates:
                problems.append(f"{where}.template: unknown template {rule.template!r}")
            elif not shape:
                problems += [f"notifications.templates.{rule.template}.{problem}"
                             f" (as rule {name!r} renders it)"
                             for problem in _render_problems(self.templates[rule.template],
                                                             rule, tenant)]
        return problems


def _rule_shape(rule: NotificationRule, levels: set[str]) -> list[str]:
    if (rule.on is None) == (rule.every is None):
        return ["name either an event (`on`) or a timer (`every` and `while_level`)"]
    if rule.every is not None:
        if rule.while_level not in levels:
            return [f"while_level: {rule.while_level!r} is not a level of the ladder"
                    f" ({', '.join(sorted(levels))})"]
        return ["when: a timer rule has no event to match"] if rule.when else []
    if rule.on not in VISIBLE_FIELDS:
        return [f"on: {rule.on!r} is not an event a notification may follow"
                f" ({', '.join(VISIBLE_FIELDS)})"]
    hidden = sorted(set(rule.when) - set(VISIBLE_FIELDS[rule.on]))
    problems = [f"when: {field!r} is not a customer-visible field of {rule.on}"
                for field in hidden]
    if rule.while_level is not None:
        problems.append("while_level: only a timer rule (`every`) has one")
    return problems


def _render_problems(template: TemplateSpec, rule: NotificationRule, tenant: str) -> list[str]:
    try:
        render(template.model_dump(), sample_context(rule.on, tenant=tenant))
    except TemplateProblem as problem:
        return [str(problem)]
    return []


class QualitySpec(Strict):
    """Response-quality reviews (`review_ticket`): the rubric's items, each of which a
    review marks passed or not."""

    rubric: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = []

    @field_validator("rubric")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        return _distinct(values)


class Policy(Strict):
    """One tenant's support policy (SPEC §2)."""

    id: str
    version: str
    name: str
    default_timezone: str = "UTC"
    require_account_timezone: bool = False
    channels: list[str]
    #: Extra payload fields some channels require, with their allowed values.
    channel_fields: dict[str, dict[str, list[str]]] = {}
    priorities: list[str]
    #: Category → subcategories; an empty list means the category has none.
    categories: dict[str, list[str]]
    calendars: dict[str, CalendarSpec]
    plans: dict[str, PlanSpec]
    resolution: dict[str, Minutes] = {}
    escalation: EscalationSpec
    auto_close_after: Minutes | None = None
    reopen_window: Minutes | None = None
    notifications: NotificationsSpec = NotificationsSpec()
    quality: QualitySpec = QualitySpec()
    #: Resolution goals per escalation level (GrowgrEbuddy's "Tier 1 attempts to resolve
    #: within 30 minutes"), measured per stint at the level (`domain/tiers.py`).
    tier_goals: dict[str, TierGoal] = {}

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        iana_zone(value)
        return value

    @field_validator("channels", "priorities")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        return _distinct(values)

    @model_validator(mode="after")
    def _references_resolve(self, info: ValidationInfo) -> Policy:
        problems = list(self._reference_problems())
        # A version already in the event store was accepted when first used and never
        # changes; its tickets are evaluated (or refused one by one) under it.
        if not problems and not (info.context or {}).get("stored"):
            problems = self._horizon_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _reference_problems(self) -> list[str]:
        problems: list[str] = []
        prios, cals = set(self.priorities), set(self.calendars)
        for plan_name, plan in self.plans.items():
            where = f"plans.{plan_name}"
            problems += [f"{where}.channels: unknown channel {c!r}"
                         for c in plan.channels if c not in self.channels]
            problems += [f"{where}.calendar: unknown calendar {c!r}"
                         for c in plan.calendar.values() if c not in cals]
            problems += [f"{where}.calendar: unknown priority {p!r}"
                         for p in plan.calendar if p != "default" and p not in prios]
            if "default" not in plan.calendar and not prios <= set(plan.calendar):
                problems.append(f"{where}.calendar: no calendar for some priorities, add 'default'")
            for prio in self.priorities:
                source = plan.priority_fallback.get(prio, prio)
                if source not in plan.first_response:
                    problems.append(f"{where}.first_response: no target for priority {prio!r}")
        problems += [f"resolution: unknown priority {p!r}"
                     for p in self.resolution if p not in prios]
        levels = set(self.escalation.levels)
        named = [self.escalation.initial, *self.escalation.on_breach.values()]
        named += [rule.to for rule in self.escalation.automatic]
        problems += [f"escalation: unknown level {n!r}" for n in named if n and n not in levels]
        problems += [f"escalation.automatic: unknown calendar {r.calendar!r}"
                     for r in self.escalation.automatic if r.calendar not in cals]
        problems += self.notifications.problems(self.id, levels)
        problems += [f"tier_goals.{level}: {level!r} is not a level of the escalation ladder"
                     f" ({', '.join(self.escalation.levels)})"
                     for level in self.tier_goals if level not in levels]
        problems += [f"tier_goals.{level}.calendar: unknown calendar {goal.calendar!r}"
                     for level, goal in self.tier_goals.items() if goal.calendar not in cals]
        return problems + self._rule_problems(prios, levels)

    def _rule_problems(self, prios: set[str], levels: set[str]) -> list[str]:
        """Names the timers and the create command look up at run time."""
        problems = [f"escalation.automatic: unknown priority {r.priority!r}"
                    for r in self.escalation.automatic if r.priority and r.priority not in prios]
        problems += [f"escalation.automatic: since {r.since!r} is neither 'created' nor"
                     f" 'level:<one of {sorted(levels)}>'" for r in self.escalation.automatic
                     if r.since != "created" and r.since.removeprefix("level:") not in levels]
        problems += [f"channel_fields: unknown channel {c!r}"
                     for c in self.channel_fields if c not in self.channels]
        for plan_name, plan in self.plans.items():
            fallback = plan.priority_fallback
            problems += [f"plans.{plan_name}.priority_fallback: unknown priority {p!r}"
                         for p in {*fallback, *fallback.values()} - prios]
        return problems

    def _horizon_problems(self) -> list[str]:
        """Targets and delays that might not fall due within `DUE_HORIZON_DAYS` on their
        calendar: the evaluator could not serve a ticket under them."""
        timed = [(f"escalation.automatic.{n}.after", rule.after, rule.calendar)
                 for n, rule in enumerate(self.escalation.automatic)]
        timed += [(f"tier_goals.{level}.resolve_within", goal.resolve_within, goal.calendar)
                  for level, goal in self.tier_goals.items()]
        for plan_name, plan in self.plans.items():
            for prio in self.priorities:
                calendar = self.calendar_name(plan_name, prio)
                source = plan.priority_fallback.get(prio, prio)
                timed.append((f"plans.{plan_name}.first_response.{source}",
                              plan.first_response[source], calendar))
                if prio in self.resolution:
                    timed.append((f"resolution.{prio}", self.resolution[prio], calendar))
        problems = []
        for key, minutes, calendar in dict.fromkeys(timed):
            spec = self.calendars[calendar]
            most = spec.surely_open_minutes()
            if minutes > most:
                problems.append(
                    f"{key}: {minutes} min may not fall due within {DUE_HORIZON_DAYS // 365}"
                    f" years on calendar {calendar!r} ({spec.describe()}): at most"
                    f" {max(most, 0)} min fit")
        return problems

    # --- lookups used by the aggregate and the SLA maths -------------------------------

    @cached_property
    def content_hash(self) -> str:
        canonical = json.dumps(self.hashed_document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def hashed_document(self) -> dict[str, Any]:
        """The document the content hash covers: the whole policy, less the sections
        and fields added after the first release (`ADDED_LATER`) while they hold their
        default, so a version stored before they existed keeps its hash."""
        document = self.model_dump(mode="json")
        _drop_defaults(self, document)
        for plan, dumped in zip(self.plans.values(), document["plans"].values(), strict=True):
            _drop_defaults(plan, dumped)
        return document

    @cached_property
    def calendar_objects(self) -> dict[str, Calendar]:
        return {name: spec.build(name) for name, spec in self.calendars.items()}

    def calendar_name(self, plan: str, priority: str) -> str:
        mapping = self.plans[plan].calendar
        return mapping.get(priority) or mapping["default"]

    def first_response_minutes(self, plan: str, priority: str) -> int:
        spec = self.plans[plan]
        return spec.first_response[spec.priority_fallback.get(priority, priority)]

    def resolution_minutes(self, priority: str) -> int | None:
        return self.resolution.get(priority)

    def level_rank(self, level: str | None) -> int:
        """-1 for 'not escalated', else the level's position on the ladder."""
        return -1 if level is None else self.escalation.levels.index(level)

    def identity(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version, "hash": self.content_hash}


def iana_zone(name: str) -> ZoneInfo:
    """The zone of an IANA key, or ValueError. A folder of the zone database
    ('America') or an over-long name fails with an OSError, not ZoneInfoNotFoundError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA time zone {name[:80]!r}") from None


def _distinct(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {', '.join(repeated)}")
    return values


def load_policy_text(text: str, source: str) -> Policy:
    """Parse and validate TOML text; errors name `source`, the key and the problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise PolicyError(f"{source}: not valid TOML: arrays or tables nested too deeply") from None
    return policy_from_data(raw, source)


def policy_from_data(raw: dict[str, Any], source: str, *, stored: bool = False) -> Policy:
    """Validate a policy document. `stored`: a version kept in the event store, held to
    the rules it was accepted under (checks that only guard new files are skipped)."""
    try:
        return Policy.model_validate(raw, context={"stored": stored})
    except ValidationError as exc:
        lines = [f"{source}: invalid policy"]
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg'].removeprefix('Value error, ')}")
        raise PolicyError("\n".join(lines)) from None


def load_policy_file(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: a policy file is UTF-8 text; byte {exc.start} is not"
                          f" ({exc.reason})") from None
    return load_policy_text(text, str(path))


def shipped_policies() -> dict[str, Policy]:
    """The policies that ship with ticketflow, by id."""
    folder = resources.files("ticketflow.domain.policies")
    policies = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            policy = load_policy_text(entry.read_text(encoding="utf-8"), entry.name)
            policies[policy.id] = policy
    return policies


def load_policy_dir(path: Path) -> dict[str, Policy]:
    policies = {}
    for file in sorted(path.glob("*.toml")):
        policy = load_policy_file(file)
        policies[policy.id] = policy
    if not policies:
        raise PolicyError(f"{path}: no *.toml policy files found")
    return policies


