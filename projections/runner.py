"""Brings the read models up to date from the event store's notification log.

Each batch is applied in memory (the affected ticket rows are read once), then the
rows, the daily counters and the runner's position are written in one transaction.
A ticket row's `version` makes a redelivered event a no-op; an event that skips a
version is refused (per-ticket order is never broken). A ticket is known by its
tenant and its id (`Key`): two tenants' "T-1" are two tickets, each with its own
version, its own parked events and its own rows.

A parked event is logged (`event_parked`, WARNING: its tenant, ticket, version, type and
the error's class, nothing of its data) and counted (`ticketflow_events_parked_total`)
when it is first parked; a redelivered one, already parked, is not counted again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, func, select, true

from ticketflow import metrics
from ticketflow.ddl import Step, create_missing
from ticketflow.event_log import STREAM_TOPICS, Store
from ticketflow.logs import event
from ticketflow.projections import accounts, article_search, knowledge, tier_stints
from ticketflow.projections.db import (
    TICKET_KEY,
    Tables,
    insert,
    insert_many,
    select_many,
    tables,
    update_many,
    upsert_many,
)
from ticketflow.projections.sla_clocks import clock_rows
from ticketflow.projections.tickets import (
    Row,
    article_row,
    project_ticket,
    satisfaction_row,
    self_service_row,
    volume_key,
)
from ticketflow.projections.timeline import timeline_row

log = logging.getLogger(__name__)

POSITION = "read-models"
VOLUME_COUNTERS = ("created", "resolved", "reopened", "closed")
VolumeCounts = Counter[tuple[tuple[str, ...], str]]
#: (tenant, ticket_id): what names a ticket (ids are scoped by tenant, SPEC §5).
Key = tuple[str, str]
#: (tenant, ticket_id, version): what names one of its events.
EventKey = tuple[str, str, int]


def key_of(envelope_or_row: dict[str, Any]) -> Key:
    return envelope_or_row["tenant"], envelope_or_row["ticket_id"]


def _share(stream_id: UUID | str, shares: int) -> int:
    """Which of `shares` replay processes a stream's events go to."""
    return (stream_id if isinstance(stream_id, UUID) else UUID(stream_id)).int % shares


def _held(parked: set[EventKey]) -> dict[Key, int]:
    """Tickets with parked events (their first parked version): their later events wait
    behind them."""
    held: dict[Key, int] = {}
    for tenant, ticket_id, version in parked:
        held[tenant, ticket_id] = min(version, held.get((tenant, ticket_id), version))
    return held


class OutOfOrder(RuntimeError):
    """An event arrived before one of its ticket's earlier events."""


