"""The application service: one inbound message in, one outcome out.

apply(raw) = parse → load (or create) the stream → run the command → save its events
together with the message's receipt in one transaction. A lost optimistic-concurrency
race is retried from a fresh load; a collision with an existing receipt means the
message was seen before and is answered `duplicate`. Rejections are saved as receipts
with the original bytes (the embedded default's dead letters).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    Recording,
)

from ticketflow import logs, metrics
from ticketflow.clock import DEFAULT_MAX_SKEW, Clock
from ticketflow.domain.accounts import Account
from ticketflow.domain.articles import Article
from ticketflow.domain.audit_log import MerkleLog, labelled
from ticketflow.domain.commands import COMMANDS, CommandType
from ticketflow.domain.errors import (
    AlreadyExists,
    AmbiguousId,
    Code,
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    InvalidMessage,
    NotFound,
    PolicyViolation,
    Rejected,
    Unauthenticated,
)
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.notifications import UpdateDue
from ticketflow.domain.policy import Policy
from ticketflow.domain.receipt import (
    Oversized,
    Receipt,
    body_digest,
    digest_key,
)
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.sla import SlaError
from ticketflow.domain.store_format import STORE_FORMAT_ID, StoreFormat
from ticketflow.domain.streams import Context, Stream
from ticketflow.domain.ticket import Ticket
from ticketflow.domain.timers import SYSTEM_ACTOR, TIMER_ID_PREFIX, Due, due_commands, fire_at
from ticketflow.log_tree import LOG_APPEND, LogAppend
from ticketflow.notifications import Notifier
from ticketflow.schemas.commands import (
    MAX_MESSAGE_BYTES,
    CommandBase,
    message_bytes,
    parse_command,
    parse_document,
    peek_identity,
)
from ticketflow.store import APP_ENV, APP_NAME, ReadStore
from ticketflow.unit_of_work import StreamCache, Unit

log = logging.getLogger(__name__)

#: What a creation command starts, by the kind of stream its entry names.
STARTS: dict[str, Callable[..., Stream]] = {
    Ticket.KIND: Ticket.create, SelfServiceSession.KIND: SelfServiceSession.create,
    Article.KIND: Article.create, Account.KIND: Account.create,
}
MAX_ATTEMPTS = 10
DUES_REMEMBERED = 20_000
#: First retry waits up to this long; each later one up to twice as long (full jitter).
BACKOFF_SECONDS = 0.002
MAX_BACKOFF_SECONDS = 0.05
#: How long one message keeps retrying lost concurrency races before answering conflict.
RACE_BUDGET_SECONDS = 10.0
#: Rejections kept under the message's digest: they do not use up its id.
KEPT_BY_DIGEST = frozenset({Code.INVALID_MESSAGE, Code.IDEMPOTENCY_MISMATCH})

class Bounds(Protocol):
    """Who sent a message, as far as it limits what the message may say: a key
    (`ticketflow.keys.Key`), or a sender that could not be authenticated
    (`ticketflow.keys.Refused`). No bounds (None) is the trusted operator."""

    @property
    def bound_tenant(self) -> str | None:
        """The tenant a rejection of the sender's message is kept under."""

    def refusal(self) -> Unauthenticated | None:
        """Why the sender is refused before its message is read (not authenticated)."""

    def admit(self, command: CommandBase) -> None:
        """Raise Forbidden unless the sender may send this command."""


@dataclass(frozen=True)
class Outcome:
    """What `ticketflow apply` prints for one input line (SPEC §6)."""

    message_id: str | None
    status: str  # accepted | duplicate | rejected
    events: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None
    ticket_id: str | None = None
    #: (tenant, receipt key, body digest) of the receipt this outcome recorded
    claim: tuple[str | None, str, str | None] | None = field(default=None, compare=False,
                                                             repr=False)
    #: the ids of the notifications it recorded (a regular update records no event)
    notifications: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message_id": self.message_id, "status": self.status,
                               "events": self.events}
        if self.ticket_id:
            out["ticket_id"] = self.ticket_id
        if self.error:
            out["error"] = self.error
        if self.notifications:
            out["notifications"] = self.notifications
        return out


