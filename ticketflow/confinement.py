"""A caller confined to one tenant (`--tenant`, TICKETFLOW_TENANT) sends only that
tenant's commands.

`ticketflow apply` refuses a line naming another tenant before the engine sees it
(`forbidden`) and keeps it as a dead letter, like any other rejection, but:

- it is the caller's dead letter (its tenant), not the named tenant's: a confined
  caller cannot add letters to another tenant's list;
- it is known by the SHA-256 of its bytes, never by the message id it states, so it
  takes no tenant's message id (that tenant may still send it), and the same line
  refused twice is one letter;
- it is bounded as every dead letter is: its first 64 KiB, its length and SHA-256.
"""

from __future__ import annotations

from contextlib import suppress

from eventsourcing.persistence import IntegrityError

from ticketflow.application import Outcome, TicketingApp
from ticketflow.domain.errors import Forbidden
from ticketflow.domain.receipt import Oversized, Receipt, digest_key
from ticketflow.schemas.commands import peek_identity


def refused(app: TicketingApp, raw: bytes | Oversized, tenant: str | None) -> Outcome | None:
    """The outcome of a line the confined caller may not send (kept as its dead
    letter), or None for a line the engine should apply."""
    if tenant is None:
        return None
    named = peek_identity(raw.head if isinstance(raw, Oversized) else raw)
    if named.get("tenant") in (None, tenant):
        return None  # the engine's: its tenant, or unreadable (kept without a tenant)
    stream = named.get("ticket_id") or named.get("session_id")
    refusal = Forbidden(f"this caller is confined to tenant {tenant!r}; the command names"
                        f" {named['tenant']!r}")
    key = "sha256:" + raw.sha256 if isinstance(raw, Oversized) else digest_key(raw)
    letter = Receipt.rejected(key, raw, refusal.as_dict(), app.clock(), tenant, stream,
                              message_id=named.get("message_id"))
    with suppress(IntegrityError):  # the same line was refused before: it is kept once
        app.save(letter)
    return Outcome(named.get("message_id"), "rejected", error=refusal.as_dict(),
                   ticket_id=stream)
