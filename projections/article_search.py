"""Full-text search of the knowledge base by the database itself (SPEC §11).

SQLite: an FTS5 table (`rm_kb_search`, Porter stemmer) beside `rm_kb_articles`, one
row per article under a rowid derived from (tenant, article id), ranked by FTS5's
`bm25`. PostgreSQL: a GIN index on the articles' `tsvector` (the `english`
configuration), ranked by `ts_rank`. Nothing here ranks by hand; both weigh a title
above tags above the body, and both break ties by article id.

A user's text is never query syntax. It is cut into words here (`terms`: at most
`MAX_TERMS` distinct words of at most `MAX_TERM` characters from the first
`MAX_TEXT` characters, minus PostgreSQL's English stop words, so both backends look
for the same words), and each word is handed over as a value: double-quoted (quotes
doubled) in an FTS5 string, a bound parameter of `plainto_tsquery` on PostgreSQL.
The words are OR-ed: an article that matches more of them ranks higher. Every query
names its tenant: on SQLite the tenant is a token of the indexed `scope` column that
the query requires, so another tenant's articles are never even read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, text

#: The text searched: this many characters of it at most (a pasted log costs nothing).
MAX_TEXT = 4_000
#: At most this many distinct words, each at most this long.
MAX_TERMS = 32
MAX_TERM = 40
#: Relative weights of title, tags (keywords) and body on both backends.
WEIGHTS = {"title": 10.0, "keywords": 4.0, "body": 1.0}
PG_CONFIG = "english"
#: PostgreSQL's English stop words (`english.stop`, the Snowball list): dropped on both
#: backends, so a word PostgreSQL ignores is not a match on SQLite either.
_ENGLISH_STOP = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves what which who whom
this that these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about against
between into through during before after above below to from up down in out on off over
under again further then once here there when where why how all any both each few more
most other some such no nor not only own same so than too very s t can will just don
should now
"""
STOP_WORDS = frozenset(_ENGLISH_STOP.split())
_WORD = re.compile(r"[^\W_]+")


def terms(raw: str) -> list[str]:
    """The distinct searchable words of a user's text, in order (lower case)."""
    found: list[str] = []
    for match in _WORD.finditer(raw[:MAX_TEXT].lower()):
        word = match.group()
        if len(word) < 2 or len(word) > MAX_TERM or word in STOP_WORDS or word.isdigit():
            continue
        if word not in found:
            found.append(word)
            if len(found) == MAX_TERMS:
                break
    return found


def doc_id(tenant: str, article_id: str) -> int:
    """The article's row id in the search index: 63 bits of SHA-256 of its key (the same
    in every replay, so the index is a function of the articles)."""
    digest = hashlib.sha256(f"{tenant}\x00{article_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def scope_token(tenant: str) -> str:
    """The tenant as one FTS token (ids may hold any character)."""
    return "t" + hashlib.sha256(tenant.encode()).hexdigest()[:24]


def keywords(tags: Sequence[str]) -> str:
    return " ".join(tags)


# -- the index ------------------------------------------------------------------------


def search_table(suffix: str = "") -> str:
    return f"rm_kb_search{suffix}"


def install(conn: Connection, suffix: str = "") -> None:
    """Make the SQLite FTS5 table (PostgreSQL's GIN index is declared with the table)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            f'CREATE VIRTUAL TABLE IF NOT EXISTS "{search_table(suffix)}" USING fts5('
            "scope, title, keywords, body, tokenize = 'porter unicode61')")


def drop(conn: Connection, suffix: str) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{search_table(suffix)}"')


def swap(conn: Connection, suffix: str) -> None:
    """Put a rebuild's search table in place of the current one (inside the swap)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{search_table()}"')
        conn.exec_driver_sql(
            f'ALTER TABLE "{search_table(suffix)}" RENAME TO "{search_table()}"')


