"""The query layer: every read use case, for one scope.

The command line and the HTTP API (`ticketflow.http`) call the same methods. A `Scope` is
who is asking: the operator (every tenant) or one tenant. Tenant confinement is written
here once: a confined caller's ticket ids, message ids, dead letters, parked events and
reports are its tenant's, and another tenant's ticket is answered exactly like a
missing one (same code, same message).

Answers are plain data (dicts, lists, dataclasses) for a caller to print or serialise;
nothing here prints. The read models are caught up before they are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from ticketflow.bundles import make_bundle
from ticketflow.checkpoint_verification import LogFinding, audit, checkpoint
from ticketflow.checkpoints import Checkpoint
from ticketflow.domain.errors import NotFound
from ticketflow.domain.lifecycle import Status
from ticketflow.domain.policy import Policy
from ticketflow.domain.ticket import Ticket
from ticketflow.event_log import CommandOutcome, Store
from ticketflow.export import export_events
from ticketflow.projections.reports import (
    satisfaction_report,
    sla_report,
    times_report,
    volume_report,
)
from ticketflow.projections.runner import Projector
from ticketflow.projections.search import PAGE_SIZE, TicketFilter, TicketPage, search_tickets
from ticketflow.projections.timeline import DEFAULT_LIMIT, Page, timeline_page, version_at
from ticketflow.verification import verify_store

Progress = Callable[[int], None]
PolicyOf = Callable[[dict[str, Any]], Policy | None]


@dataclass(frozen=True)
class Scope:
    """Who is asking: one tenant (`tenant`), or the operator (None: every tenant)."""

    tenant: str | None = None

    def admits(self, tenant: str | None) -> bool:
        return self.tenant is None or tenant == self.tenant


@dataclass(frozen=True)
class Held:
    """Events of a ticket the read models hold back (see `ticketflow parked`)."""

    versions: list[int]


class ReadModels:
    """The read models of one store, caught up with it once, on first read."""

    def __init__(self, store: Store, engine: Engine,
                 catching_up: Callable[[Callable[[Progress], int]], int] | None = None,
                 projector: Projector | None = None) -> None:
        """`catching_up(run)`: how to run a catch-up (e.g. under a progress bar);
        `projector`: one already made (a long-running door makes its tables once, and
        a `ReadModels` per request, so each request catches up with the log)."""
        self.store, self.engine, self.catching_up = store, engine, catching_up
        self._projector = projector
        self._current = False

    @property
    def projector(self) -> Projector:
        """The projector (its tables made), without catching up."""
        if self._projector is None:
            self._projector = Projector(self.store, self.engine)
        return self._projector

    def caught_up(self) -> Projector:
        projector = self.projector
        if not self._current:
            if self.catching_up is None:
                projector.catch_up()
            else:
                self.catching_up(projector.catch_up)
            self._current = True
        return projector


class Queries:
    def __init__(self, store: Store, read_models: ReadModels, scope: Scope = Scope()) -> None:
        self.store, self.read_models, self.scope = store, read_models, scope

    # -- tickets -------------------------------------------------------------------

    def tickets(self, found: TicketFilter, offset: int = 0,
                limit: int = PAGE_SIZE) -> TicketPage:
        """A page of the scope's tickets matching `found`, newest first."""
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            return search_tickets(conn, projector.t, self.scope.tenant, found,
                                  offset=offset, limit=limit)

    def ticket_choices(self) -> dict[str, list[str]]:
        """What a ticket search may filter on: the states, and the scope's tenant's
        plans, priorities and escalation levels (from its current policy)."""
        policies = ([self.store.policy_store.tenant_policy(self.scope.tenant)]
                    if self.scope.tenant is not None
                    else list(self.store.policy_store.policies.values()))
        def union(values: list[list[str]]) -> list[str]:
            return list(dict.fromkeys(v for group in values for v in group))
        return {"status": [s.value for s in Status],
                "plan": union([list(p.plans) for p in policies]),
                "priority": union([p.priorities for p in policies]),
                "level": union([p.escalation.levels for p in policies])}

    # -- one ticket ----------------------------------------------------------------

    def tenant_of(self, ticket_id: str) -> str:
        """The tenant whose ticket `ticket_id` names: the scope's own, or (for the
        operator) the one tenant using the id; NotFound / AmbiguousId otherwise."""
        return self.store.event_log.stream_tenant("ticket", ticket_id, self.scope.tenant)

    def ticket(self, ticket_id: str, as_of: datetime | None = None) -> tuple[Ticket, Held]:
        """The ticket now, or as of an instant (with the versions the read models hold
        back), both from the event store. As of an instant: the last version that had
        occurred by then is found in the timeline read model (`version_at`), and the
        ticket loaded at that version, from its snapshot, as now is: the same state as
        the timeline's fold (`ticket_as_of`; `verify` compares the two records), at a
        cost that does not grow with the ticket's history."""
        tenant = self.tenant_of(ticket_id)
        uuid = self.store.event_log.stream_uuid_of("ticket", ticket_id, tenant)
        if as_of is None:
            return self.store.repository.get(uuid), Held([])
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            version = version_at(conn, projector.t, tenant, ticket_id, as_of)
        if version == 0:
            raise NotFound(f"ticket {ticket_id} did not exist yet at {as_of.isoformat()}")
        ticket: Ticket = self.store.repository.get(uuid, version=version)
        return ticket, self._held(tenant, ticket_id)

    def timeline(self, ticket_id: str, after: int = 0,
                 limit: int = DEFAULT_LIMIT) -> tuple[Page, Held]:
        """A page of the ticket's timeline (the HTTP API's cursor: `after` a version)."""
        tenant = self.tenant_of(ticket_id)
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            page = timeline_page(conn, projector.t, tenant, ticket_id, after=after, limit=limit)
        return page, self._held(tenant, ticket_id)

    def timeline_pages(self, ticket_id: str, after: int = 0,
                       limit: int = DEFAULT_LIMIT) -> Iterator[Page]:
        """Every page after `after`, one in memory at a time."""
        while True:
            page, _ = self.timeline(ticket_id, after, limit)
            yield page
            if page.next is None:
                return
            after = page.next

    def sla(self, ticket_id: str, as_of: datetime | None = None,
            explain: bool = False) -> dict[str, Any]:
        """Both SLA clocks of the ticket at `as_of` (default: the engine's clock)."""
        ticket, _ = self.ticket(ticket_id)
        at = (as_of or self.store.clock()).astimezone(UTC)
        result = ticket.sla(self.store.policy_store.policy_of(ticket), at, explain=explain)
        return {
            "ticket_id": ticket.ticket_id, "tenant": ticket.tenant, "plan": ticket.plan,
            "priority": result.priority, "calendar": result.calendar,
            "timezone": ticket.timezone, "as_of": at.isoformat(),
            "first_response": result.first_response.as_dict(explain),
            "resolution": result.resolution.as_dict(explain),
        }

    def _held(self, tenant: str, ticket_id: str) -> Held:
        return Held([row["version"] for row in self.read_models.projector.parked(tenant,
                                                                                  ticket_id)])

    # -- messages ------------------------------------------------------------------

    def outcome(self, message_id: str) -> CommandOutcome:
        found = self.store.event_log.outcome(message_id, self.scope.tenant)
        if found is None:
            raise NotFound(f"no outcome recorded for {message_id} yet (not received, or"
                           " still queued)")
        return found

    def dead_letters(self) -> list[dict[str, Any]]:
        return [
            {"key": r.key, "message_id": r.message_id, "tenant": r.tenant,
             "ticket_id": r.ticket_id, "error": r.error,
             "recorded_at": r.recorded_at.isoformat(), "original": r.raw,
             "original_encoding": r.raw_encoding, "original_length": r.raw_length,
             "original_sha256": r.raw_sha256}
            for r in self.store.event_log.rejected() if self.scope.admits(r.tenant)
        ]

    # -- the whole store -------------------------------------------------------------

    def verify(self, ticket_id: str | None = None) -> list[dict[str, Any]]:
        """Tamper evidence: the event store, and the snapshots and timeline rows served
        in its place (ticketflow.verification); [] when everything is intact."""
        return [finding.as_dict() for finding in verify_store(
            self.store, ticket_id, tenant=self.scope.tenant,
            read_models=self.read_models.engine)]

    def checkpoint(self, private_key: Ed25519PrivateKey) -> Checkpoint:
        """The audit log's head, signed now (it covers every tenant: a size and a root)."""
        return checkpoint(self.store, private_key, self.store.clock())

    def audit(self, text: str, public_key: Ed25519PublicKey) -> list[LogFinding]:
        """The store against a signed checkpoint (ticketflow.checkpoint_verification); []
        when it holds exactly the events the checkpoint signed, in order. A confined caller sees the
        findings naming its tenant's events, and those naming none (the signature, the
        log, the root): that something changed, not where in another tenant's tickets."""
        found = audit(self.store, text, public_key)
        return [f for f in found if f.event is None or self.scope.admits(f.event.split("/")[0])]

    def bundle(self, ticket_id: str, private_key: Ed25519PrivateKey) -> dict[str, Any]:
        """One ticket's events with their inclusion proofs and a signed tree head."""
        return make_bundle(self.store, ticket_id, self.scope.tenant, private_key,
                           self.store.clock())

    def parked(self) -> list[dict[str, Any]]:
        return [{"tenant": p["tenant"], "ticket_id": p["ticket_id"], "version": p["version"],
                 "type": p["envelope"]["type"], "error": p["error"]}
                for p in self.read_models.projector.parked(self.scope.tenant)]

    def export(self, out: BinaryIO, fmt: str, *, since: datetime | None = None,
               until: datetime | None = None, types: set[str] | None = None) -> int:
        """The scope's events, in recording order, written to `out` in `fmt`
        (ticketflow.export); returns how many."""
        return export_events(self.store, out, fmt, tenant=self.scope.tenant, since=since,
                             until=until, types=types)

    # -- reports -------------------------------------------------------------------

    def report_sla(self, since: datetime, until: datetime, as_of: datetime | None = None,
                   what_if: Policy | None = None) -> dict[str, Any]:
        """SLA compliance by tenant × plan × priority for clocks due in [since, until),
        as of `as_of` (default: `until`, or the engine's clock if earlier); with
        `what_if`, also re-evaluated under that policy, touching no stored data."""
        at = (as_of or min(until, self.store.clock())).astimezone(UTC)
        start, end, tenant = since.astimezone(UTC), until.astimezone(UTC), self.scope.tenant
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            recorded = sla_report(conn, projector.t, self._recorded_policy, since=start,
                                  until=end, as_of=at, tenant=tenant)
            other = (sla_report(conn, projector.t, lambda row: what_if if
                                row["tenant"] == what_if.id else None, since=start,
                                until=end, as_of=at, tenant=tenant)
                     if what_if else None)
        result: dict[str, Any] = {
            "from": start.isoformat(), "to": end.isoformat(), "as_of": at.isoformat(),
            "tenant": tenant, "rows": [row.as_dict() for row in recorded]}
        if what_if is not None and other is not None:
            result["what_if"] = {"policy": what_if.identity(),
                                 "rows": [row.as_dict() for row in other]}
        return result

    def report_volume(self, since: date, until: date, by: str) -> dict[str, Any]:
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            rows = volume_report(conn, projector.t, since=since, until=until, by=by,
                                 tenant=self.scope.tenant)
        return {"from": since.isoformat(), "to": until.isoformat(), "by": by,
                "tenant": self.scope.tenant, "rows": rows}

    def report_satisfaction(self, since: date, until: date, by: str) -> dict[str, Any]:
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            report = satisfaction_report(conn, projector.t, since=since, until=until, by=by,
                                         tenant=self.scope.tenant)
        return {"from": since.isoformat(), "to": until.isoformat(), "by": by,
                "tenant": self.scope.tenant, **report}

    def report_times(self, since: datetime, until: datetime) -> dict[str, Any]:
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            rows = times_report(conn, projector.t, self._recorded_policy,
                                since=since.astimezone(UTC), until=until.astimezone(UTC),
                                tenant=self.scope.tenant)
        return {"from": since.isoformat(), "to": until.isoformat(),
                "tenant": self.scope.tenant, "rows": rows}

    def _recorded_policy(self, row: dict[str, Any]) -> Policy | None:
        """The policy version a read-model row's ticket was created under."""
        return self.store.policy_store.policy_version(row["policy_id"], row["policy_version"],
                                                      row["policy_hash"])
