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

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, inspect

from ticketflow.bundles import make_bundle
from ticketflow.checkpoint_verification import LogFinding, audit, checkpoint
from ticketflow.checkpoints import Checkpoint
from ticketflow.domain.errors import Forbidden, InvalidMessage, NotFound
from ticketflow.domain.lifecycle import Status
from ticketflow.domain.policy import Policy
from ticketflow.domain.receipt import Oversized
from ticketflow.domain.ticket import Ticket
from ticketflow.event_log import CommandOutcome, Store
from ticketflow.export import export_events
from ticketflow.notifications import recorded
from ticketflow.projections import article_search, periods
from ticketflow.projections.accounts import managers
from ticketflow.projections.db import tables
from ticketflow.projections.kb_reports import articles_report, topics_report
from ticketflow.projections.quality import quality_report
from ticketflow.projections.replay import open_projector
from ticketflow.projections.reports import (
    satisfaction_report,
    sla_report_by,
    times_report_by,
    volume_report,
)
from ticketflow.projections.runner import Projector
from ticketflow.projections.search import PAGE_SIZE, TicketFilter, TicketPage, search_tickets
from ticketflow.projections.tier_stints import tier_rows_by
from ticketflow.projections.timeline import (
    DEFAULT_LIMIT,
    Page,
    timeline_page,
    version_at,
)
from ticketflow.projections.zoned_reports import satisfaction_in_zone, volume_in_zone
from ticketflow.verification import verify_store
from ticketflow.webhooks import Webhooks, notification_report

