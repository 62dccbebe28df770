"""Knowledge-base reports (SPEC §11): ticket topics that want an article, and how
well each article works. Deterministic functions of the read models and their
arguments; rows in a fixed order, so a replay prints the same reports.

Windows are instants, `since` inclusive and `until` exclusive (a caller cuts them at
the midnights of a zone); rows keep the instant of what they count, compared as the
ISO-8601 UTC text the read models store.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Integer, func, select

from ticketflow.projections import article_search
from ticketflow.projections.db import TICKET_KEY, Tables, select_many

#: A topic recurs when it has at least this many tickets in the window.
RECURRING = 2
#: The most frequent subject words listed per tenant.
TOP_TERMS = 20


def topics_report(conn: Connection, t: Tables, *, since: datetime, until: datetime,
                  tenant: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Recurring topics of the tickets created in [since, until): categories (with
    subcategory) and frequent subject words, each with its count, the count of the
    window of the same length just before (`previous`) and the trend; `candidate`
    flags a topic no article covers: no ticket of that category linked or published
    one (up to `until`), or no article of the tenant matches that word."""
    before = since - (until - since)
    now, then = (_categories(conn, t, since, until, tenant),
                 _categories(conn, t, before, since, tenant))
    covered = _covered_categories(conn, t, until, tenant)
    categories = [
        {"tenant": key[0], "category": key[1], "subcategory": key[2], "tickets": count,
         **_trend(count, then.get(key, 0)), "articles": covered.get(key, 0),
         "candidate": not covered.get(key)}
        for key, count in sorted(now.items(), key=lambda kv: (-kv[1], _sortable(kv[0])))
        if count >= RECURRING]
    categories.sort(key=lambda row: row["tenant"])  # stable: by tenant, then most tickets
    words_now, words_then = (_terms(conn, t, since, until, tenant),
                             _terms(conn, t, before, since, tenant))
    terms = []
    per_tenant: Counter[str] = Counter()
    for (owner, term), count in sorted(words_now.items(),
                                       key=lambda kv: (kv[0][0], -kv[1], kv[0][1])):
        if count < RECURRING or per_tenant[owner] >= TOP_TERMS:
            continue
        per_tenant[owner] += 1
        matching = article_search.search(conn, t.kb_articles.name, owner, term, 1)
        terms.append({"tenant": owner, "term": term, "tickets": count,
                      **_trend(count, words_then.get((owner, term), 0)),
                      "article": matching[0]["article_id"] if matching else None,
                      "candidate": not matching})
    return {"categories": categories, "terms": terms}


def _sortable(key: tuple[str, str, str | None]) -> tuple[str, str, str]:
    return key[0], key[1], key[2] or ""


def _trend(count: int, previous: int) -> dict[str, Any]:
    trend = "rising" if count > previous else "falling" if count < previous else "steady"
    return {"previous": previous, "change": count - previous, "trend": trend}


def _categories(conn: Connection, t: Tables, since: datetime, until: datetime,
                tenant: str | None) -> dict[tuple[str, str, str | None], int]:
    k = t.tickets.c
    query = (select(k.tenant, k.category, k.subcategory, func.count())
             .where(k.created_at >= _text(since), k.created_at < _text(until))
             .group_by(k.tenant, k.category, k.subcategory))
    if tenant is not None:
        query = query.where(k.tenant == tenant)
    return {(row[0], row[1], row[2]): int(row[3]) for row in conn.execute(query)}


def _covered_categories(conn: Connection, t: Tables, until: datetime,
                        tenant: str | None) -> dict[tuple[str, str, str | None], int]:
    """Distinct articles linked or published by tickets of each category, up to `until`."""
    a, k = t.articles.c, t.tickets.c
    query = (select(k.tenant, k.category, k.subcategory, func.count(a.article_id.distinct()))
             .join_from(t.articles, t.tickets,
                        (a.tenant == k.tenant) & (a.ticket_id == k.ticket_id))
             .where(a.kind.in_(("linked", "published")), a.at < _text(until))
             .group_by(k.tenant, k.category, k.subcategory))
    if tenant is not None:
        query = query.where(k.tenant == tenant)
    return {(row[0], row[1], row[2]): int(row[3]) for row in conn.execute(query)}


def _terms(conn: Connection, t: Tables, since: datetime, until: datetime,
           tenant: str | None) -> dict[tuple[str, str], int]:
    w = t.ticket_terms.c
    query = (select(w.tenant, w.term, func.count())
             .where(w.at >= _text(since), w.at < _text(until))
             .group_by(w.tenant, w.term))
    if tenant is not None:
        query = query.where(w.tenant == tenant)
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(query)}


