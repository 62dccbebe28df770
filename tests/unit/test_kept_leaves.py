"""An emitted event keeps its audit log leaf, made with its chain hash from one
serialisation (domain/streams.py `keep_leaf`): the leaf of its envelope, never stored
with the event nor compared, and made afresh for an event that was not emitted here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

from tests.support.builders import POLICIES, T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.domain.audit_log import event_leaf
from ticketflow.domain.streams import Stream
from ticketflow.domain.ticket import Ticket


def test_an_emitted_events_kept_leaf_is_its_envelopes_and_is_not_stored() -> None:
    app = TicketingApp(POLICIES, {"PERSISTENCE_MODULE": "eventsourcing.popo"},
                       clock=lambda: T0 + timedelta(hours=1))
    emitted: list[Any] = []
    log_entry = app._log_entry

    def seen(events: list[Any]) -> Any:
        emitted.extend(e for e in events if isinstance(e, Stream.Event))
        return log_entry(events)
    app._log_entry = seen  # type: ignore[method-assign]
    assert app.apply(command_line("m-1", "create_ticket", "T-1", T0, "customer",
                                  create_payload())).status == "accepted"
    assert app.apply(command_line("m-2", "add_comment", "T-1", T0 + timedelta(minutes=5),
                                  "customer", {"body": "more"})).status == "accepted"
    assert len(emitted) == 2
    for event in emitted:
        assert event._leaf == event_leaf(event.envelope())  # kept, and the envelope's
        stored = app.mapper.to_stored_event(event)
        assert b"_leaf" not in stored.state
        loaded = app.mapper.to_domain_event(stored)
        assert loaded == event  # not a field: equal without it
        assert not hasattr(loaded, "_leaf") and loaded.leaf() == event._leaf  # made afresh


def test_an_event_made_otherwise_makes_its_leaf_from_its_envelope() -> None:
    event = Ticket.CommentAdded(  # type: ignore[call-arg]
        originator_id=uuid4(), originator_version=2, timestamp=T0, event_id="e",
        tenant="acme", ticket_id="T-1", occurred_at=T0, actor={"id": "c", "role": "customer"},
        causation_id="m", data={"body": "x"}, hash="h")
    assert event.leaf() == event_leaf(event.envelope())
