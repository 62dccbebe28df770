"""A store for the console's tests, filled through the engine: two tenants, tickets in
several states (one with a pause, a resolution and a survey answer, one with hostile
text, one for an agent to act on, one to tamper with), enough tickets to page, keys.

Every instant is T0-relative and the engine's clock is frozen at CLOCK, so nothing
depends on the day the tests run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.clock import SystemClock
from ticketflow.keys import Keys
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings

PP, GB = "personalysispro", "growgrebuddy"
CLOCK = SystemClock.frozen(T0 + timedelta(days=20))
#: Ticket text a sender controls, written to run if a page ever read it as markup.
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
PAGED = 55  # tickets B-001 … that make the list longer than a page


@dataclass
class ConsoleStore:
    url: str
    app: TicketingApp
    engine: Engine
    keys: Keys
    agent_secret: str
    manager_secret: str
    other_tenant_secret: str


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def fill(app: TicketingApp) -> None:
    n = 0

    def send(tenant: str, kind: str, ticket: str, hours: float, role: str,
             payload: dict[str, object], actor: str = "actor-1") -> None:
        nonlocal n
        n += 1
        outcome = app.apply(command_line(f"m-{n}", kind, ticket, _at(hours), role, payload,
                                         tenant=tenant, actor=actor))
        assert outcome.status == "accepted", outcome

    # T-1: acknowledged, worked, paused for the customer overnight, resolved, rated.
    send(PP, "create_ticket", "T-1", 0, "customer", create_payload(PP, subject="Exports fail"))
    send(PP, "acknowledge", "T-1", 1, "agent", {}, actor="agent-ann")
    send(PP, "start_work", "T-1", 1.5, "agent", {}, actor="agent-ann")
    send(PP, "request_user_input", "T-1", 2, "agent", {"question": "Which export?"},
         actor="agent-ann")
    send(PP, "receive_user_input", "T-1", 20, "customer", {"note": "The CSV one"})
    send(PP, "resolve", "T-1", 22, "agent", {"resolution": "Raised the timeout"},
         actor="agent-ann")
    send(PP, "record_satisfaction", "T-1", 23, "customer", {"score": 5, "nps": 9})
    # T-2: just created, for an agent to act on.
    send(PP, "create_ticket", "T-2", 3, "customer",
         create_payload(PP, priority="low", plan="enterprise"))
    # T-3: hostile text in every free-text field a sender controls.
    send(PP, "create_ticket", "T-3", 4, "customer",
         create_payload(PP, subject=HOSTILE, description=HOSTILE))
    send(PP, "add_comment", "T-3", 5, "customer", {"body": HOSTILE})
    # T-4: to be tampered with by a test.
    send(PP, "create_ticket", "T-4", 6, "customer", create_payload(PP))
    send(PP, "add_comment", "T-4", 7, "customer", {"body": "original words"})
    # T-5: in progress, for the keyboard-only test to comment on.
    send(PP, "create_ticket", "T-5", 8, "customer", create_payload(PP))
    send(PP, "acknowledge", "T-5", 9, "agent", {}, actor="agent-ann")
    send(PP, "start_work", "T-5", 9.5, "agent", {}, actor="agent-ann")
    for i in range(1, PAGED + 1):
        send(PP, "create_ticket", f"B-{i:03}", 48 + i, "customer",
             create_payload(PP, priority="medium" if i % 2 else "critical"))
    # growgrebuddy: its own T-1, and a ticket only it has.
    send(GB, "create_ticket", "T-1", 0, "customer", create_payload(GB))
    send(GB, "create_ticket", "G-9", 1, "customer", create_payload(GB))
    # one dead letter each: a command for a ticket that does not exist
    for tenant in (PP, GB):
        refused = app.apply(command_line(f"lost-{tenant}", "acknowledge", "T-404", _at(30),
                                         "agent", {}, tenant=tenant))
        assert refused.status == "rejected", refused


def console_store(directory: Path) -> ConsoleStore:
    url = f"sqlite:///{directory / 'console.db'}"
    app = build_app(Settings(db=url), clock=CLOCK)
    fill(app)
    engine = engine_for(url)
    keys = Keys(engine, CLOCK)
    _, agent = keys.create(PP, ["agent"], actor="agent-ann", name="Ann, agent")
    _, manager = keys.create(PP, ["manager"], name="auditor")
    _, other = keys.create(GB, ["agent"], name="growgrebuddy agent")
    return ConsoleStore(url, app, engine, keys, agent, manager, other)