Progress = Callable[[int], None]
#: create_ticket's outcome and `ticketflow suggest` give at most this many (SPEC §11).
SUGGESTIONS = 5
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
            self._projector = open_projector(self.store, self.engine)
        return self._projector

    def in_use(self) -> bool:
        """Whether the read models exist (a read, `replay` or a projection worker made
        them); nothing here makes them."""
        return self._projector is not None or inspect(self.engine).has_table(
            tables().positions.name)

    def refresh(self) -> Projector:
        """Caught up again now, quietly (after the caller wrote events itself)."""
        self.projector.catch_up()
        self._current = True
        return self.projector

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

    def account(self, ticket: Ticket) -> dict[str, str | None]:
        """The ticket's account and that account's current manager (issue 19), from the
        event store: what the ticket views show."""
        account_id = self.store.event_log.account_of(ticket.id)
        return {"account_id": account_id,
                "account_manager": self.store.event_log.account_manager(ticket.tenant,
                                                                        account_id)}

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
               until: datetime | None = None, types: set[str] | None = None,
               progress: Progress | None = None) -> int:
        """The scope's events, in recording order, written to `out` in `fmt`
        (ticketflow.export); returns how many. `progress`: called with the count
        written so far, batch by batch."""
        return export_events(self.store, out, fmt, tenant=self.scope.tenant, since=since,
                             until=until, types=types, progress=progress)

    # -- notifications (SPEC §10) ----------------------------------------------------

    def report_notifications(self, since: datetime, until: datetime) -> dict[str, Any]:
        """The scope's notifications whose instant is in [since, until), by tenant ×
        rule × channel: how many, and their webhook deliveries by outcome (delivered,
        pending, dead; `undelivered`: no webhook wanted it) — `webhooks.notification_report`
        over the notifications recorded in the store and the delivery log."""
        start, end, tenant = since.astimezone(UTC), until.astimezone(UTC), self.scope.tenant
        webhooks = Webhooks(self.read_models.engine, self.store.clock,
                            self.store.event_log.mapper.cipher)
        rows = notification_report(recorded(self.store.event_log, tenant),
                                   webhooks.outcomes(tenant), start, end)
        return {"from": start.isoformat(), "to": end.isoformat(), "rows": rows}

    # -- reports -------------------------------------------------------------------

    def report_sla(self, since: datetime, until: datetime, as_of: datetime | None = None,
                   what_if: Policy | None = None, by: str | None = None,
                   zone: tzinfo = UTC, group: str | None = None) -> dict[str, Any]:
        """SLA compliance by tenant × plan × priority for clocks due in [since, until),
        as of `as_of` (default: `until`, or the engine's clock if earlier); with
        `what_if`, also re-evaluated under that policy, touching no stored data. With
        `by`, by period too (of the due instant, in `zone`): each row has its `period`.
        With `group` "account": by tenant × account (and its manager) instead. `tiers`:
        tier-goal attainment by tenant × level (`projections/tier_stints.py`) of the
        stints decided in the window (or each period), as of `as_of`; empty for tenants
        whose policy sets no tier goals."""
        at = (as_of or min(until, self.store.clock())).astimezone(UTC)
        start, end, tenant = since.astimezone(UTC), until.astimezone(UTC), self.scope.tenant
        projector = self.read_models.caught_up()
        recorded: list[dict[str, Any]] = []
        other: list[dict[str, Any]] = []
        other_tiers: list[dict[str, Any]] = []
        with projector.engine.connect() as conn:
            cuts = _windows(start, end, by, zone)
            recorded = [_in_period(period, row.as_dict()) for period, row in sla_report_by(
                conn, projector.t, self._recorded_policy, periods=cuts, as_of=at,
                tenant=tenant, group=group)]
            tiers = _tier_rows(conn, projector, self._recorded_policy, cuts, as_of=at,
                               tenant=tenant)
            if what_if is not None:
                under = _only(what_if)
                other = [_in_period(period, row.as_dict()) for period, row in sla_report_by(
                    conn, projector.t, under, periods=cuts, as_of=at, tenant=tenant,
                    group=group)]
                other_tiers = _tier_rows(conn, projector, under, cuts, as_of=at, tenant=tenant)
            if group == "account":
                recorded, other = (managers(conn, projector.t, recorded),
                                   managers(conn, projector.t, other))
        result: dict[str, Any] = {
            "from": start.isoformat(), "to": end.isoformat(), "as_of": at.isoformat(),
            **_periods(by, zone), **_grouped(group), "tenant": tenant, "rows": recorded,
            "tiers": tiers}
        if what_if is not None:
            result["what_if"] = {"policy": what_if.identity(), "rows": other,
                                 "tiers": other_tiers}
        return result

    def report_volume(self, since: date, until: date, by: str,
                      zone: tzinfo = UTC) -> dict[str, Any]:
        """Created, resolved, closed and backlog by period (of `zone`: [since, until) are
        its dates) × tenant × category × channel × priority."""
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            if zone is UTC:  # the daily counters
                rows = volume_report(conn, projector.t, since=since, until=until, by=by,
                                     tenant=self.scope.tenant)
            else:
                rows = volume_in_zone(conn, projector.t, since=since, until=until, by=by,
                                      zone=zone, tenant=self.scope.tenant)
        return {"from": since.isoformat(), "to": until.isoformat(), **_periods(by, zone),
                "tenant": self.scope.tenant, "rows": rows}

    def report_satisfaction(self, since: date, until: date, by: str,
                            zone: tzinfo = UTC) -> dict[str, Any]:
        """CSAT, NPS and self-service success by period (of `zone`) × tenant."""
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            if zone is UTC:  # the answers and sessions by their UTC day
                report = satisfaction_report(conn, projector.t, since=since, until=until,
                                             by=by, tenant=self.scope.tenant)
            else:
                report = satisfaction_in_zone(conn, projector.t, since=since, until=until,
                                              by=by, zone=zone, tenant=self.scope.tenant)
        return {"from": since.isoformat(), "to": until.isoformat(), **_periods(by, zone),
                "tenant": self.scope.tenant, **report}

    def report_times(self, since: datetime, until: datetime, by: str | None = None,
                     zone: tzinfo = UTC, total: bool = False,
                     group: str | None = None) -> dict[str, Any]:
        """Counted minutes to first response and resolution of the clocks met in
        [since, until); with `by`, by period (of the met instant, in `zone`) too, each
        period's clocks evaluated at its end. With `total`, also `total`: the rows of
        the whole window (as without `by`), from the same pass. With `group`
        "account": by tenant × account (and its manager) instead of plan × priority.
        `tiers`: tier-goal attainment and median minutes at the tier (as `report_sla`'s),
        each period's stints measured at its end, or at the engine's clock if earlier."""
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            cuts = _windows(since.astimezone(UTC), until.astimezone(UTC), by, zone)
            by_period, whole = times_report_by(conn, projector.t, self._recorded_policy,
                                               periods=cuts, tenant=self.scope.tenant,
                                               group=group)
            rows = [_in_period(period, row) for period, row in by_period]
            if group == "account":
                rows, whole = managers(conn, projector.t, rows), managers(conn, projector.t,
                                                                          whole)
            tiers = _tier_rows(conn, projector, self._recorded_policy, cuts,
                               now=self.store.clock(), tenant=self.scope.tenant)
        return {"from": since.isoformat(), "to": until.isoformat(), **_periods(by, zone),
                **_grouped(group), "tenant": self.scope.tenant, "rows": rows, "tiers": tiers,
                **({"total": whole} if total else {})}

    def report_quality(self, since: datetime, until: datetime, by: str | None = None,
                       zone: tzinfo = UTC, group: str | None = None) -> dict[str, Any]:
        """Response quality (issue 19): the reviews made in [since, until), each
        ticket's latest in a period counted, by tenant (× tier or agent with `group`;
        by period of `zone` with `by`): reviews, mean score, pass rate per rubric item."""
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            cuts = _windows(since.astimezone(UTC), until.astimezone(UTC), by, zone)
            rows = quality_report(conn, projector.t, periods=cuts, tenant=self.scope.tenant,
                                  group=group)
        return {"from": since.isoformat(), "to": until.isoformat(), **_periods(by, zone),
                **_grouped(group), "tenant": self.scope.tenant, "rows": rows}

    def review(self, name: str, since: date, until: date, by: str,
               as_of: datetime | None = None) -> dict[str, Any]:
        """The service review of [since, until) (SPEC §12: a quarter by month, a year by
        quarter): SLA compliance (as of `as_of`, `report_sla`'s default), volume, times,
        CSAT/NPS, self-service, top categories and the knowledge base's effect, each from
        its own report."""
        start = datetime.combine(since, datetime.min.time(), UTC)
        end = datetime.combine(until, datetime.min.time(), UTC)
        satisfaction = self.report_satisfaction(since, until, by)
        topics = self.report_topics(since, until)
        articles = self.report_articles(since, until)["rows"]
        return {
            "review": name, "from": since.isoformat(), "to": until.isoformat(), "by": by,
            "tenant": self.scope.tenant,
            "sla": self.report_sla(start, end, as_of, by=by)["rows"],
            "volume": _volume_totals(self.report_volume(since, until, by)["rows"]),
            "times": self.report_times(start, end)["rows"],
            "satisfaction": satisfaction["satisfaction"],
            "self_service": satisfaction["self_service"],
            "top_categories": _top(topics["categories"], "tickets", 5),
            "knowledge_base": _knowledge_effect(articles),
        }

    # -- knowledge base (SPEC §11) ------------------------------------------------------

    def suggest(self, text: str, tenant: str | None = None,
                limit: int = SUGGESTIONS) -> dict[str, Any]:
        """Up to `limit` (at most 5) of the tenant's articles for a user's text, best
        first, ranked by the database's full-text search (`projections/article_search.py`).
        The tenant is the scope's; an operator names it. A user's text is only words:
        never search syntax, whatever it holds."""
        owner = self._one_tenant(tenant)
        projector = self.read_models.caught_up()
        with projector.engine.connect() as conn:
            found = article_search.search(conn, projector.t.kb_articles.name, owner, text,
                                  max(0, min(limit, SUGGESTIONS)))
        return {"tenant": owner, "terms": article_search.terms(text), "suggestions": found}

    def with_suggestions(self, raws: Sequence[bytes | Oversized],
                         answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The answers to a batch of commands (`Outcome.as_dict`, in the batch's order),
        an accepted create_ticket's with `suggestions`: the ids of up to 5 of its
        tenant's articles for its subject and description, from the read models caught
        up after the batch — if they are in use (a door that reads them made them, or a
        read, `replay` or a projection worker did); nothing here makes them (an
        encrypted store stays without plaintext; docs/decisions.md). `ticketflow apply`
        prints these lines and `POST /v1/commands` sends them."""
        created = [(answer, raw) for answer, raw in zip(answers, raws, strict=True)
                   if answer["status"] == "accepted"
                   and answer["events"][:1] == ["TicketCreated"]]
        if not created:
            return answers
        searching = self.read_models.in_use()
        if searching:
            self.read_models.refresh()
        for answer, raw in created:
            answer["suggestions"] = []
            if searching and isinstance(raw, bytes):
                command = json.loads(raw)
                payload = command["payload"]
                text = f"{payload['subject']}\n{payload.get('description', '')}"
                found = self.suggest(text, command["tenant"])
                answer["suggestions"] = [s["article_id"] for s in found["suggestions"]]
        return answers

    def report_topics(self, since: date, until: date, by: str | None = None,
                      zone: tzinfo = UTC) -> dict[str, Any]:
        """Recurring ticket topics in [since, until) (dates of `zone`) and whether an
        article covers them; with `by`, in each period, against the window before it."""
        projector = self.read_models.caught_up()
        categories: list[dict[str, Any]] = []
        terms: list[dict[str, Any]] = []
        with projector.engine.connect() as conn:
            for period, low, high in _local_windows(since, until, by, zone):
                report = topics_report(conn, projector.t, since=low, until=high,
                                       tenant=self.scope.tenant)
                categories += [_in_period(period, row) for row in report["categories"]]
                terms += [_in_period(period, row) for row in report["terms"]]
        return {"from": since.isoformat(), "to": until.isoformat(), **_periods(by, zone),
                "tenant": self.scope.tenant, "categories": categories, "terms": terms}

    def report_articles(self, since: date, until: date, by: str | None = None,
                        zone: tzinfo = UTC) -> dict[str, Any]:
        """Each article's effectiveness in [since, until) (dates of `zone`): views,
        deflections, links, CSAT of the tickets that linked it; with `by`, by period."""
        projector = self.read_models.caught_up()
        rows: list[dict[str, Any]] = []
        with projector.engine.connect() as conn:
            for period, low, high in _local_windows(since, until, by, zone):
                rows += [_in_period(period, row) for row in articles_report(
                    conn, projector.t, since=low, until=high, tenant=self.scope.tenant)]
        return {"from": since.isoformat(), "to": until.isoformat(), **_periods(by, zone),
                "tenant": self.scope.tenant, "rows": rows}

    def _one_tenant(self, tenant: str | None) -> str:
        """The tenant a question is about: the scope's (a confined caller asking about
        another is refused as forbidden), or the one the operator names."""
        if self.scope.tenant is not None:
            if tenant not in (None, self.scope.tenant):
                raise Forbidden(f"this caller is confined to tenant {self.scope.tenant!r}")
            return self.scope.tenant
        if tenant is None:
            raise InvalidMessage("name the tenant (--tenant): articles are per tenant")
        if tenant not in self.store.policy_store.policies:
            raise NotFound(f"no tenant {tenant!r}")
        return tenant

    def _recorded_policy(self, row: dict[str, Any]) -> Policy | None:
        """The policy version a read-model row's ticket was created under."""
        return self.store.policy_store.policy_version(row["policy_id"], row["policy_version"],
                                                      row["policy_hash"])


def _windows(since: datetime, until: datetime, by: str | None,
             zone: tzinfo) -> list[tuple[str | None, datetime, datetime]]:
    """The report's window, whole (by None) or cut into periods of `zone`."""
    if by is None:
        return [(None, since, until)]
    return list(periods.windows(since, until, by, zone))


def _only(policy: Policy) -> PolicyOf:
    """A what-if: every ticket of the policy's tenant under it, no other ticket."""
    return lambda row: policy if row["tenant"] == policy.id else None


def _tier_rows(conn: Connection, projector: Projector, policy_of: PolicyOf,
               cuts: list[tuple[str | None, datetime, datetime]],
               **when: Any) -> list[dict[str, Any]]:
    """Tier-goal attainment (`tier_rows_by`, `when`: as_of / now, tenant), each row with
    its period when cut by one."""
    return [_in_period(period, row) for period, row in tier_rows_by(
        conn, projector.t, policy_of, periods=cuts, **when)]


def _in_period(period: str | None, row: dict[str, Any]) -> dict[str, Any]:
    return row if period is None else {"period": period, **row}


def _grouped(group: str | None) -> dict[str, Any]:
    return {} if group is None else {"group": group}


def _periods(by: str | None, zone: tzinfo) -> dict[str, Any]:
    return {} if by is None else {"by": by, "timezone": str(zone)}


def _volume_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Volume rows summed by period × tenant (backlog at each period's end)."""
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        total = totals.setdefault((row["period"], row["tenant"]), {
            "period": row["period"], "tenant": row["tenant"], "created": 0, "resolved": 0,
            "closed": 0, "backlog": 0})
        for name in ("created", "resolved", "closed", "backlog"):
            total[name] += row[name]
    for total in totals.values():
        total["resolution_rate"] = (round(100.0 * total["resolved"] / total["created"], 1)
                                    if total["created"] else None)
    return [totals[key] for key in sorted(totals)]


def _top(rows: list[dict[str, Any]], by: str, most: int) -> list[dict[str, Any]]:
    """The `most` rows of each tenant with the highest `by` (rows come by tenant)."""
    kept: dict[str, int] = {}
    found = []
    for row in sorted(rows, key=lambda r: (r["tenant"], -r[by])):
        if kept.get(row["tenant"], 0) < most:
            kept[row["tenant"]] = kept.get(row["tenant"], 0) + 1
            found.append(row)
    return found


def _knowledge_effect(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per tenant: articles, sessions that met one, deflections, and the best article."""
    tenants: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = tenants.setdefault(row["tenant"], {
            "tenant": row["tenant"], "articles": 0, "exposures": 0, "deflections": 0,
            "links": 0, "top_article": None})
        total["articles"] += 1 if row["source"] else 0
        total["exposures"] += row["sessions"]
        total["deflections"] += row["deflections"]
        total["links"] += row["links"]
        best = total["top_article"]
        if row["deflections"] and (best is None or row["deflections"] > best[1]):
            total["top_article"] = (row["article_id"], row["deflections"])
    for total in tenants.values():
        total["deflection_rate"] = (round(100.0 * total["deflections"] / total["exposures"], 1)
                                    if total["exposures"] else None)
        total["top_article"] = total["top_article"] and total["top_article"][0]
    return [tenants[name] for name in sorted(tenants)]


def _local_windows(since: date, until: date, by: str | None,
                   zone: tzinfo) -> list[tuple[str | None, datetime, datetime]]:
    """The window from the midnight of `since` to that of `until` in `zone`, whole (by
    None) or cut into its periods."""
    def midnight(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)

    return _windows(midnight(since), midnight(until), by, zone)