class TicketingApp(ReadStore):
    """The write service: applies commands and fires what is due, on the store it opens
    (tickets, self-service sessions, receipts, policy versions)."""

    name = APP_NAME  # eventsourcing names tables and settings after it: the same store
    env = APP_ENV
    snapshotting_intervals = {Ticket: 100}
    #: Whether the audit log is known to have its first entry (then it always has).
    _log_started = False
    #: Whether its stored subtree roots are known to be made (then they always are).
    _log_rooted = False

    def __init__(
        self, policies: dict[str, Policy], env: dict[str, str] | None = None,
        clock: Clock | None = None, max_skew: timedelta = DEFAULT_MAX_SKEW,
    ) -> None:
        super().__init__(policies, env, clock, legacy_ids=False)
        self.policies = policies
        self.max_skew = max_skew
        self._streams = StreamCache()
        self._dues: OrderedDict[UUID, tuple[tuple[Any, ...], list[Due]]] = OrderedDict()
        #: The store holds streams of the release before ids were scoped by tenant.
        self.legacy_ids = self.event_log.legacy_ids = self._open_store_format()
        self.notifier = Notifier(self.event_log, self.policy_store)

    # -- commands --------------------------------------------------------------------

    def apply(self, raw: bytes | str | Oversized, bounds: Bounds | None = None) -> Outcome:
        """Apply one inbound message (bytes as received) and record its outcome;
        `bounds`: its sender's key, which the command must stay inside (SPEC §8)."""
        return self._apply_alone(_as_bytes(raw), bounds=bounds)

    def apply_batch(
        self, raws: Sequence[bytes | str | Oversized],
        bounds: Bounds | Sequence[Bounds | None] | None = None,
    ) -> list[Outcome]:
        """Apply messages in order, as `apply` would one by one, saving them all in
        one transaction. If that save collides (a message or a ticket another process
        recorded meanwhile), the batch is applied again one message at a time.
        `bounds`: one sender's for all, or each message's own (aligned with `raws`)."""
        messages = [_as_bytes(raw) for raw in raws]
        each = (list(bounds) if isinstance(bounds, Sequence)
                else [bounds] * len(messages))
        if len(each) != len(messages):
            raise ValueError(f"{len(each)} bounds for {len(messages)} messages")
        if len(messages) > 1:
            unit = Unit()
            outcomes = [self._attempt(unit, raw, bounds=sender)
                        for raw, sender in zip(messages, each, strict=True)]
            if self._commit(unit):
                return outcomes
            metrics.CONFLICTS.labels("batch_fallback").inc()
            logs.event(log, "batch_collided", size=len(messages),
                       note="re-applying one message at a time")
        return [self._apply_alone(raw, bounds=sender)
                for raw, sender in zip(messages, each, strict=True)]

    def fire_due(
        self, ticket_id: str, *, before: datetime | None = None, until: datetime | None = None,
        limit: int | None = None, tenant: str | None = None,
    ) -> list[Outcome]:
        """Send the ticket's due time-driven commands, earliest first: those due
        strictly before `before`, or at or before `until` (at most `limit`). Nothing
        due after the engine's clock fires: no event is recorded before it happened."""
        now = self.clock()
        until = now if until is None else min(until, now)
        fired: list[Outcome] = []
        while limit is None or len(fired) < limit:
            try:
                ticket = self.load_ticket(ticket_id, tenant=tenant)
            except (NotFound, AmbiguousId):
                break
            due = self._first_due(ticket)
            if due is None or not _in_window(due.at, before, until):
                break
            if isinstance(due, UpdateDue):
                outcome = self._fire_update(ticket, due)
            else:
                command, raw = _timer_command(due, ticket)
                outcome = self._apply_alone(raw, command, prefire=False)
            fired.append(outcome)
            if outcome.status != "accepted":
                break  # another timer got there first, or a bug: never loop on it
        return fired

    def next_due_at(self, ticket_id: str, tenant: str | None = None) -> datetime | None:
        try:
            due = self._first_due(self.load_ticket(ticket_id, tenant=tenant))
        except (NotFound, AmbiguousId):
            return None
        return None if due is None else due.at

    def _first_due(self, ticket: Ticket, pending: list[Any] | None = None
                   ) -> Due | UpdateDue | None:
        """The ticket's earliest time-driven command, or regular update (SPEC §10) not
        recorded yet (also not in `pending`, what a unit is saving); at the same
        instant, the command first."""
        dues = self._dues_of(ticket)
        first = dues[0] if dues else None
        update = self.notifier.next_update(ticket, pending or [])
        return update if update is not None and (first is None or update.at < first.at) \
            else first

    def _fire_update(self, ticket: Ticket, due: UpdateDue) -> Outcome:
        """Record a regular update's notifications in a transaction of their own;
        another timer that recorded them first makes it a duplicate."""
        unit = Unit()
        unit.events.extend(self.notifier.update(ticket, due, []))
        ids = [str(event.originator_id) for event in unit.events]
        message_id = Due(due.at, f"update:{due.rule}", "", {}).message_id(ticket.ticket_id)
        if not self._commit(unit):
            return Outcome(message_id, "duplicate", ticket_id=ticket.ticket_id)
        return Outcome(message_id, "accepted", ticket_id=ticket.ticket_id, notifications=ids)

    def _dues_of(self, ticket: Ticket) -> list[Due]:
        """`due_commands` of the ticket, remembered while nothing they depend on changes:
        its SLA facts, status, level and priority (a comment or an assignment changes
        none of them, so the SLA clocks are not evaluated again for it)."""
        key = (len(ticket.sla_facts), ticket.status, ticket.level, ticket.priority)
        memo = self._dues.get(ticket.id)
        if memo is None or memo[0] != key:
            memo = (key, due_commands(ticket, self.policy_store.policy_of(ticket)))
            self._dues[ticket.id] = memo
            if len(self._dues) > DUES_REMEMBERED:
                self._dues.popitem(last=False)
        return memo[1]

    def _apply_alone(
        self, raw: Message, command: CommandBase | None = None, *, prefire: bool = True,
        bounds: Bounds | None = None,
    ) -> Outcome:
        """One message in a transaction of its own. A lost optimistic-concurrency race
        is retried from fresh state (for up to `RACE_BUDGET_SECONDS`, backing off); a
        message whose id its tenant used before is answered `duplicate` (same body) or
        rejected `idempotency_mismatch` (another body). A message that keeps losing is
        answered `conflict` *without* recording it: nothing happened, so the same
        message may be sent again (the command consumer does so itself)."""
        deadline = time.monotonic() + RACE_BUDGET_SECONDS
        attempt = 0
        while True:
            unit = Unit()
            outcome = self._attempt(unit, raw, command, prefire=prefire, bounds=bounds)
            if self._commit(unit):
                return outcome
            if outcome.claim is not None:
                tenant, key, digest = outcome.claim
                seen = self.event_log.receipt(tenant, key)
                if seen is not None:
                    reuse = Unit()
                    answer = self._answer_reuse_in(reuse, raw, _identity_of(outcome, seen),
                                                   seen, digest)
                    self._commit(reuse)  # a collision: that dead letter is kept already
                    return answer
            if time.monotonic() > deadline:
                break
            attempt += 1
            metrics.CONFLICTS.labels("race_retry").inc()
            logs.event(log, "race_lost", logging.DEBUG if attempt > 1 else logging.INFO,
                       message_id=outcome.message_id, ticket=outcome.ticket_id, attempt=attempt)
            time.sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt)))
        logs.event(log, "race_given_up", logging.WARNING, message_id=outcome.message_id,
                   ticket=outcome.ticket_id, attempts=attempt + 1)
        conflict = Conflict(f"still losing to concurrent writers after {attempt + 1} tries in"
                            f" {RACE_BUDGET_SECONDS:.0f} s; nothing was recorded: send it again")
        return Outcome(outcome.message_id, "rejected", error=conflict.as_dict(),
                       ticket_id=outcome.ticket_id)

    def _answer_reuse_in(self, unit: Unit, raw: Message, identity: dict[str, Any],
                         seen: Receipt, digest: str | None) -> Outcome:
        """A message id its tenant used before: the same body is a duplicate; another
        body is kept as a dead letter (by its digest) and the first outcome stands. A
        receipt of the release before has no body digest: its id's reuse is a duplicate."""
        if digest is None or seen.body_sha256 in (None, digest):
            return Outcome(identity.get("message_id"), "duplicate",
                           ticket_id=identity.get("ticket_id"))
        return self._reject_in(unit, raw, _mismatch(seen), identity, by_digest=True)

    def _attempt(
        self, unit: Unit, raw: Message, command: CommandBase | None = None, *,
        prefire: bool = True, bounds: Bounds | None = None,
    ) -> Outcome:
        """Run one message into the unit (nothing is saved yet): first the ticket's
        time-driven commands that fell due before it (so a late or absent timer
        process never changes history), then the message itself. A message from a
        bounded sender that is refused before it is read is kept under the sender's
        tenant, whatever tenant it names: it costs no other tenant anything."""
        now = self.clock().astimezone(UTC)

        def sender(identity: dict[str, Any]) -> dict[str, Any]:
            return identity if bounds is None else {**identity, "tenant": bounds.bound_tenant}

        if bounds is not None and (refusal := bounds.refusal()) is not None:
            identity = peek_identity(raw.head if isinstance(raw, Oversized) else raw)
            return self._reject_in(unit, raw, refusal, sender(identity), by_digest=True)
        if isinstance(raw, Oversized):
            return self._reject_in(unit, raw, InvalidMessage(
                f"message is {raw.length} bytes; the limit is {MAX_MESSAGE_BYTES}"),
                sender(peek_identity(raw.head)), by_digest=True)
        if command is None:  # from outside: check what only the engine may say
            try:
                command = parse_command(raw)
                if bounds is not None:
                    bounds.admit(command)
                self._admit(command, now)
            except InvalidMessage as rejection:
                return self._reject_in(unit, raw, rejection, sender(peek_identity(raw)),
                                       by_digest=True)
            except Forbidden as rejection:
                identity = _identity(command) if command else peek_identity(raw)
                return self._reject_in(unit, raw, rejection, sender(identity),
                                       by_digest=True)
        at = min(command.occurred_at.astimezone(UTC), now)
        claim = (command.tenant, command.message_id, body_digest(raw))
        if claim[:2] in unit.keys:
            seen_digest = unit.keys[claim[:2]]
            if seen_digest == claim[2]:
                return Outcome(command.message_id, "duplicate", ticket_id=command.stream_id)
            return self._reject_in(unit, raw, IdempotencyMismatch(
                f"message id {command.message_id} was used for another body earlier in"
                " this batch; the first outcome stands"), _identity(command), by_digest=True)
        if self.legacy_ids and (seen := self.event_log.legacy_receipt(*claim[:2])) is not None:
            return self._answer_reuse_in(unit, raw, _identity(command), seen, claim[2])
        try:
            if prefire and not COMMANDS[command.type].creates and command.ticket_id:
                self._fire_due_in(unit, command.tenant, command.ticket_id, before=at, now=now)
            return self._run_in(unit, command, raw, claim, at=at, now=now)
        except SlaError as error:  # its policy version cannot serve this ticket
            return self._reject_in(unit, raw, PolicyViolation(str(error)), _identity(command),
                                   by_digest=False)

    def _admit(self, command: CommandBase, now: datetime) -> None:
        """What a message from outside may not say: a tenant without a policy, an
        instant further ahead of the engine's clock than the allowed skew, or the
        timer's own actor or message ids (SPEC §5, §8)."""
        self.policy_store.tenant_policy(command.tenant)
        if command.occurred_at - now > self.max_skew:  # (now + skew may pass year 9999)
            raise InvalidMessage(
                f"occurred_at {command.occurred_at.isoformat()} is more than"
                f" {_minutes(self.max_skew)} ahead of the engine's clock ({now.isoformat()});"
                " send it when it has happened, or fix the sender's clock")
        if command.message_id.startswith(TIMER_ID_PREFIX) or command.actor.id == SYSTEM_ACTOR:
            raise Forbidden(f"message ids starting {TIMER_ID_PREFIX!r} and the actor"
                            f" {SYSTEM_ACTOR!r} are the engine's own timer's")

    def _fire_due_in(self, unit: Unit, tenant: str, ticket_id: str, *, before: datetime,
                     now: datetime) -> None:
        """Fire the ticket's commands due strictly before `before` into the unit."""
        while True:
            try:
                ticket: Ticket = self._checkout(unit, "ticket", tenant, ticket_id)
            except NotFound:
                return
            due = self._first_due(ticket, unit.events)
            if due is None or not due.at < before:
                return
            if isinstance(due, UpdateDue):
                unit.events.extend(self.notifier.update(ticket, due, unit.events))
                continue
            command, raw = _timer_command(due, ticket)
            if (tenant, command.message_id) in unit.keys:
                return  # never loop on a timer command
            claim = (tenant, command.message_id, body_digest(raw))
            at = command.occurred_at.astimezone(UTC)
            if self._run_in(unit, command, raw, claim, at=at, now=now).status != "accepted":
                return

    def _run_in(self, unit: Unit, command: CommandBase, raw: bytes,
                claim: tuple[str, str, str], *, at: datetime, now: datetime) -> Outcome:
        try:
            emitted = self._handle(unit, command, self._context(command, at, now))
        except Rejected as rejection:
            return self._reject_in(unit, raw, rejection, _identity(command),
                                   by_digest=rejection.code in KEPT_BY_DIGEST)
        stream = unit.streams.get(emitted[0].originator_id) if emitted else None
        if isinstance(stream, Ticket):  # and what its events tell whom (SPEC §10)
            unit.events.extend(self.notifier.for_command(unit.events, stream, emitted))
        unit.record(Receipt.accepted(command.message_id, command.tenant, command.stream_id,
                                     [(e.type_name, e.originator_version)
                                      for e in emitted], now, claim[2]))
        unit.keys[claim[:2]] = claim[2]
        return Outcome(command.message_id, "accepted", [e.type_name for e in emitted],
                       ticket_id=command.stream_id, claim=claim)

    def _handle(self, unit: Unit, command: CommandBase, ctx: Context) -> list[Any]:
        """Run the command on its stream; returns its events (also queued in the unit)."""
        policy = self.policy_store.tenant_policy(command.tenant)
        entry = COMMANDS[command.type]  # the command type: its registry entry
        stream: Stream
        done = 0  # events the stream already had pending in this unit
        if entry.creates or (entry.opens and not self._exists(unit, entry.stream,
                                                               command.tenant, command.stream_id)):
            self._must_not_exist(unit, entry.stream, command.tenant, command.stream_id)
            stream = STARTS[entry.stream](ctx, policy, command.stream_id, command.payload)
            unit.streams[stream.id] = stream
            if isinstance(stream, Ticket):
                self._publish_policy(unit, policy)
        else:
            ticket: Ticket = self._checkout(unit, entry.stream, command.tenant, command.stream_id)
            done = len(ticket.pending_events)
            if isinstance(ticket, Ticket):
                ctx = self._as_account_manager(unit, entry, ctx, ticket)
                if entry.judged_by == "recorded":
                    policy = self.policy_store.policy_of(ticket)
            ticket.handle(entry, ctx, policy, command.payload)
            stream = ticket
        emitted = list(stream.pending_events[done:])
        unit.events.extend(emitted)
        return emitted

    def _as_account_manager(self, unit: Unit, entry: CommandType[Any], ctx: Context,
                            ticket: Ticket) -> Context:
        """The context a command runs in: an agent who is the recorded manager of the
        ticket's account acts as `manager` for a command a manager may send and an
        agent may not (`review_ticket`). Decided from the store alone (the account's
        stream of the ticket's tenant, as of this unit), never from what the message
        claims; anyone else, and any other command, keeps the role it sent."""
        if ctx.role is not Role.AGENT or Role.MANAGER not in entry.roles \
                or Role.AGENT in entry.roles:
            return ctx
        account_id = self.event_log.account_of(ticket.id)
        try:
            account: Account = self._checkout(unit, Account.KIND, ctx.tenant, account_id)
        except NotFound:
            return ctx
        if account.manager_id is None or account.manager_id != ctx.actor_id:
            return ctx
        return replace(ctx, role=Role.MANAGER, via="account_manager")

    def _exists(self, unit: Unit, kind: str, tenant: str, stream_id: str) -> bool:
        try:
            self._checkout(unit, kind, tenant, stream_id)
        except NotFound:
            return False
        return True

    def _checkout(self, unit: Unit, kind: str, tenant: str, stream_id: str) -> Any:
        """The unit's copy of a tenant's stream: cached, or loaded from the store.
        Another tenant's stream under the same id is not there for this tenant."""
        for uuid in self.event_log.stream_uuids(kind, tenant, stream_id):
            stream = unit.streams.get(uuid) or self._streams.take(uuid)
            if stream is None:
                try:
                    stream = self.repository.get(uuid)
                except AggregateNotFoundError:
                    continue
            if stream.tenant != tenant:  # an unscoped stream of another tenant
                self._streams.give_back([stream])
                continue
            unit.streams[uuid] = stream
            return stream
        raise NotFound(f"{kind} {stream_id} not found")

    def _commit(self, unit: Unit) -> bool:
        """Save the unit in one transaction, its events in the order the commands
        produced them; False if it collided with the store."""
        processing = ProcessingEvent[UUID]()
        processing.events.extend(unit.events)
        for stream in unit.streams.values():
            stream.collect_events()  # already queued, in order, in unit.events
            processing.aggregates[stream.id] = stream
        try:
            recordings = self._record(processing)
        except IntegrityError:
            return False  # its streams stay out of the cache: reloaded next time
        self._take_snapshots(processing)
        self._notify(recordings)
        self._streams.give_back(unit.streams.values())
        return True

    def _record(self, processing: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Every save (`_commit`, and eventsourcing's own `save`) records its ticket and
        session events with the audit log's entry for them, after them, in the same
        transaction (SPEC §13). The log's first entry has one fixed id: on PostgreSQL it
        is written one process at a time (`first_save`), so concurrent first writers find
        it made instead of colliding (which PostgreSQL logs as an ERROR)."""
        if self._log_started or not any(isinstance(e, Stream.Event) for e in processing.events):
            return self._record_logged(processing)
        with self.first_save():
            return self._record_logged(processing)

    def _record_logged(self, processing: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        logged = self._log_entry(processing.events)
        if logged is not None:
            processing.events.append(logged[0])
            processing.saved_kwargs[LOG_APPEND] = logged[1]  # the recorder stores its roots
        recordings = super()._record(processing)
        if logged is not None:
            self._log_started = self._log_rooted = True
        return recordings

    def _log_entry(self, events: list[Any]) -> tuple[MerkleLog.Appended, LogAppend | None] | None:
        """The audit log's entry for the ticket and session events of a save (SPEC §13),
        and the leaves whose subtree roots the save stores (ticketflow/log_tree.py):
        the log is the entries in recording order, so no writer waits for another. The
        entry that starts the log (one fixed id: two writers cannot both start it) also
        holds every event a store from before the log already had (docs/decisions.md)."""
        streams = [(n, event) for n, event in enumerate(events) if isinstance(event, Stream.Event)]
        if not streams:
            return None
        saved = [(n, event.leaf(), labelled(event.tenant, event.ticket_id,
                                            event.originator_version))
                 for n, event in streams]
        genesis = not self._log_started and not self.audit_log.started()
        self._log_started = not genesis
        first = streams[0][1]
        return self.audit_log.entry(saved, first.event_id, self.clock(), genesis=genesis,
                                    check_roots=not self._log_rooted, near=first.originator_id)

    def _context(self, command: CommandBase, at: datetime, now: datetime) -> Context:
        """Who, for which tenant, when: `at` is the command's instant, never later
        than `now`, the instant it is recorded (a sender's clock a little fast, within
        the allowed skew, is taken as now)."""
        return Context(
            message_id=command.message_id, tenant=command.tenant, actor_id=command.actor.id,
            role=Role(command.actor.role), occurred_at=at, recorded_at=now,
        )

    def _reject_in(
        self, unit: Unit, raw: Message, rejection: Rejected, identity: dict[str, Any], *,
        by_digest: bool,
    ) -> Outcome:
        """Keep a rejected message (original bytes, code, reason) as its receipt: under
        its tenant and id, or, for one that must not use up its id, under its digest."""
        message_id = identity.get("message_id")
        tenant = identity.get("tenant") if identity.get("tenant") in self.policies else None
        stream_id = (identity.get("ticket_id") or identity.get("session_id")
                     or identity.get("article_id") or identity.get("account_id"))
        by_digest = by_digest or tenant is None or not message_id
        key = _digest_key(raw) if by_digest else str(message_id)
        digest = None if by_digest or isinstance(raw, Oversized) else body_digest(raw)
        claim = (tenant, key, digest)
        if (tenant, key) in unit.keys:
            return Outcome(message_id, "duplicate", ticket_id=stream_id)
        unit.record(Receipt.rejected(key, raw, rejection.as_dict(), self.clock(),
                                     tenant, stream_id, message_id=message_id))
        unit.keys[(tenant, key)] = digest
        return Outcome(message_id, "rejected", error=rejection.as_dict(),
                       ticket_id=stream_id, claim=claim)

    def _must_not_exist(self, unit: Unit, kind: str, tenant: str, stream_id: str) -> None:
        for uuid in self.event_log.stream_uuids(kind, tenant, stream_id):
            if uuid in unit.streams or self.event_log.recorded(uuid, tenant):
                raise AlreadyExists(f"{kind} {stream_id} already exists")

    def _open_store_format(self) -> bool:
        """Whether the store holds streams of the release before ids were scoped by
        tenant (True: look for a tenant's stream under its old id too). A new store is
        marked as scoped from the start, so it never pays for the second look-up."""
        if self.event_log.legacy_ids_from_format() or self.event_log.recorded(STORE_FORMAT_ID):
            return self.event_log.legacy_ids_from_format()
        with self.first_save(), contextlib.suppress(IntegrityError):  # another marked it
            if not self.event_log.recorded(STORE_FORMAT_ID):
                self.save(StoreFormat.mark(self.clock()))
        return False

    # -- policies and loading ------------------------------------------------------------

    def _publish_policy(self, unit: Unit, policy: Policy) -> None:
        """Save a copy of the policy version the first time it is used, before the
        ticket, in a write of its own that concurrent first uses do not collide on."""
        self.policy_store.publish(policy)

    def load_ticket(self, ticket_id: str, as_of: datetime | None = None,
                    tenant: str | None = None) -> Ticket:
        """The ticket (as of an instant) of `tenant`, or of the one tenant using the id."""
        uuid = self.event_log.stream_uuid_of("ticket", ticket_id, tenant)
        try:
            if as_of is None:
                return self.repository.get(uuid)
            return self._ticket_as_of(uuid, ticket_id, as_of)
        except AggregateNotFoundError:
            raise NotFound(f"ticket {ticket_id} not found") from None

    def _ticket_as_of(self, uuid: UUID, ticket_id: str, as_of: datetime) -> Ticket:
        ticket: Any = None
        for event in self.events.get(uuid):
            if event.occurred_at > as_of:  # type: ignore[attr-defined]
                break
            ticket = event.mutate(ticket)  # type: ignore[attr-defined]
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} did not exist yet at {as_of.isoformat()}")
        return ticket


def _timer_command(due: Due, ticket: Ticket) -> tuple[CommandBase, bytes]:
    """The inbound command the timer sends for a due rule (parsed, and as its bytes)."""
    envelope = due.envelope(ticket, fire_at(due, ticket))
    return parse_document(envelope), json.dumps(envelope).encode("utf-8")


def _identity(command: CommandBase) -> dict[str, Any]:
    return {"message_id": command.message_id, "tenant": command.tenant,
            "ticket_id": command.stream_id}


def _identity_of(outcome: Outcome, seen: Receipt) -> dict[str, Any]:
    return {"message_id": outcome.message_id, "tenant": seen.tenant,
            "ticket_id": outcome.ticket_id}


def _mismatch(seen: Receipt) -> IdempotencyMismatch:
    return IdempotencyMismatch(
        f"message id {seen.message_id} was used for another body (recorded"
        f" {seen.recorded_at.isoformat()}, {seen.status}); the first outcome stands:"
        " send a new command with a new message id")


Message = bytes | Oversized


def _as_bytes(raw: bytes | str | Oversized) -> Message:
    """A message as received: text is taken as its UTF-8 bytes (a lone surrogate kept
    as such, to be refused as not UTF-8); an oversized one as what was kept of it."""
    return raw if isinstance(raw, Oversized) else message_bytes(raw)


def _digest_key(raw: Message) -> str:
    return "sha256:" + raw.sha256 if isinstance(raw, Oversized) else digest_key(raw)


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:g} minute{'s' if minutes != 1 else ''}"


def _in_window(at: datetime, before: datetime | None, until: datetime | None) -> bool:
    return (before is None or at < before) and (until is None or at <= until)