class Projector:
    def __init__(self, app: Store, engine: Engine, suffix: str = "",
                 *, private: bool = False, position: str = POSITION) -> None:
        """`private`: the tables are a rebuild's, which nobody reads until they are
        swapped in; SLA clocks are then evaluated once per ticket (`write_deferred_clocks`)
        instead of in every batch, and secondary indexes are left to the rebuild.
        `position`: the name the runner's position is stored under."""
        self.app = app
        self.engine = engine
        self.private = private
        self.position_name = position
        self.deferred: set[Key] = set()
        self.t: Tables = tables(suffix)
        steps: list[Step] = [lambda conn: article_search.install(conn, suffix)]
        if not private:  # a rebuild builds its indexes at its end
            steps.append(self._create_new_indexes)
        create_missing(engine, self.t.metadata, *steps)  # one process at a time

    def _create_new_indexes(self, conn: Connection) -> None:
        """The indexes added since a table was made."""
        for table in self.t.metadata.tables.values():
            for index in table.indexes:
                index.create(conn, checkfirst=True)

    def position(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(select(self.t.positions.c.position)
                                 .where(self.t.positions.c.name == self.position_name)).scalar()
        return int(found or 0)

    def catch_up(self, progress: Callable[[int], None] | None = None,
                 batch_size: int = 2000, *, until: int | None = None,
                 share: tuple[int, int] | None = None) -> int:
        """Apply every event recorded since the last position (up to notification
        `until`); returns how many. With `share` = (i, n), only the streams whose id
        is i modulo n: n projectors then split a replay between them."""
        applied, position = 0, self.position()
        for page in self.app.event_log.pages(position + 1, STREAM_TOPICS, batch_size,
                                             stop=until):
            position = page[-1].id
            mine = page if share is None else [
                r for r in page if _share(r.originator_id, share[1]) == share[0]]
            envelopes = [self.app.event_log.envelope_of(r) for r in mine]
            with self.engine.begin() as conn:
                self.apply(conn, envelopes)
                self.store_position(conn, position)
            applied += len(envelopes)
            if progress:
                progress(applied)
        return applied

    def apply(self, conn: Connection, envelopes: list[dict[str, Any]]) -> None:
        envelopes = self._write_other_streams(conn, envelopes)
        keys = sorted({key_of(e) for e in envelopes})
        known = self._rows(conn, keys)
        rows = dict(known)
        parked_before = self._parked_keys(conn, keys)
        held = _held(parked_before)
        stints = tier_stints.Batch(conn, self.t, envelopes)
        counts: VolumeCounts = Counter()
        answers: list[Row] = []
        articles: list[Row] = []
        parked: list[tuple[Row, str]] = []  # each row, and the class of its error
        timed: set[Key] = set()  # tickets whose SLA facts changed in this batch
        applied: list[dict[str, Any]] = []
        for envelope in envelopes:
            key = key_of(envelope)
            row = rows.get(key)
            if envelope["version"] <= (row["version"] if row else 0):
                continue  # delivered before: already applied
            try:
                if key in held:
                    raise OutOfOrder(f"held back behind parked v{held[key]}")
                row, bump, answer, article = self._project(row, envelope, stints)
            except Exception as exc:  # a poison event: park it, go on with other tickets
                held.setdefault(key, envelope["version"])
                parked.append(({"tenant": key[0], "ticket_id": key[1],
                                "version": envelope["version"], "envelope": envelope,
                                "error": f"{type(exc).__name__}: {exc}"},
                               type(exc).__name__))
                continue
            if key not in rows or row["sla_facts"] != rows[key]["sla_facts"]:
                timed.add(key)
            rows[key] = row
            applied.append(envelope)
            if bump:
                counts[bump] += 1
            if answer:
                answers.append(answer)
            if article:
                articles.append(article)
        self._write_parked(conn, parked, parked_before)
        self._write_rows(conn, known, rows)
        self._write_volume(conn, counts)
        stints.write(conn)
        insert_many(conn, self.t.satisfaction, answers)
        insert_many(conn, self.t.articles, articles)
        insert_many(conn, self.t.timeline, [timeline_row(e) for e in applied])
        accounts.write_reviews(conn, self.t, [row for row in map(accounts.review_row, applied)
                                              if row is not None])
        knowledge.write_terms(conn, self.t, applied)
        knowledge.write_articles(conn, self.t, knowledge.published_rows(
            conn, self.t, [e for e in applied if e["type"] == "PublishedAsArticle"]))
        if self.private:
            self.deferred |= timed
        else:
            self._write_clocks(conn, [rows[key] for key in sorted(timed)])

    def _write_other_streams(self, conn: Connection,
                             envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write the rows of the events of sessions, articles and accounts; the tickets'
        events are what is left."""
        sessions = [e for e in envelopes if e["type"] == "SelfServiceRecorded"]
        self._write_sessions(conn, sessions)
        knowledge.write_articles(conn, self.t, [knowledge.agent_article(e) for e in envelopes
                                                if e["type"] in knowledge.ARTICLE_EVENTS])
        accounts.write_accounts(conn, self.t, [e for e in envelopes
                                               if e["type"] in accounts.ACCOUNT_EVENTS])
        return [e for e in envelopes if e["type"] != "SelfServiceRecorded"
                and e["type"] not in knowledge.ARTICLE_EVENTS
                and e["type"] not in accounts.ACCOUNT_EVENTS]

    @staticmethod
    def _project(
        row: Row | None, envelope: dict[str, Any], stints: tier_stints.Batch,
    ) -> tuple[Row, Any, Row | None, Row | None]:
        current = row["version"] if row else 0
        if envelope["version"] != current + 1:
            raise OutOfOrder(f"v{envelope['version']} arrived after v{current}")
        row = project_ticket(row, envelope)
        stints.fold(row, envelope)
        return (row, volume_key(row, envelope), satisfaction_row(row, envelope),
                article_row(row, envelope))

    def _parked_keys(self, conn: Connection, keys: list[Key]) -> set[EventKey]:
        """The tickets' parked events."""
        return {(row["tenant"], row["ticket_id"], row["version"])
                for row in select_many(conn, self.t.parked, TICKET_KEY, keys)}

    def _write_parked(self, conn: Connection, parked: list[tuple[Row, str]],
                      before: set[EventKey]) -> None:
        """Park them (one parked before stays as it is); report the newly parked."""
        insert_many(conn, self.t.parked, [row for row, _ in parked],
                    unless_exists=(*TICKET_KEY, "version"))
        for row, cause in parked:
            where = (row["tenant"], row["ticket_id"], row["version"])
            if where in before:
                continue  # delivered again: parked already, reported then
            before.add(where)
            metrics.EVENTS_PARKED.labels(cause).inc()
            event(log, "event_parked", logging.WARNING, tenant=row["tenant"],
                  ticket=row["ticket_id"], version=row["version"],
                  event_type=row["envelope"].get("type"), cause=cause)

    def count_parked(self) -> int:
        """How many events are parked (every tenant's)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.t.parked)).scalar()
                       or 0)

    def parked(self, tenant: str | None = None, ticket_id: str | None = None) -> list[Row]:
        """Every parked event (or a tenant's, or the tenant's ticket's), by tenant,
        ticket and version."""
        table = self.t.parked
        query = select(table).order_by(table.c.tenant, table.c.ticket_id, table.c.version)
        if tenant is not None:
            query = query.where(table.c.tenant == tenant)
        if ticket_id is not None:
            query = query.where(table.c.ticket_id == ticket_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def retry_parked(self, tenant: str | None = None) -> tuple[int, int]:
        """Apply parked events (or a tenant's) again, in order; returns (applied, still
        parked)."""
        table = self.t.parked
        mine = true() if tenant is None else table.c.tenant == tenant
        with self.engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(table).where(mine).order_by(
                table.c.tenant, table.c.ticket_id, table.c.version))]
            conn.execute(table.delete().where(mine))
            self.apply(conn, [row["envelope"] for row in rows])
            remaining = conn.execute(select(table.c.version).where(mine)).all()
        applied = len(rows) - len(remaining)
        event(log, "parked_retried", tenant=tenant, applied=applied, parked=len(remaining))
        return applied, len(remaining)

    def _write_sessions(self, conn: Connection, sessions: list[dict[str, Any]]) -> None:
        """Insert-or-ignore: a session records once, so a redelivery is a no-op."""
        insert_many(conn, self.t.self_service, [self_service_row(e) for e in sessions],
                    unless_exists=("tenant", "session_id"))
        knowledge.write_sessions(conn, self.t, sessions)

    def _rows(self, conn: Connection, keys: list[Key]) -> dict[Key, Row]:
        return {key_of(row): row for row in select_many(conn, self.t.tickets, TICKET_KEY, keys)}

    def _write_rows(self, conn: Connection, known: dict[Key, Row], rows: dict[Key, Row]) -> None:
        insert_many(conn, self.t.tickets, [row for key, row in rows.items() if key not in known])
        update_many(conn, self.t.tickets, [row for key, row in rows.items()
                                           if key in known and row != known[key]], TICKET_KEY)

    def _write_clocks(self, conn: Connection, rows: list[Row]) -> None:
        """Both clocks of each ticket, as of its latest SLA fact."""
        clocks: list[Row] = []
        for row in rows:
            policy = self.app.policy_store.policy_version(row["policy_id"], row["policy_version"],
                                             row["policy_hash"])
            at = datetime.fromisoformat(row["sla_facts"][-1]["at"])
            clocks.extend(clock_rows(row, policy, at))
        upsert_many(conn, self.t.sla_clocks, clocks, (*TICKET_KEY, "clock"))

    def write_deferred_clocks(self, chunk: int = 2000) -> None:
        """The clocks of every ticket whose facts changed while they were deferred."""
        pending = sorted(self.deferred)
        for start in range(0, len(pending), chunk):
            with self.engine.begin() as conn:
                rows = self._rows(conn, pending[start:start + chunk])
                self._write_clocks(conn, [rows[key] for key in sorted(rows)])
        self.deferred.clear()

    def _write_volume(self, conn: Connection, counts: VolumeCounts) -> None:
        """Add the batch's counts to the daily counters: one upsert, many rows."""
        names = ("tenant", "day", "category", "channel", "priority")
        per_key: dict[tuple[str, ...], dict[str, int]] = {}
        for (key, counter), n in counts.items():
            per_key.setdefault(key, dict.fromkeys(VOLUME_COUNTERS, 0))
            per_key[key][counter] += n
        upsert_many(conn, self.t.volume, [{**dict(zip(names, key, strict=True)), **deltas}
                                          for key, deltas in sorted(per_key.items())],
                    names, add=VOLUME_COUNTERS)

    def store_position(self, conn: Connection, position: int) -> None:
        statement = insert(conn, self.t.positions).values(name=self.position_name,
                                                           position=position)
        conn.execute(statement.on_conflict_do_update(index_elements=["name"],
                                                     set_={"position": position}))
