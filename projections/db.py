"""The read-model database (SQLAlchemy 2): SQLite by default, PostgreSQL in production.

Read models live beside the event store (the same URL), in tables prefixed `rm_`.
`tables(suffix)` builds the same tables under another name, which is how `replay`
builds fresh ones before swapping them in.

Ticket and session ids are scoped by tenant (SPEC §5), so every row of a ticket or a
session is keyed by (tenant, ticket_id) or (tenant, session_id): two tenants' "T-1"
are two tickets. `outdated` finds tables whose stored primary key is not the declared
one (a database made by an older release), which `replay.upgrade` rebuilds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from ticketflow.projections import article_search

NAMES = ("rm_positions", "rm_tickets", "rm_volume", "rm_satisfaction", "rm_self_service",
         "rm_articles", "rm_parked", "rm_offsets", "rm_timeline", "rm_sla_clocks",
         "rm_kb_articles", "rm_kb_exposures", "rm_ticket_terms", "rm_accounts", "rm_reviews",
         "rm_tier_stints")
#: The events reports count by instant when periods are another zone's than UTC.
COUNTED = ("TicketCreated", "TicketResolved", "TicketReopened", "TicketClosed",
           "SatisfactionRecorded")
ZONED_WHERE = "type IN (" + ", ".join(f"'{name}'" for name in COUNTED) + ")"
#: The key of a ticket's rows (a session's: tenant, session_id).
TICKET_KEY = ("tenant", "ticket_id")


@dataclass(frozen=True)
class Tables:
    metadata: MetaData
    positions: Table
    tickets: Table
    volume: Table
    satisfaction: Table
    self_service: Table
    articles: Table
    parked: Table
    offsets: Table
    timeline: Table
    sla_clocks: Table
    kb_articles: Table
    kb_exposures: Table
    ticket_terms: Table
    accounts: Table
    reviews: Table
    tier_stints: Table


def tables(suffix: str = "") -> Tables:
    metadata = MetaData()
    positions = Table(
        f"rm_positions{suffix}", metadata,
        Column("name", String(100), primary_key=True),
        Column("position", Integer, nullable=False),
    )
    tickets = Table(
        f"rm_tickets{suffix}", metadata,
        Column("tenant", String(100), primary_key=True),
        Column("ticket_id", String(200), primary_key=True),
        Column("version", Integer, nullable=False),
        *(Column(name, String(200)) for name in (
            "status", "plan", "priority", "initial_priority", "channel", "category",
            "subcategory", "timezone", "level", "assignee", "policy_id", "policy_version",
            "policy_hash", "created_at", "first_response_at", "resolved_at", "closed_at",
            "account_id")),
        Column("sla_facts", JSON, nullable=False),
        Index(f"rm_tickets{suffix}_policy", "tenant", "policy_hash"),  # reports: what-ifs
        Index(f"rm_tickets{suffix}_created", "created_at"),  # report topics: a window's
    )
    volume = Table(
        f"rm_volume{suffix}", metadata,
        *(Column(name, String(200), primary_key=True)
          for name in ("tenant", "day", "category", "channel", "priority")),
        *(Column(name, Integer, nullable=False, default=0)
          for name in ("created", "resolved", "reopened", "closed")),
        Index(f"rm_volume{suffix}_day", "day"),
        # the backlog before a report's window, summed per dimension in index order
        Index(f"rm_volume{suffix}_backlog", "tenant", "category", "channel", "priority", "day",
              "created", "reopened", "resolved"),
    )
    satisfaction = Table(
        f"rm_satisfaction{suffix}", metadata,
        *_ticket_version_key(),
        *(Column(name, String(200), nullable=False) for name in ("plan", "day")),
        Column("score", Integer, nullable=False),
        Column("nps", Integer),
        Column("at", String(200), nullable=False),  # its instant: periods of any zone
        Index(f"rm_satisfaction{suffix}_day", "day"),
        Index(f"rm_satisfaction{suffix}_at", "at"),
    )
    self_service = Table(
        f"rm_self_service{suffix}", metadata,
        Column("tenant", String(200), primary_key=True),
        Column("session_id", String(200), primary_key=True),
        *(Column(name, String(200), nullable=False) for name in ("day", "outcome")),
        Column("articles_viewed", Integer, nullable=False),
        Column("at", String(200), nullable=False),  # its instant: periods of any zone
        Index(f"rm_self_service{suffix}_day", "day"),
    )
    articles = Table(  # knowledge-base links, publication consents and publications
        f"rm_articles{suffix}", metadata,
        *_ticket_version_key(),
        *(Column(name, String(200), nullable=False) for name in ("day", "kind")),
        Column("article_id", String(200)),
        Column("at", String(200), nullable=False),  # its instant: periods of any zone
        # reports topics and articles: links and publications up to / in a window
        Index(f"rm_articles{suffix}_kind", "kind", "at"),
    )
    parked = Table(  # events held back: a poison event and its ticket's later events
        f"rm_parked{suffix}", metadata,
        *_ticket_version_key(),
        Column("envelope", JSON, nullable=False),
        Column("error", String(2000), nullable=False),
    )
    offsets = Table(  # Kafka positions of the read models, written with their rows
        f"rm_offsets{suffix}", metadata,
        Column("topic", String(250), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("offset", Integer, nullable=False),
    )
    timeline = Table(  # the audit timeline: every ticket event's envelope as recorded
        f"rm_timeline{suffix}", metadata,
        *_ticket_version_key(),
        *(Column(name, String(200), nullable=False) for name in ("type", "occurred_at")),
        Column("envelope", JSON, nullable=False),
        # reports by the periods of a time zone: the counted events of a window, by instant
        Index(f"rm_timeline{suffix}_counted", "type", "occurred_at",
              sqlite_where=text(ZONED_WHERE), postgresql_where=text(ZONED_WHERE)),
    )
    sla_clocks = Table(  # both SLA clocks of every ticket, as of its latest event
        f"rm_sla_clocks{suffix}", metadata,
        Column("tenant", String(200), primary_key=True),
        Column("ticket_id", String(200), primary_key=True),
        Column("clock", String(50), primary_key=True),
        *(Column(name, String(200), nullable=False)
          for name in ("plan", "priority", "status", "evaluated_at")),
        Column("target_minutes", Integer),
        Column("counted_minutes", Float, nullable=False),
        *(Column(name, String(200)) for name in ("due_at", "met_at", "breached_at")),
        Index(f"rm_sla_clocks{suffix}_status", "tenant", "status", "due_at"),
        # reports: clocks due / met in a window, tickets with SLA facts after an instant
        Index(f"rm_sla_clocks{suffix}_due", "due_at", "evaluated_at"),
        Index(f"rm_sla_clocks{suffix}_met", "met_at", "evaluated_at"),
        Index(f"rm_sla_clocks{suffix}_evaluated", "evaluated_at"),
    )
    kb_articles, kb_exposures, ticket_terms = _knowledge_tables(metadata, suffix)
    accounts, reviews = _account_tables(metadata, suffix)
    tier_stints = Table(  # each stint of a ticket at a level (domain/tiers.py)
        f"rm_tier_stints{suffix}", metadata,
        Column("tenant", String(200), primary_key=True),
        Column("ticket_id", String(200), primary_key=True),
        Column("stint", Integer, primary_key=True),  # 1, 2, … in the ticket's order
        *(Column(name, String(200), nullable=False) for name in ("level", "started_at")),
        *(Column(name, String(200)) for name in ("ended_at", "ended_by")),
        Column("pauses", JSON, nullable=False),  # [[paused, resumed or null], …]
        # reports: the stints a window can count (open ones, or ended after an instant)
        Index(f"rm_tier_stints{suffix}_ended", "ended_at", "started_at"),
    )
    return Tables(metadata, positions, tickets, volume, satisfaction, self_service, articles,
                  parked, offsets, timeline, sla_clocks, kb_articles, kb_exposures,
                  ticket_terms, accounts, reviews, tier_stints)


def _account_tables(metadata: MetaData, suffix: str) -> tuple[Table, Table]:
    """Accounts' dedicated managers and quality reviews of tickets (issue 19)."""
    accounts = Table(  # one row per account with a stream: its latest assignment
        f"rm_accounts{suffix}", metadata,
        Column("tenant", String(200), primary_key=True),
        Column("account_id", String(200), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("manager_id", String(200)),
        *(Column(name, String(200), nullable=False) for name in ("plan", "assigned_at")),
    )
    reviews = Table(  # every review of a ticket (the latest of each counts in reports)
        f"rm_reviews{suffix}", metadata,
        *_ticket_version_key(),
        *(Column(name, String(200), nullable=False) for name in ("at", "reviewer")),
        *(Column(name, String(200)) for name in ("agent_id", "level")),
        Column("score", Integer, nullable=False),
        Column("rubric", JSON, nullable=False),
        Index(f"rm_reviews{suffix}_at", "at"),
    )
    return accounts, reviews


def _knowledge_tables(metadata: MetaData, suffix: str) -> tuple[Table, Table, Table]:
    """The knowledge base (SPEC §11): its articles (searched through `article_search.py`), what
    self-service sessions were shown and viewed, and the words of ticket subjects."""
    kb_articles = Table(  # one row per article: an agent's, or one published from a ticket
        f"rm_kb_articles{suffix}", metadata,
        Column("tenant", String(200), primary_key=True),
        Column("article_id", String(200), primary_key=True),
        Column("doc", BigInteger, nullable=False),  # its row in the search index
        *(Column(name, String(200), nullable=False)
          for name in ("source", "precedence", "updated_at")),
        Column("ticket_id", String(200)),  # the ticket it was published from
        Column("title", String(500), nullable=False),
        *(Column(name, Text, nullable=False) for name in ("keywords", "body")),
        Column("tags", JSON, nullable=False),
        Index(f"rm_kb_articles{suffix}_doc", "doc"),  # SQLite: from a search hit to its row
        Index(f"rm_kb_articles{suffix}_search", text(article_search.pg_document()),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
    )
    kb_exposures = Table(  # each article a self-service session showed or opened
        f"rm_kb_exposures{suffix}", metadata,
        *(Column(name, String(200), primary_key=True)
          for name in ("tenant", "session_id", "article_id")),
        *(Column(name, String(200), nullable=False) for name in ("at", "outcome")),
        Column("shown_rank", Integer),  # 1 = first suggestion; None: not suggested
        Column("viewed", Integer, nullable=False),
        Index(f"rm_kb_exposures{suffix}_at", "at", "tenant", "article_id"),
    )
    ticket_terms = Table(  # the words of each ticket's subject, for `report topics`
        f"rm_ticket_terms{suffix}", metadata,
        *(Column(name, String(200), primary_key=True)
          for name in ("tenant", "ticket_id", "term")),
        Column("at", String(200), nullable=False),  # the ticket's creation
        Index(f"rm_ticket_terms{suffix}_at", "at", "tenant", "term"),
    )
    return kb_articles, kb_exposures, ticket_terms


def _ticket_version_key() -> tuple[Column[Any], ...]:
    """(tenant, ticket_id, version): one row per ticket event."""
    return (Column("tenant", String(200), primary_key=True),
            Column("ticket_id", String(200), primary_key=True),
            Column("version", Integer, primary_key=True))


def outdated(engine: Engine, t: Tables) -> list[str]:
    """The tables that exist with another primary key than `t` declares for them: made
    by an older release (before ticket ids were scoped by tenant, keyed by ticket id
    alone) or without a column it declares (`rm_self_service.at`); and, in read models
    already in use, the tables an older release did not have (the knowledge base's):
    empty, they would miss the events already applied.
    Their rows cannot be made in place; they are rebuilt from the events."""
    found = inspect(engine)
    started = found.has_table(t.positions.name)
    return [name for name, table in t.metadata.tables.items() if (
        found.get_pk_constraint(name)["constrained_columns"]
        != [c.name for c in table.primary_key.columns]
        or not {c.name for c in table.columns} <= {c["name"] for c in found.get_columns(name)}
        if found.has_table(name) else started)]


def engine_for(url: str) -> Engine:
    """SQLAlchemy engine for a ticketflow --db URL (psycopg 3 for PostgreSQL)."""
    scheme = urlsplit(url).scheme
    if scheme in {"postgres", "postgresql"}:
        url = "postgresql+psycopg" + url[len(scheme):]
    engine = create_engine(url, json_serializer=_json_text, json_deserializer=orjson.loads)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def _sqlite_pragmas(connection: object, _: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout = 30000")  # share the file with the event store
    cursor.close()


def insert(conn: Any, table: Table) -> Any:
    """An INSERT with ON CONFLICT support for the connection's dialect."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


# -- bulk writes straight through the driver ----------------------------------------------
# SQLAlchemy's per-row parameter processing costs more than the SQL itself for the
# thousands of rows a batch writes; these helpers hand tuples to the driver's
# executemany. The SQL (INSERT … ON CONFLICT …) is the same on SQLite and PostgreSQL.


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]],
                *, unless_exists: Sequence[str] = ()) -> None:
    """INSERT the rows; with `unless_exists` (the key), rows already there are kept."""
    if rows:
        conflict = f" ON CONFLICT ({_names(unless_exists)}) DO NOTHING" if unless_exists else ""
        _execute_many(conn, _insert_sql(conn, table) + conflict, table, rows)


def upsert_many(conn: Connection, table: Table, rows: list[dict[str, Any]],
                key: Sequence[str], *, add: Sequence[str] = (),
                least: str | None = None, greatest: str | None = None) -> None:
    """INSERT the rows, or UPDATE the existing ones (their `add` columns are summed);
    with `least` (a column), only by a row whose value there is smaller: the row kept
    is then the least, whatever order the rows come in (`greatest`: the greatest)."""
    if not rows:
        return
    sets = ", ".join(
        f'"{c.name}" = "{table.name}"."{c.name}" + excluded."{c.name}"' if c.name in add
        else f'"{c.name}" = excluded."{c.name}"' for c in table.columns if c.name not in key)
    sql = f"{_insert_sql(conn, table)} ON CONFLICT ({_names(key)}) DO UPDATE SET {sets}"
    if least is not None:
        sql += f' WHERE excluded."{least}" < "{table.name}"."{least}"'
    if greatest is not None:
        sql += f' WHERE excluded."{greatest}" > "{table.name}"."{greatest}"'
    _execute_many(conn, sql, table, rows)


def update_many(conn: Connection, table: Table, rows: list[dict[str, Any]],
                key: Sequence[str]) -> None:
    """UPDATE every other column of the rows found by their `key` columns."""
    if not rows:
        return
    mark = _mark(conn)
    others = [c for c in table.columns if c.name not in key]
    sql = (f'UPDATE "{table.name}" SET {", ".join(f"{_q(c.name)} = {mark}" for c in others)}'
           f" WHERE {' AND '.join(f'{_q(name)} = {mark}' for name in key)}")
    json_columns = _json_columns(table)
    conn.exec_driver_sql(sql, [
        (*(_json_text(row[c.name]) if c.name in json_columns else row[c.name] for c in others),
         *(row[name] for name in key)) for row in rows])


def select_many(conn: Connection, table: Table, key: Sequence[str],
                values: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The rows whose `key` columns equal one of `values` (tuples in `key` order), as
    dicts (JSON columns decoded). Each group of values sharing all but the last column
    is one equality on those and an IN list on the last: an index seek per value when
    `key` leads an index (a primary key: tenant, ticket_id)."""
    names = [c.name for c in table.columns]
    json_columns = _json_columns(table)
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for value in values:
        groups.setdefault(tuple(value[:-1]), []).append(value[-1])
    mark = _mark(conn)
    equal = "".join(f"{_q(name)} = {mark} AND " for name in key[:-1])
    found: list[dict[str, Any]] = []
    for prefix, lasts in groups.items():
        for start in range(0, len(lasts), 500):
            chunk = tuple(lasts[start:start + 500])
            cursor = conn.exec_driver_sql(
                f'SELECT {_names(names)} FROM "{table.name}" WHERE {equal}{_q(key[-1])}'
                f' IN ({", ".join([mark] * len(chunk))})', (*prefix, *chunk))
            found.extend(_decoded(json_columns, dict(zip(names, row, strict=True)))
                         for row in cursor)
    return found


def _decoded(json_columns: frozenset[str], row: dict[str, Any]) -> dict[str, Any]:
    for name in json_columns:
        if isinstance(row[name], str | bytes):  # PostgreSQL decodes JSON itself
            row[name] = orjson.loads(row[name])
    return row


def _execute_many(conn: Connection, sql: str, table: Table, rows: list[dict[str, Any]]) -> None:
    names = [c.name for c in table.columns]
    values = itemgetter(*names)
    json_at = [i for i, name in enumerate(names) if name in _json_columns(table)]
    if not json_at:
        conn.exec_driver_sql(sql, [values(row) for row in rows])
        return
    params = []
    for row in rows:
        param = list(values(row))
        for i in json_at:
            param[i] = _json_text(param[i])
        params.append(tuple(param))
    conn.exec_driver_sql(sql, params)


def _insert_sql(conn: Connection, table: Table) -> str:
    names = [c.name for c in table.columns]
    marks = ", ".join([_mark(conn)] * len(names))
    return f'INSERT INTO "{table.name}" ({_names(names)}) VALUES ({marks})'


def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _names(names: Sequence[str]) -> str:
    return ", ".join(map(_q, names))


def _q(name: str) -> str:
    return f'"{name}"'
