"""Self-service sessions (SPEC §3): not tickets, but a stream of their own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ticketflow.domain.commands import RECORD_SELF_SERVICE, RecordSelfService
from ticketflow.domain.errors import InvalidMessage
from ticketflow.domain.policy import Policy
from ticketflow.domain.streams import Context, Stream


class SelfServiceSession(Stream):
    """A knowledge-base / widget session that ended solved or by creating a ticket."""

    KIND = "session"

    class SelfServiceRecorded(Stream.Created):
        pass

    def __init__(
        self, tenant: str, ticket_id: str, occurred_at: datetime, data: dict[str, Any],
        hash: str,
    ) -> None:
        self.tenant = tenant
        self.stream_id = ticket_id
        self.last_hash = hash
        self.last_occurred_at = occurred_at
        self.outcome: str = data["outcome"]

    @classmethod
    def create(cls, ctx: Context, policy: Policy, session_id: str,
               payload: RecordSelfService) -> SelfServiceSession:
        """The session a record_self_service command starts (it records no policy)."""
        RECORD_SELF_SERVICE.check_role(ctx.role)
        outcome, ticket_id = payload.outcome, payload.ticket_id
        if outcome == "ticket_created" and not ticket_id:
            raise InvalidMessage("outcome 'ticket_created' needs the created 'ticket_id'")
        if outcome == "solved" and ticket_id:
            raise InvalidMessage("a 'solved' session created no ticket; drop 'ticket_id'")
        data = {
            "session_id": session_id, "articles_viewed": list(payload.articles_viewed),
            "outcome": outcome, "ticket_id": ticket_id,
        }
        if payload.suggestions_shown:  # absent when none were shown, as before SPEC §11
            data["suggestions_shown"] = list(payload.suggestions_shown)
        return cls._start(cls.SelfServiceRecorded, session_id, ctx, data)