def articles_report(conn: Connection, t: Tables, *, since: datetime, until: datetime,
                    tenant: str | None = None) -> list[dict[str, Any]]:
    """Each article's effect in [since, until): self-service sessions that suggested
    (`shown`) or opened it (`viewed`), those that ended solved (`deflections`, and
    their share of its sessions), tickets that linked it (`links`, of which now
    resolved or closed: `resolved_links`) and the CSAT of the answers given in the
    window by tickets that ever linked it (share of scores 4-5)."""
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(_article_row)
    for key, title, source in _articles(conn, t, tenant):
        rows[key].update(title=title, source=source)
    for key, shown, viewed, sessions, solved in _exposures(conn, t, since, until, tenant):
        rows[key].update(shown=shown, viewed=viewed, sessions=sessions, deflections=solved,
                         deflection_rate=_share(solved, sessions))
    for key, links, resolved in _links(conn, t, since, until, tenant):
        rows[key].update(links=links, resolved_links=resolved)
    for key, answers, happy in _csat(conn, t, since, until, tenant):
        rows[key].update(csat_responses=answers, csat_percent=_share(happy, answers))
    return [{"tenant": key[0], "article_id": key[1], **row} for key, row in sorted(rows.items())]


def _article_row() -> dict[str, Any]:
    return {"title": None, "source": None, "shown": 0, "viewed": 0, "sessions": 0,
            "deflections": 0, "deflection_rate": None, "links": 0, "resolved_links": 0,
            "csat_responses": 0, "csat_percent": None}


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _articles(conn: Connection, t: Tables, tenant: str | None) -> list[Any]:
    c = t.kb_articles.c
    query = select(c.tenant, c.article_id, c.title, c.source)
    if tenant is not None:
        query = query.where(c.tenant == tenant)
    return [((r[0], r[1]), r[2], r[3]) for r in conn.execute(query)]


def _exposures(conn: Connection, t: Tables, since: datetime, until: datetime,
               tenant: str | None) -> list[Any]:
    e = t.kb_exposures.c
    solved = func.sum((e.outcome == "solved").cast(Integer()))
    query = (select(e.tenant, e.article_id, func.count(e.shown_rank), func.sum(e.viewed),
                    func.count(), solved)
             .where(e.at >= _text(since), e.at < _text(until))
             .group_by(e.tenant, e.article_id))
    if tenant is not None:
        query = query.where(e.tenant == tenant)
    return [((r[0], r[1]), int(r[2]), int(r[3] or 0), int(r[4]), int(r[5] or 0))
            for r in conn.execute(query)]


def _links(conn: Connection, t: Tables, since: datetime, until: datetime,
           tenant: str | None) -> list[Any]:
    a, k = t.articles.c, t.tickets.c
    done = func.sum(k.status.in_(("resolved", "closed")).cast(Integer()))
    query = (select(a.tenant, a.article_id, func.count(), done)
             .join_from(t.articles, t.tickets,
                        (a.tenant == k.tenant) & (a.ticket_id == k.ticket_id))
             .where(a.kind == "linked", a.at >= _text(since), a.at < _text(until))
             .group_by(a.tenant, a.article_id))
    if tenant is not None:
        query = query.where(a.tenant == tenant)
    return [((r[0], r[1]), int(r[2]), int(r[3] or 0)) for r in conn.execute(query)]


def _csat(conn: Connection, t: Tables, since: datetime, until: datetime,
          tenant: str | None) -> list[Any]:
    """(article, answers, scores 4-5) over the window's answers (by instant), each answer
    counted once for every article its ticket linked (by the ticket's key)."""
    s = t.satisfaction.c
    query = select(s.tenant, s.ticket_id, s.score).where(
        s.at >= _text(since), s.at < _text(until))
    if tenant is not None:
        query = query.where(s.tenant == tenant)
    answers = [(row[0], row[1], int(row[2])) for row in conn.execute(query)]
    linked: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in select_many(conn, t.articles, TICKET_KEY,
                           sorted({(owner, ticket) for owner, ticket, _ in answers})):
        if row["kind"] == "linked":
            linked[(row["tenant"], row["ticket_id"])].add(row["article_id"])
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for owner, ticket, score in answers:
        for article_id in linked[(owner, ticket)]:
            tally[(owner, article_id)][0] += 1
            tally[(owner, article_id)][1] += score >= 4
    return [(key, n, happy) for key, (n, happy) in sorted(tally.items())]


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
