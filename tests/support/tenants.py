"""Two tenants using the same ticket and session ids in one event store (SPEC §5):
ids are scoped by tenant, so their "T-1" and "SS-1" are two streams each."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp

#: The engine's clock in these tests: after every instant they use.
RECORDED_AT = T0 + timedelta(days=30)


def fixed_clock() -> datetime:
    return RECORDED_AT


PP, GB = "personalysispro", "growgrebuddy"


def same_ids_story(app: TicketingApp) -> None:
    """Both tenants' ticket T-1 and session SS-1, their commands interleaved.

    personalysispro's T-1 (professional/high) is acknowledged after 60 minutes,
    resolved after 120, linked to KB-7 and rated 5 (NPS 9); its SS-1 is solved.
    growgrebuddy's T-1 (standard/medium) is acknowledged after 30 minutes, resolved
    after 90, linked to KB-8 and rated 2 (NPS 3); its SS-1 ended in that ticket.
    """
    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    steps = [
        (PP, "create_ticket", 0, "customer", create_payload(PP)),
        (GB, "create_ticket", 0, "customer", create_payload(GB)),
        (GB, "acknowledge", 30, "agent", {}),
        (PP, "acknowledge", 60, "agent", {}),
        (GB, "resolve", 90, "agent", {"resolution": "cache cleared"}),
        (PP, "resolve", 120, "agent", {"resolution": "timeout raised"}),
        (PP, "link_article", 125, "agent", {"article_id": "KB-7"}),
        (GB, "link_article", 125, "agent", {"article_id": "KB-8"}),
        (GB, "record_satisfaction", 130, "customer", {"score": 2, "nps": 3}),
        (PP, "record_satisfaction", 140, "customer", {"score": 5, "nps": 9}),
    ]
    for n, (tenant, kind, minutes, role, payload) in enumerate(steps):
        outcome = app.apply(command_line(f"m-{n}", kind, "T-1", at(minutes), role, payload,
                                            tenant=tenant))
        assert outcome.status == "accepted", outcome
    for tenant, outcome in ((PP, "solved"), (GB, "ticket_created")):
        document = json.loads(command_line(
            f"ss-{tenant}", "record_self_service", "x", at(10), "customer",
            {"articles_viewed": ["KB-1"], "outcome": outcome,
             "ticket_id": "T-1" if outcome == "ticket_created" else None}, tenant=tenant))
        document["session_id"] = "SS-1"
        del document["ticket_id"]
        assert app.apply(json.dumps(document).encode()).status == "accepted"
