"""`ticketflow demo`'s account managers and quality reviews (issue 19), sent after the
workload so that its figures stay what they are.

PersonalysisPro's first enterprise accounts (by id) get a dedicated manager, dated the
day before the window. A seeded sample of the tickets resolved in the window is then
reviewed a few hours after its last event (when that is still in the window): a ticket
of an account with a manager by that manager, who sends as an agent and acts as the
account's manager; any other by the QA lead, a manager. Scores and rubric marks come
from a generator seeded by the demo's seed and the ticket, so a run is reproducible.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from ticketflow.application import TicketingApp

PP = "personalysispro"
MANAGERS = ("am-dana", "am-eli", "am-fay")
REVIEWER = "qa-lead"
#: One resolved ticket in this many is reviewed.
SAMPLE = 3
SCORES, SCORE_WEIGHTS = (1, 2, 3, 4, 5), (1, 2, 5, 8, 5)


def manager_commands(workload: list[dict[str, Any]],
                     start: datetime) -> list[dict[str, Any]]:
    """assign_account_manager for the first enterprise accounts the workload has."""
    accounts = sorted({c["payload"]["account_id"] for c in _creations(workload)
                       if c["tenant"] == PP and c["payload"]["plan"] == "enterprise"})
    at = (start - timedelta(days=1)).isoformat()
    return [{"message_id": f"demo-manager-{account_id}", "type": "assign_account_manager",
             "tenant": PP, "account_id": account_id, "occurred_at": at,
             "actor": {"id": "support-director", "role": "manager"},
             "payload": {"plan": "enterprise", "manager_id": manager}}
            for account_id, manager in zip(accounts, MANAGERS, strict=False)]


def review_commands(app: TicketingApp, workload: list[dict[str, Any]], seed: int,
                    as_of: datetime, managers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """review_ticket for a sample of the workload's tickets resolved or closed by
    `as_of`; `managers`: the assignments `manager_commands` made."""
    managed = {(c["tenant"], c["account_id"]): c["payload"]["manager_id"] for c in managers}
    commands = []
    for created in sorted(_creations(workload),
                          key=lambda c: (c["tenant"], c["ticket_id"]))[::SAMPLE]:
        tenant, ticket_id = created["tenant"], created["ticket_id"]
        ticket = app.load_ticket(ticket_id, tenant=tenant)
        rng = random.Random(f"{seed}:{tenant}:{ticket_id}")
        at = ticket.last_occurred_at + timedelta(hours=rng.randint(1, 48))
        if ticket.status not in ("resolved", "closed") or at >= as_of:
            continue
        manager = managed.get((tenant, created["payload"]["account_id"]))
        score = rng.choices(SCORES, weights=SCORE_WEIGHTS)[0]
        rubric = {item: rng.random() < 0.35 + 0.13 * score
                  for item in app.policies[tenant].quality.rubric}
        commands.append({
            "message_id": f"demo-review-{ticket_id}", "type": "review_ticket",
            "tenant": tenant, "ticket_id": ticket_id, "occurred_at": at.isoformat(),
            "actor": ({"id": manager, "role": "agent"} if manager
                      else {"id": REVIEWER, "role": "manager"}),
            "payload": {"score": score, "rubric": rubric}})
    return commands


def _creations(workload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in workload if c["type"] == "create_ticket"]
