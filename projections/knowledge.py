"""The knowledge-base read models (SPEC §11), as pure functions of events.

- `rm_kb_articles`: one row per (tenant, article id). An agent's article is its latest
  `ArticleCreated` / `ArticleUpdated` (each carries the whole text); an article
  published from a ticket (`PublishedAsArticle`) takes the ticket's subject as its
  title and its description and latest resolution as its body. When one id has
  several sources, the row kept is the one with the least `precedence`: the agent's
  article (its latest version) before any publication, else the earliest publication.
  The rows are written by an upsert that keeps the least, so the table is the same
  whatever order the streams are replayed in (a replay in several processes too).
- `rm_kb_exposures`: for each self-service session, each article it suggested (at
  which rank) or that the user opened, and how the session ended: deflection.
- `rm_ticket_terms`: the words of each ticket's subject (`article_search.terms`), for the
  topics report.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, select

from ticketflow.projections import article_search
from ticketflow.projections.db import Tables, insert_many, upsert_many

Row = dict[str, Any]
ARTICLE_EVENTS = frozenset({"ArticleCreated", "ArticleUpdated"})
#: Versions count down in an agent's precedence: the latest is the least.
_VERSIONS = 10**10


def agent_article(envelope: dict[str, Any]) -> Row:
    """An agent's article after one of its events."""
    data, tenant = envelope["data"], envelope["tenant"]
    return _row(tenant, data["article_id"], source="agent",
                precedence=f"0:{_VERSIONS - envelope['version']:011d}",
                updated_at=envelope["occurred_at"], ticket_id=None, title=data["title"],
                body=data["body"], tags=list(data["tags"]))


def published_article(envelope: dict[str, Any], created: dict[str, Any],
                      resolution: str | None) -> Row:
    """An article published from a ticket: `created` is the ticket's TicketCreated
    data, `resolution` its latest resolution before the publication."""
    body = "\n\n".join(part for part in (created.get("description"), resolution) if part)
    return _row(envelope["tenant"], envelope["data"]["article_id"], source="ticket",
                precedence=(f"1:{envelope['occurred_at']}:{envelope['ticket_id']}"
                            f":{envelope['version']:011d}"),
                updated_at=envelope["occurred_at"], ticket_id=envelope["ticket_id"],
                title=created["subject"], body=body or created["subject"], tags=[])


def _row(tenant: str, article_id: str, **fields: Any) -> Row:
    return {"tenant": tenant, "article_id": article_id,
            "doc": article_search.doc_id(tenant, article_id),
            "keywords": article_search.keywords(fields["tags"]), **fields}


def exposure_rows(envelope: dict[str, Any]) -> list[Row]:
    """What one self-service session showed and opened, and how it ended."""
    data = envelope["data"]
    shown = data.get("suggestions_shown") or []
    viewed = set(data["articles_viewed"])
    ranks: dict[str, int] = {}
    for rank, article_id in enumerate(shown, start=1):
        ranks.setdefault(article_id, rank)
    return [{"tenant": envelope["tenant"], "session_id": data["session_id"],
             "article_id": article_id, "at": envelope["occurred_at"],
             "outcome": data["outcome"], "shown_rank": ranks.get(article_id),
             "viewed": int(article_id in viewed)}
            for article_id in sorted(set(ranks) | viewed)]


def term_rows(envelope: dict[str, Any]) -> list[Row]:
    """The words of a new ticket's subject."""
    if envelope["type"] != "TicketCreated":
        return []
    return [{"tenant": envelope["tenant"], "ticket_id": envelope["ticket_id"], "term": term,
             "at": envelope["occurred_at"]}
            for term in article_search.terms(envelope["data"]["subject"])]


def write_articles(conn: Connection, t: Tables, rows: list[Row]) -> None:
    """Keep the least-precedence row of each article, then index what changed."""
    if not rows:
        return
    upsert_many(conn, t.kb_articles, rows, ("tenant", "article_id"), least="precedence")
    suffix = t.kb_articles.name.removeprefix("rm_kb_articles")
    article_search.reindex(conn, t.kb_articles.name, suffix,
                   [(row["tenant"], row["article_id"]) for row in rows])


def write_sessions(conn: Connection, t: Tables, sessions: list[dict[str, Any]]) -> None:
    insert_many(conn, t.kb_exposures, [row for e in sessions for row in exposure_rows(e)],
                unless_exists=("tenant", "session_id", "article_id"))


def write_terms(conn: Connection, t: Tables, created: list[dict[str, Any]]) -> None:
    insert_many(conn, t.ticket_terms, [row for e in created for row in term_rows(e)],
                unless_exists=("tenant", "ticket_id", "term"))


def published_rows(conn: Connection, t: Tables, published: list[dict[str, Any]]) -> list[Row]:
    """The articles these PublishedAsArticle events publish, from their tickets' earlier
    events in the timeline read model (already written for this batch)."""
    c = t.timeline.c
    rows = []
    for envelope in published:
        found = conn.execute(
            select(c.type, c.envelope).where(
                c.tenant == envelope["tenant"], c.ticket_id == envelope["ticket_id"],
                c.version < envelope["version"],
                c.type.in_(("TicketCreated", "TicketResolved")))
            .order_by(c.version)).all()
        created = next(_data(e) for type_, e in found if type_ == "TicketCreated")
        resolutions = [_data(e)["resolution"] for type_, e in found if type_ == "TicketResolved"]
        rows.append(published_article(envelope, created, resolutions[-1] if resolutions
                                      else None))
    return rows


def _data(envelope: Any) -> dict[str, Any]:
    decoded = orjson.loads(envelope) if isinstance(envelope, str | bytes) else envelope
    return dict(decoded["data"])
