"""Two tenants using the same ticket and session ids in one event store (SPEC §5), for
read-side tests written before the write side scopes ids by tenant.

`SharedIds.apply` sends a command of the *home* tenant to the store under test, and any
other tenant's to a scratch store of its own; the events that command recorded there
are copied into the store under test under a stream id of their own, as a write side
that scopes ids by tenant records them. Their envelopes are the scratch store's, as
recorded (event ids and hashes included), so readers of the log see two tenants' "T-1"
exactly as they will.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.persistence import StoredEvent

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import Outcome, TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.domain.streams import stream_uuid
from ticketflow.settings import Settings

#: The engine's clock in these tests: after every instant they use.
RECORDED_AT = T0 + timedelta(days=30)


def fixed_clock() -> datetime:
    return RECORDED_AT


class SharedIds:
    """The store under test (`app`, its commands those of `home`) and a scratch store
    for every other tenant's commands."""

    def __init__(self, app: TicketingApp, scratch_url: str, home: str) -> None:
        self.app, self.home = app, home
        self.scratch = build_app(Settings(db=scratch_url), clock=fixed_clock)
        self.copied: dict[UUID, int] = {}  # scratch stream → versions copied

    def apply(self, raw: bytes) -> Outcome:
        document = json.loads(raw)
        if document["tenant"] == self.home:
            return self.app.apply(raw)
        outcome = self.scratch.apply(raw)
        assert outcome.status == "accepted", outcome
        kind = "session" if document["type"] == "record_self_service" else "ticket"
        self._copy(stream_uuid(kind, str(outcome.ticket_id)), document["tenant"])
        return outcome

    def _copy(self, stream: UUID, tenant: str) -> None:
        """The stream's new events, into the store under test as the tenant's stream."""
        records = self.scratch.recorder.select_events(stream, gt=self.copied.get(stream, 0))
        self.app.recorder.insert_events([
            StoredEvent(uuid5(stream, tenant), r.originator_version, r.topic, r.state)
            for r in records])
        self.copied[stream] = records[-1].originator_version

    def close(self) -> None:
        self.scratch.close()


PP, GB = "personalysispro", "growgrebuddy"


def same_ids_story(shared: SharedIds) -> None:
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
        outcome = shared.apply(command_line(f"m-{n}", kind, "T-1", at(minutes), role, payload,
                                            tenant=tenant))
        assert outcome.status == "accepted", outcome
    for tenant, outcome in ((PP, "solved"), (GB, "ticket_created")):
        document = json.loads(command_line(
            f"ss-{tenant}", "record_self_service", "x", at(10), "customer",
            {"articles_viewed": ["KB-1"], "outcome": outcome,
             "ticket_id": "T-1" if outcome == "ticket_created" else None}, tenant=tenant))
        document["session_id"] = "SS-1"
        del document["ticket_id"]
        assert shared.apply(json.dumps(document).encode()).status == "accepted"
