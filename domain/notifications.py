"""Notifications (SPEC §10): what a tenant's policy says to tell whom, when.

Pure functions of a ticket's history and its policy version:

- `on_command(policy, header, ticket, envelopes)`: the notifications the events of one
  command trigger, rendered with the ticket as it stands after that command;
- `updates_due(ticket, policy)`: the regular updates a timer rule has due from the
  ticket's last event on (every N counted on the ticket's calendar while it sits, open,
  at a level), earliest first; `on_update(...)` renders one;
- `replay(policy, envelopes, until)`: every notification a ticket's history gives up
  to an instant: the same set, with the same ids and texts, that recording them live
  (with the events, and by the timer) gives.

Each notification has a deterministic id: UUIDv5 of (tenant, ticket, the event's
version or the timer's due instant, rule, audience), so a replay, a redelivery or a
second worker names the same notification. `Notification` is the outbox record: one
event per notification, saved in the transaction of the events that caused it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ticketflow.domain.chain import utc_iso
from ticketflow.domain.lifecycle import OPEN, Status
from ticketflow.domain.notification_templates import (
    TIMER_EVENT,
    context,
    render,
    visible_data,
)
from ticketflow.domain.policy import NotificationRule, Policy, iana_zone
from ticketflow.domain.streams import NAMESPACE
from ticketflow.domain.ticket import Ticket

NOTIFICATION_NAMESPACE = uuid5(NAMESPACE, "notification")
#: The stored record's topic (what the outbox relay selects).
NOTIFICATION_TOPIC = "ticketflow.domain.notifications:Notification.Recorded"
Document = dict[str, Any]


def notification_id(tenant: str, ticket_id: str, trigger: str, rule: str,
                    audience: str) -> UUID:
    """`trigger`: "v<version>" for an event, "at:<due instant>" for a timer."""
    return uuid5(NOTIFICATION_NAMESPACE, f"{tenant}/{ticket_id}/{trigger}/{rule}/{audience}")


class Notification(Aggregate):
    """One notification as recorded in the outbox: its whole document, once."""

    class Recorded(Aggregate.Created):
        document: dict[str, Any]

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    @classmethod
    def record(cls, document: Document) -> Notification:
        return cls._create(cls.Recorded, id=UUID(document["notification_id"]),
                           document=document)


@dataclass(frozen=True)
class Header:
    """What a ticket's creation says that its notifications need."""

    tenant: str
    ticket_id: str
    account_id: str
    subject: str
    channel: str
    category: str
    subcategory: str | None
    customer: str  # the creator, if a customer created it; else the account

    @classmethod
    def of(cls, created: Document) -> Header:
        """From the TicketCreated envelope."""
        data, actor = created["data"], created["actor"]
        customer = actor["id"] if actor["role"] == "customer" else data["account_id"]
        return cls(created["tenant"], created["ticket_id"], data["account_id"],
                   data["subject"], data["channel"], data["category"],
                   data.get("subcategory"), customer)


def on_command(policy: Policy, header: Header, ticket: Ticket,
               envelopes: Iterable[Document]) -> list[Document]:
    """The notifications the events of one command trigger (`envelopes`, in order),
    the ticket being as it stands after them."""
    found: list[Document] = []
    for envelope in envelopes:
        for name, rule in policy.notifications.rules.items():
            if _matches(rule, envelope):
                event = {"type": envelope["type"], "version": envelope["version"],
                         "occurred_at": _local(envelope["occurred_at"], ticket.timezone),
                         **visible_data(envelope["type"], envelope["data"])}
                trigger = {"kind": "event", "event_type": envelope["type"],
                           "version": envelope["version"], "event_id": envelope["event_id"]}
                found += _documents(policy, header, ticket, name, rule, event, trigger,
                                    f"v{envelope['version']}", envelope["occurred_at"])
    return found


def triggers_any(policy: Policy, event_types: Iterable[str]) -> bool:
    """Whether some rule follows one of these event types (no need to look further)."""
    wanted = {rule.on for rule in policy.notifications.rules.values()}
    return any(event_type in wanted for event_type in event_types)


def _matches(rule: NotificationRule, envelope: Document) -> bool:
    if rule.on != envelope["type"]:
        return False
    data = envelope["data"]
    if envelope["type"] == "CommentAdded" and _visibility(envelope) != "public":
        return False  # an internal comment never reaches a notification
    return all(str(data.get(field)) == value for field, value in rule.when.items())


def _visibility(envelope: Document) -> str:
    """A comment's visibility; schema version 1 had a `public` flag instead."""
    data = envelope["data"]
    if "visibility" in data:
        return str(data["visibility"])
    return "public" if data.get("public", True) else "internal"


@dataclass(frozen=True, order=True)
class UpdateDue:
    """A regular update a timer rule has due at `at`."""

    at: datetime
    rule: str
    number: int  # its place in the ticket's current stretch at the level (1, 2, …)


