"""Notifications on the store (SPEC §10): recorded with the events that cause them,
fired when a regular update falls due, read back and replayed.

`Notifier` is what the write service asks: the notification records a command's events
trigger (queued into the same unit, so saved in the same transaction), and the next
regular update a ticket has due, which the timer fires like a time-driven command (and
a later command on the ticket fires first, if it fell due strictly before it). A
notification already in the store is never recorded again: its id is deterministic.

`recorded(...)` and `replayed(...)` read the notifications of the store and those the
ticket histories give when folded again: the two agree (a property test).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from ticketflow.domain.chain import utc_iso
from ticketflow.domain.lifecycle import OPEN, Status
from ticketflow.domain.notifications import (
    NOTIFICATION_TOPIC,
    Document,
    Header,
    Notification,
    UpdateDue,
    notification_id,
    on_command,
    on_update,
    replay,
    triggers_any,
    updates_due,
)
from ticketflow.domain.streams import Stream
from ticketflow.domain.ticket import Ticket
from ticketflow.event_log import EventLog
from ticketflow.policy_store import PolicyStore

HEADERS_REMEMBERED = 20_000


class Notifier:
    """The write service's notifications, on one store."""

    def __init__(self, event_log: EventLog, policy_store: PolicyStore) -> None:
        self.event_log, self.policy_store = event_log, policy_store
        self._headers: OrderedDict[UUID, Header] = OrderedDict()

    def for_command(self, pending: list[Any], ticket: Ticket,
                    emitted: list[Stream.Event]) -> list[Any]:
        """The notification records a command's events trigger (to save with them);
        `pending`: what the unit is saving so far (the ticket may be created there)."""
        policy = self.policy_store.policy_of(ticket)
        if not triggers_any(policy, (event.type_name for event in emitted)):
            return []
        header = self.header(ticket, pending)
        documents = on_command(policy, header, ticket, [e.envelope() for e in emitted])
        return _records(documents)

    def next_update(self, ticket: Ticket, pending: list[Any]) -> UpdateDue | None:
        """The ticket's earliest regular update not recorded yet (in the store or in
        `pending`), or None."""
        policy = self.policy_store.policy_of(ticket)
        if Status(ticket.status) not in OPEN or not any(
                rule.every and rule.while_level == ticket.level
                for rule in policy.notifications.rules.values()):
            return None  # the common case: no store read, no calendar walk
        header = self.header(ticket, pending)
        for due in updates_due(ticket, policy, header):
            if not self._recorded(header, due, policy.notifications.rules[due.rule].audience,
                                  pending):
                return due
        return None

    def update(self, ticket: Ticket, due: UpdateDue, pending: list[Any]) -> list[Any]:
        """The notification records of a regular update (to save)."""
        policy = self.policy_store.policy_of(ticket)
        return _records(on_update(policy, self.header(ticket, pending), ticket, due))

    def header(self, ticket: Ticket, pending: list[Any]) -> Header:
        """What the ticket's creation said: from the unit if it is created there, else
        its first stored event (remembered: it never changes)."""
        if (header := self._headers.get(ticket.id)) is not None:
            return header
        for event in pending:
            if isinstance(event, Ticket.TicketCreated) and event.originator_id == ticket.id:
                return Header.of(event.envelope())
        first = self.event_log.recorder.select_events(ticket.id, limit=1)[0]
        header = Header.of(self.event_log.envelope_of(first))
        self._headers[ticket.id] = header
        if len(self._headers) > HEADERS_REMEMBERED:
            self._headers.popitem(last=False)
        return header

    def _recorded(self, header: Header, due: UpdateDue, audience: Iterable[str],
                  pending: list[Any]) -> bool:
        """Whether the update is recorded: any of its notifications is (they are
        recorded together)."""
        ids = {notification_id(header.tenant, header.ticket_id, f"at:{utc_iso(due.at)}",
                               due.rule, who) for who in audience}
        if any(isinstance(e, Notification.Recorded) and e.originator_id in ids
               for e in pending):
            return True
        return any(self.event_log.recorded(uuid) for uuid in ids)


def _records(documents: list[Document]) -> list[Any]:
    return [event for document in documents
            for event in Notification.record(document).collect_events()]


def recorded(event_log: EventLog, tenant: str | None = None,
             ticket_id: str | None = None) -> Iterator[Document]:
    """The notifications in the store, in recording order (of a tenant, a ticket)."""
    for record in event_log.records(topics=[NOTIFICATION_TOPIC]):
        document: Document = event_log.decode(record)["document"]
        if tenant in (None, document["tenant"]) and ticket_id in (None, document["ticket_id"]):
            yield document


def replayed(event_log: EventLog, policy_store: PolicyStore, tenant: str, ticket_id: str,
             until: datetime) -> list[Document]:
    """The notifications the ticket's history gives up to `until`, folded again under
    the policy version it was created under."""
    envelopes = event_log.ticket_events(ticket_id, tenant)
    if not envelopes:
        return []
    ref = envelopes[0]["data"]["policy"]
    policy = policy_store.policy_version(ref["id"], ref["version"], ref["hash"])
    return replay(policy, envelopes, until)
