"""Notification templates (SPEC §10): Jinja2 in a sandbox, and what a template may see.

A template renders a subject, a plain-text body and an HTML body (autoescaped) from a
context of customer-visible facts only: the ticket's public fields, the triggering
event's customer-visible fields (`VISIBLE_FIELDS`: never an escalation's or a priority
change's reason, an acknowledgement's note, an assignment's agent, an internal comment),
the recipient and the tenant. Undefined names are errors, so a template that reaches for
anything else fails when its policy loads, against `sample_context`, not at send time.
Rendering is pure: the same context always gives the same text.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

#: The ticket events a rule may be triggered by, with the fields of their data a
#: customer may read. An event type missing here triggers nothing.
VISIBLE_FIELDS: dict[str, tuple[str, ...]] = {
    "TicketCreated": ("priority", "channel", "category", "subcategory"),
    "TicketAcknowledged": (),
    "WorkStarted": (),
    "UserInputRequested": ("question",),
    "UserInputReceived": (),
    "TicketResolved": ("resolution",),
    "TicketReopened": (),
    "TicketClosed": ("reason",),
    "TicketEscalated": ("from_level", "level"),
    "PriorityChanged": ("from_priority", "priority"),
    "TicketAssigned": (),
    "CommentAdded": ("body",),  # public comments only: an internal one triggers nothing
    "SlaBreached": ("clock",),
    "ArticleLinked": ("article_id",),
}
#: The fields of the ticket a template sees (all of them customer-visible).
TICKET_FIELDS = ("id", "subject", "status", "level", "priority", "plan", "channel",
                 "category", "subcategory", "account_id", "timezone", "created_at")
AUDIENCES = ("customer", "assignee", "account_manager")
CHANNEL_KINDS = ("email", "in_app", "sms", "push")
PARTS = ("subject", "text", "html")
#: The `event.type` a timer rule's templates see.
TIMER_EVENT = "RegularUpdate"


class TemplateProblem(ValueError):
    """A template that does not compile or render; the message says which part and why."""


@cache
def _environment(html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=html, undefined=StrictUndefined,
                                keep_trailing_newline=False)


@lru_cache(maxsize=1024)
def _compiled(html: bool, source: str) -> Template:
    """A template's source compiled once: compiling (Jinja2 writes and compiles Python)
    cost a fifth of a command's time when done at every render. The sources are the
    loaded policies' (a bounded set); one that fails to compile is not kept."""
    return _environment(html).from_string(source)


def render(parts: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, str]:
    """The subject, text and HTML of a template (its three sources) in a context; the
    HTML body is autoescaped, the others are not. TemplateProblem names the part."""
    rendered = {}
    for part in PARTS:
        try:
            template = _compiled(part == "html", parts[part])
            rendered[part] = template.render(dict(context))
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            raise TemplateProblem(f"{part}: {type(exc).__name__}: {exc}") from None
    rendered["subject"] = " ".join(rendered["subject"].split())  # one line
    return rendered


def sample_context(event_type: str | None, *, tenant: str = "tenant") -> dict[str, Any]:
    """A context of the shape a rule on `event_type` (None: a timer rule) renders with,
    every value a placeholder: what a template is checked against when its policy loads."""
    ticket = {name: f"<ticket.{name}>" for name in TICKET_FIELDS}
    if event_type is None:
        event: dict[str, Any] = {"type": TIMER_EVENT, "occurred_at": "<event.occurred_at>",
                                 "number": 1}
    else:
        event = {"type": event_type, "version": 2, "occurred_at": "<event.occurred_at>",
                 **{name: f"<event.{name}>" for name in VISIBLE_FIELDS[event_type]}}
    return context(tenant={"id": tenant, "name": f"<{tenant}>"}, ticket=ticket, event=event,
                   recipient={"audience": "customer", "id": "<recipient.id>"}, rule="<rule>")


def context(*, tenant: dict[str, Any], ticket: dict[str, Any], event: dict[str, Any],
            recipient: dict[str, Any], rule: str) -> dict[str, Any]:
    """The names a template sees: tenant, ticket, event, recipient, rule."""
    return {"tenant": tenant, "ticket": ticket, "event": event, "recipient": recipient,
            "rule": rule}


def visible_data(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The customer-visible fields of an event's data (missing ones as None)."""
    return {name: data.get(name) for name in VISIBLE_FIELDS[event_type]}