def updates_due(ticket: Ticket, policy: Policy, header: Header) -> Iterator[UpdateDue]:
    """The regular updates due from the ticket's last event on (at or after it),
    earliest first, without end while the ticket stays as it is. Update n+1 falls due
    `every` counted on the ticket's calendar after update n; the first, that long after
    the ticket reached the level (or was last reopened there). A rule none of whose
    audience the ticket has (no assignee, no account manager) has nothing due."""
    chains = [_chain(ticket, policy, name, rule)
              for name, rule in policy.notifications.rules.items()
              if rule.every is not None and any(
                  _recipient(policy, header, ticket, audience) for audience in rule.audience)]
    return heapq.merge(*chains)


def _chain(ticket: Ticket, policy: Policy, name: str,
           rule: NotificationRule) -> Iterator[UpdateDue]:
    if ticket.level != rule.while_level or Status(ticket.status) not in OPEN:
        return
    assert rule.every is not None and rule.while_level is not None  # a timer rule
    reopened = [f["at"] for f in ticket.sla_facts if f["kind"] == "reopen"]
    at = max([ticket.level_reached_at[rule.while_level], *reopened])
    calendar = policy.calendar_objects[policy.calendar_name(ticket.plan, ticket.priority)]
    zoned = calendar.zoned(ticket.timezone)
    number = 0
    while True:
        at, number = zoned.advance(at, rule.every * 60), number + 1
        if at >= ticket.last_occurred_at:
            yield UpdateDue(at, name, number)


def on_update(policy: Policy, header: Header, ticket: Ticket, due: UpdateDue) -> list[Document]:
    """The notifications of one regular update, the ticket being as it stands."""
    rule = policy.notifications.rules[due.rule]
    at = utc_iso(due.at)
    event = {"type": TIMER_EVENT, "occurred_at": _local(at, ticket.timezone),
             "number": due.number}
    trigger = {"kind": "timer", "due_at": at}
    return _documents(policy, header, ticket, due.rule, rule, event, trigger, f"at:{at}", at)


def _documents(policy: Policy, header: Header, ticket: Ticket, name: str,
               rule: NotificationRule, event: Document, trigger: Document, key: str,
               at: str) -> list[Document]:
    documents = []
    ticket_view = _ticket_view(header, ticket)
    tenant = {"id": policy.id, "name": policy.name}
    for audience in rule.audience:
        recipient = _recipient(policy, header, ticket, audience)
        if recipient is None:
            continue
        seen = context(tenant=tenant, ticket=ticket_view, event=event,
                       recipient={"audience": audience, "id": recipient}, rule=name)
        rendered = render(policy.notifications.templates[rule.template].model_dump(), seen)
        documents.append({
            "notification_id": str(notification_id(header.tenant, header.ticket_id, key,
                                                   name, audience)),
            "tenant": header.tenant, "ticket_id": header.ticket_id, "rule": name,
            "trigger": trigger, "at": at, "audience": audience, "recipient": recipient,
            "channel": rule.channel, "template": rule.template,
            "policy": {"id": policy.id, "version": policy.version}, **rendered,
        })
    return documents


def _recipient(policy: Policy, header: Header, ticket: Ticket, audience: str) -> str | None:
    if audience == "customer":
        return header.customer
    if audience == "assignee":
        return ticket.assignee
    return policy.notifications.account_managers.get(header.account_id)


def _ticket_view(header: Header, ticket: Ticket) -> Document:
    return {"id": header.ticket_id, "subject": header.subject, "status": ticket.status,
            "level": ticket.level, "priority": ticket.priority, "plan": ticket.plan,
            "channel": header.channel, "category": header.category,
            "subcategory": header.subcategory, "account_id": header.account_id,
            "timezone": ticket.timezone,
            "created_at": _local(utc_iso(ticket.created_at), ticket.timezone)}


def _local(at: str | datetime, zone: str) -> str:
    instant = datetime.fromisoformat(at) if isinstance(at, str) else at
    return instant.astimezone(iana_zone(zone)).isoformat()


def replay(policy: Policy, envelopes: list[Document], until: datetime) -> list[Document]:
    """Every notification a ticket's history (its envelopes, in order) gives up to
    `until`: each command's, and the regular updates due between its events (those
    due strictly before a command fire before it, as the engine fires them)."""
    if not envelopes:
        return []
    header = Header.of(envelopes[0])
    found: list[Document] = []
    history: list[Document] = []
    ticket: Ticket | None = None
    for _, group in groupby(envelopes, key=lambda e: e["causation_id"]):
        events = list(group)
        at = datetime.fromisoformat(events[0]["occurred_at"])
        if ticket is not None:
            found += _updates_before(policy, header, ticket, min(at, until), inclusive=False)
        if at > until:
            return found
        history += events
        ticket = Ticket.from_envelopes(history)
        assert ticket is not None
        found += on_command(policy, header, ticket, events)
    assert ticket is not None
    return found + _updates_before(policy, header, ticket, until, inclusive=True)


def _updates_before(policy: Policy, header: Header, ticket: Ticket, end: datetime, *,
                    inclusive: bool) -> list[Document]:
    found = []
    for due in updates_due(ticket, policy, header):
        if due.at > end or (due.at == end and not inclusive):
            break
        found += on_update(policy, header, ticket, due)
    return found
