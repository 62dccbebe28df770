"""The knowledge base's read-model rows as pure functions of events (SPEC §11), and the
words a user's text is searched by."""

from __future__ import annotations

from typing import Any

from ticketflow.projections import article_search, knowledge


def envelope(type_: str, data: dict[str, Any], *, version: int = 1, stream: str = "KB-1",
             at: str = "2026-11-16T14:00:00+00:00", tenant: str = "personalysispro",
             ) -> dict[str, Any]:
    return {"type": type_, "tenant": tenant, "ticket_id": stream, "version": version,
            "occurred_at": at, "data": data}


TEXT = {"article_id": "KB-1", "title": "Exports time out", "body": "Raise the timeout.",
        "tags": ["export", "timeout"]}


def test_an_agents_article_is_its_latest_events_text() -> None:
    first = knowledge.agent_article(envelope("ArticleCreated", TEXT))
    later = knowledge.agent_article(envelope("ArticleUpdated", {**TEXT, "body": "Split it."},
                                             version=2))
    assert (first["title"], first["keywords"], first["source"], first["ticket_id"]) == (
        "Exports time out", "export timeout", "agent", None)
    assert later["body"] == "Split it." and later["precedence"] < first["precedence"]
    assert first["doc"] == later["doc"] == article_search.doc_id("personalysispro", "KB-1")


def test_a_published_article_is_the_tickets_subject_description_and_resolution() -> None:
    published = envelope("PublishedAsArticle", {"article_id": "KB-1"}, version=5,
                         stream="T-9", at="2026-11-17T10:00:00+00:00")
    row = knowledge.published_article(published, {"subject": "Logo blurry",
                                                  "description": "A PNG"}, "Use an SVG")
    assert (row["title"], row["body"], row["source"], row["ticket_id"]) == (
        "Logo blurry", "A PNG\n\nUse an SVG", "ticket", "T-9")
    agent = knowledge.agent_article(envelope("ArticleCreated", TEXT, version=900))
    assert agent["precedence"] < row["precedence"]  # an agent's article comes first
    earlier = knowledge.published_article({**published, "occurred_at": "2026-11-16T10:00:00"
                                                                       "+00:00"},
                                          {"subject": "s", "description": ""}, None)
    assert earlier["precedence"] < row["precedence"] and earlier["body"] == "s"


def test_a_session_exposes_what_it_showed_at_its_rank_and_what_was_opened() -> None:
    rows = knowledge.exposure_rows(envelope("SelfServiceRecorded", {
        "session_id": "SS-1", "articles_viewed": ["KB-3", "KB-1"], "outcome": "solved",
        "ticket_id": None, "suggestions_shown": ["KB-1", "KB-2", "KB-1"]}, stream="SS-1"))
    assert [(r["article_id"], r["shown_rank"], r["viewed"], r["outcome"]) for r in rows] == [
        ("KB-1", 1, 1, "solved"), ("KB-2", 2, 0, "solved"), ("KB-3", None, 1, "solved")]
    older = knowledge.exposure_rows(envelope("SelfServiceRecorded", {
        "session_id": "SS-2", "articles_viewed": [], "outcome": "ticket_created",
        "ticket_id": "T-1"}, stream="SS-2"))
    assert older == []  # a session from before suggestions were recorded


def test_a_new_tickets_subject_gives_its_words() -> None:
    created = envelope("TicketCreated", {"subject": "The export of the CSV times out 2x"},
                       stream="T-1")
    assert [r["term"] for r in knowledge.term_rows(created)] == ["export", "csv", "times", "2x"]
    assert knowledge.term_rows({**created, "type": "TicketResolved"}) == []


def test_a_users_text_is_cut_into_bounded_words_without_stop_words_or_syntax() -> None:
    assert article_search.terms('He said "NEAR(export* OR timeout)" AND 42 -password') == [
        "said", "near", "export", "timeout", "password"]
    assert article_search.terms("Ünïcode ÉTÉ naïve café") == ["ünïcode", "été", "naïve", "café"]
    assert article_search.terms("x" * 41 + " ok") == ["ok"]
    assert article_search.terms("a b c 1 22 333 _ __") == []
    assert article_search.terms("\x00\x1b[31mred\u202e") == ["31mred"]


def test_each_tenant_has_its_own_search_token_and_document_ids() -> None:
    assert article_search.scope_token("a") != article_search.scope_token("b")
    assert article_search.scope_token('x" OR scope:*').isalnum()
    assert article_search.doc_id("a", "KB-1") != article_search.doc_id("b", "KB-1")
    assert 0 <= article_search.doc_id("a", "KB-1") < 2**63
