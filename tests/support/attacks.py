"""One table of what a hostile or careless sender tries (issue #13), driven through each
door that takes raw bytes: `ticketflow apply` (tests/e2e/test_hostile_doors.py) and the
commands topic (tests/integration/test_kafka_bad_input.py). The service-level tests of
each item are tests/unit/test_hostile_senders.py; these show the doors keep them.

Every attack meets the same world (`GIVEN`: a ticket of each tenant) and the same
engine clock (`NOW`), is followed by the victim's next command (`Attack.then`), and
must leave: its stable code; one dead letter that keeps it, bounded (whole up to 64 KiB,
else the head with the length and SHA-256), in the sender's tenant or none, never the
victim's; every stream intact (`verify`); and no event but the victim's next command's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests.support.bad_input import kept_as
from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.domain.receipt import KEEP_BYTES, Receipt
from ticketflow.schemas.commands import MAX_MESSAGE_BYTES

PP, GB = "personalysispro", "growgrebuddy"
#: The victim: personalysispro's ticket. Every attack is keyed by it over Kafka (its
#: partition), so an attack that stalled the partition would stall the victim.
VICTIM = "T-1"
#: The engine's clock: an hour after the stories begin. T-1's first-response breach is
#: due at T0 + 3 h (FIRST_RESPONSE_DUE), so nothing is due while the attacks run.
NOW = T0 + timedelta(hours=1)
FIRST_RESPONSE_DUE = T0 + timedelta(hours=3)
TIMER_ID = f"timer:{VICTIM}:breach:first_response:{FIRST_RESPONSE_DUE.isoformat()}"
#: Between the oversized line and the broker's record limit (1 MB by default).
OVERSIZED = 300_000
assert KEEP_BYTES < MAX_MESSAGE_BYTES < OVERSIZED < 1_000_000


def create(message_id: str, ticket_id: str, tenant: str) -> bytes:
    return command_line(message_id, "create_ticket", ticket_id, T0, "customer",
                        create_payload(tenant), tenant=tenant)


def comment(message_id: str, ticket_id: str = VICTIM, tenant: str = PP,
            at: datetime = T0 + timedelta(minutes=30)) -> bytes:
    return command_line(message_id, "add_comment", ticket_id, at, "customer",
                        {"body": "any news?", "visibility": "public"}, tenant=tenant)


#: The world each attack meets: a ticket of each tenant.
GIVEN = [create("m-1", VICTIM, PP), create("g-1", "G-1", GB)]


@dataclass(frozen=True)
class Attack:
    name: str
    item: int  # the numbered item of issue #13
    sender: str  # the tenant the line names: its dead letter is that tenant's, or no one's
    line: bytes
    code: str  # the stable code it is refused with

    @property
    def then_id(self) -> str:
        return f"after-{self.name}"

    @property
    def then(self) -> bytes:
        """The victim's next command, sent after the attack: it must be accepted."""
        return comment(self.then_id)


def _lookalike(name: str, ticket_id: str) -> Attack:
    return Attack(name, 11, PP, create(f"m-{name}", ticket_id, PP), "invalid_message")


def _oversized() -> bytes:
    document = json.loads(comment("big", tenant=GB))
    head = json.dumps({**document, "pad": ""}).encode()
    return head[:-2] + b"x" * (OVERSIZED - len(head)) + b'"}'


ATTACKS = [
    Attack("timer-id", 1, GB, command_line(
        TIMER_ID, "record_sla_breach", VICTIM, T0 + timedelta(minutes=10), "system",
        {"clock": "first_response", "due_at": FIRST_RESPONSE_DUE.isoformat()}, tenant=GB),
        "forbidden"),
    Attack("timer-actor", 1, GB, command_line(
        "g-forged", "record_sla_breach", VICTIM, T0 + timedelta(minutes=10), "system",
        {"clock": "first_response", "due_at": FIRST_RESPONSE_DUE.isoformat()}, tenant=GB,
        actor="ticketflow-timer"), "forbidden"),
    # Garbage from tenant B under the id tenant A's next command uses (Attack.then_id).
    Attack("message-id", 2, GB, json.dumps(
        {"message_id": "after-message-id", "tenant": GB, "type": "add_comment"}).encode(),
        "invalid_message"),
    Attack("ticket-id", 3, GB, comment("g-2", VICTIM, GB), "not_found"),
    Attack("far-future", 4, PP, command_line(
        "m-2199", "resolve", VICTIM, datetime(2199, 12, 31, tzinfo=UTC), "customer",
        {"resolution": "x"}), "invalid_message"),
    Attack("same-id-other-body", 5, PP, command_line(
        "m-1", "create_ticket", VICTIM, T0, "customer", create_payload(subject="Changed")),
        "idempotency_mismatch"),
    Attack("oversized", 8, GB, _oversized(), "invalid_message"),
    _lookalike("zero-width", f"{VICTIM}\u200b"),
    _lookalike("bidi-override", f"\u202e{VICTIM}"),
    _lookalike("del", f"{VICTIM}\x7f"),
    _lookalike("trailing-space", f"{VICTIM} "),
    # A lookalike of the id the victim uses next (Attack.then_id).
    Attack("message-id-zero-width", 11, PP, comment("after-message-id-zero-width\u200b"),
           "invalid_message"),
]

History = list[tuple[str, str, int, str, str]]


def history(app: TicketingApp) -> History:
    """Every event of every stream in recording order: (tenant, stream, version,
    causation, hash)."""
    return [(e["tenant"], e["ticket_id"], e["version"], e["causation_id"], e["hash"])
            for e in map(app.event_log.envelope_of, app.event_log.stream_records())]


def only_the_victims_next_event(before: History, after: History, attack: Attack) -> bool:
    """Whether nothing changed but the victim's next command's one event."""
    victims = sum(1 for tenant, stream, *_ in before if (tenant, stream) == (PP, VICTIM))
    new = [event[:4] for event in after[len(before):]]
    return after[:len(before)] == before and new == [(PP, VICTIM, victims + 1,
                                                       attack.then_id)]


def dead_letter(app: TicketingApp, attack: Attack) -> Receipt:
    """The one dead letter keeping the attack, checked: its code, bounded, and the
    sender's tenant's (or no tenant's), never the victim's."""
    letters = [letter for letter in app.event_log.rejected() if kept_as(letter, attack.line)]
    assert len(letters) == 1, letters
    (letter,) = letters
    assert (letter.error or {}).get("code") == attack.code, letter.error
    assert len(letter.original_bytes()) <= KEEP_BYTES
    assert letter.truncated == (len(attack.line) > KEEP_BYTES)
    assert letter.tenant in (attack.sender, None)
    return letter