def reindex(conn: Connection, articles: str, suffix: str,
            keys: Iterable[tuple[str, str]]) -> None:
    """Write the index rows of these articles from their rows in `articles` (SQLite; on
    PostgreSQL the GIN index follows the table by itself)."""
    if conn.dialect.name != "sqlite":
        return
    table = search_table(suffix)
    for tenant, article_id in sorted(set(keys)):
        doc = doc_id(tenant, article_id)
        conn.exec_driver_sql(f'DELETE FROM "{table}" WHERE rowid = ?', (doc,))
        conn.exec_driver_sql(
            f'INSERT INTO "{table}" (rowid, scope, title, keywords, body)'
            f' SELECT doc, ?, title, keywords, body FROM "{articles}"'
            " WHERE tenant = ? AND article_id = ?", (scope_token(tenant), tenant, article_id))


def pg_document() -> str:
    """The weighted tsvector of an article row (the GIN index's expression: a query
    must spell it exactly so for the index to serve it)."""
    return (f"(setweight(to_tsvector('{PG_CONFIG}'::regconfig, title), 'A')"
            f" || setweight(to_tsvector('{PG_CONFIG}'::regconfig, keywords), 'B')"
            f" || setweight(to_tsvector('{PG_CONFIG}'::regconfig, body), 'D'))")


# -- queries ----------------------------------------------------------------------------


def search(conn: Connection, articles: str, tenant: str, raw: str,
           limit: int) -> list[dict[str, Any]]:
    """The tenant's articles matching any word of `raw`, best first (ties by article
    id), at most `limit`: [{"article_id", "title", "rank"}]. `rank` is 1, 2, …"""
    words = terms(raw)
    if not words or limit < 1:
        return []
    if conn.dialect.name == "sqlite":
        found = _sqlite(conn, articles, tenant, words, limit)
    else:
        found = _postgres(conn, articles, tenant, words, limit)
    return [{"article_id": article_id, "title": title, "rank": i}
            for i, (article_id, title) in enumerate(found, start=1)]


def _sqlite(conn: Connection, articles: str, tenant: str, words: list[str],
            limit: int) -> list[tuple[str, str]]:
    match = (f"scope : {scope_token(tenant)} AND {{title keywords body}} : ("
             + " OR ".join(_quoted(word) for word in words) + ")")
    weights = ", ".join(str(w) for w in (0.0, *WEIGHTS.values()))
    rows = conn.exec_driver_sql(
        f'SELECT a.article_id, a.title FROM "{search_table(_suffix(articles))}" AS s'
        f' JOIN "{articles}" AS a ON a.doc = s.rowid'
        f' WHERE s."{search_table(_suffix(articles))}" MATCH ? AND a.tenant = ?'
        f' ORDER BY bm25(s."{search_table(_suffix(articles))}", {weights}), a.article_id'
        " LIMIT ?", (match, tenant, limit))
    return [(row[0], row[1]) for row in rows]


def _postgres(conn: Connection, articles: str, tenant: str, words: list[str],
              limit: int) -> list[tuple[str, str]]:
    query = " || ".join(f"plainto_tsquery('{PG_CONFIG}'::regconfig, :w{i})"
                        for i in range(len(words)))
    a, b, c, d = (WEIGHTS["body"] / 10, 0.0, WEIGHTS["keywords"] / 10,
                  WEIGHTS["title"] / 10)  # ts_rank's {D, C, B, A}
    rows = conn.execute(text(
        f'SELECT article_id, title FROM "{articles}", (SELECT {query} AS query) AS q'
        f" WHERE tenant = :tenant AND {pg_document()} @@ q.query"
        f" ORDER BY ts_rank('{{{a}, {b}, {c}, {d}}}', {pg_document()}, q.query) DESC,"
        " article_id LIMIT :limit"),
        {"tenant": tenant, "limit": limit, **{f"w{i}": w for i, w in enumerate(words)}})
    return [(row[0], row[1]) for row in rows]


def _quoted(word: str) -> str:
    """An FTS5 string: the word as a phrase of its own, never an operator."""
    return '"' + word.replace('"', '""') + '"'


def _suffix(articles: str) -> str:
    return articles.removeprefix("rm_kb_articles")
