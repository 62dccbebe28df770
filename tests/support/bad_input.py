"""Valid commands to start from, and the checks every malformed message must pass:
rejected with a stable code, kept as a dead letter with its bytes and reason, and no
stream changed. Shared by the hand-written and the hypothesis tests."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from tests.support.builders import (
    PAYLOAD_OF,
    POLICIES,
    ROLE_OF,
    T0,
    command_line,
    create_payload,
)
from ticketflow.application import Outcome, TicketingApp
from ticketflow.domain.errors import Code
from ticketflow.domain.receipt import KEEP_BYTES, Receipt

STABLE_CODES = frozenset(code.value for code in Code)
#: The ticket every test starts from: created, acknowledged a minute later.
TICKET = "T-1"
LAST_EVENT_AT = T0 + timedelta(minutes=1)
#: Commands sent a little after the last event: no SLA clock or timer is due yet, so
#: nothing but the command itself could change the ticket.
SOON = LAST_EVENT_AT + timedelta(minutes=2)


def in_memory_app() -> TicketingApp:
    """The real application service on eventsourcing's in-memory recorder."""
    return TicketingApp(POLICIES, {"PERSISTENCE_MODULE": "eventsourcing.popo"})


def app_with_a_ticket() -> TicketingApp:
    app = in_memory_app()
    for raw in (command_line("m-1", "create_ticket", TICKET, T0, "customer", create_payload()),
                command_line("m-2", "acknowledge", TICKET, LAST_EVENT_AT, "agent", {})):
        assert app.apply(raw).status == "accepted"
    return app


def valid_command(type_: str = "add_comment", message_id: str = "m-ok") -> dict[str, Any]:
    """A command the ticket would accept (as a JSON document, to be broken)."""
    if type_ == "create_ticket":
        return json.loads(command_line(message_id, type_, "T-2", SOON, "customer",
                                       create_payload()))
    payload = dict(PAYLOAD_OF[type_])
    if type_ == "add_comment":
        payload["body"] = "Any news?"
    return json.loads(command_line(message_id, type_, TICKET, SOON, ROLE_OF[type_].value,
                                   payload))


def encoded(document: Any) -> bytes:
    """JSON with non-ASCII escaped, so a lone surrogate travels as a valid `\\udXXX`."""
    return json.dumps(document).encode("ascii")


def streams(app: TicketingApp) -> list[tuple[str, int, str]]:
    """Every event of every stream, by (stream, version, hash)."""
    return [(e["ticket_id"], e["version"], e["hash"])
            for e in map(app.event_log.envelope_of, app.event_log.stream_records())]


def kept_as(letter: Receipt, raw: bytes) -> bool:
    """Whether the dead letter keeps `raw`: whole, or (over KEEP_BYTES) its head, its
    length and its SHA-256."""
    if not letter.truncated:
        return letter.original_bytes() == raw
    return (letter.original_bytes() == raw[:KEEP_BYTES] and letter.raw_length == len(raw)
            and letter.raw_sha256 == hashlib.sha256(raw).hexdigest())


def reject_and_keep(app: TicketingApp, raw: bytes) -> Outcome:
    """Apply `raw`; check it was rejected with a stable code, kept with its original
    bytes and reason, and that no stream changed. Returns the outcome."""
    before = streams(app)
    outcome = app.apply(raw)
    assert outcome.status == "rejected", outcome
    assert outcome.error is not None and outcome.error["code"] in STABLE_CODES
    assert outcome.error["message"]
    letters = [r for r in app.event_log.rejected() if kept_as(r, raw)]
    assert len(letters) == 1 and letters[0].error == outcome.error
    assert streams(app) == before
    return outcome
