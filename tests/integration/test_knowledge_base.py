"""The knowledge base on every backend (SPEC §11): articles written by agents or
published from a ticket, searched by the database itself with one ranking contract,
tenant by tenant, whatever a user types; deflection recorded per article."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.support.builders import T0, command_line, create_payload
from tests.support.knowledge import (
    CORPUS,
    EXPECTED,
    GB,
    PP,
    article_command,
    corpus_commands,
    session_command,
)
from tests.support.tenants import fixed_clock
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.projections import article_search
from ticketflow.projections.db import engine_for
from ticketflow.projections.replay import rebuild
from ticketflow.projections.runner import Projector
from ticketflow.queries import Queries, ReadModels, Scope
from ticketflow.settings import Settings

HOSTILE = [
    'export" OR "password',  # a quote to close the phrase, an operator after it
    '"unbalanced export',
    "export*", "*", "NEAR(export timeout)", "export OR password", "export AND NOT password",
    "title:password", "{title}: password", "^export", "-password", "export:*", "export & !x",
    "'; DROP TABLE rm_kb_articles; --", "export\x00timeout\x1b[31m\u202e", "\\\"export\\\"",
    "(((((export", "export NOT", "OR", "AND", "NOT", '""', "",
]


@pytest.fixture
def app(db_url: str) -> Iterator[TicketingApp]:
    with build_app(Settings(db=db_url), clock=fixed_clock) as app:
        for command in corpus_commands():
            assert app.apply(command).status == "accepted"
        yield app


def queries(app: TicketingApp, db_url: str, tenant: str | None = PP) -> Queries:
    return Queries(app, ReadModels(app, engine_for(db_url)), Scope(tenant))


def ids(found: dict[str, object]) -> list[str]:
    return [s["article_id"] for s in found["suggestions"]]  # type: ignore[attr-defined]


def test_search_ranks_the_fixed_corpus_in_the_contracts_order(app: TicketingApp,
                                                              db_url: str) -> None:
    ask = queries(app, db_url)
    for text, expected in EXPECTED.items():
        assert ids(ask.suggest(text)) == expected, text
    assert [s["rank"] for s in ask.suggest("webhook")["suggestions"]] == [1, 2]


def test_suggestions_are_at_most_five(app: TicketingApp, db_url: str) -> None:
    everything = " ".join(title for title, _, _ in CORPUS.values())
    found = queries(app, db_url).suggest(everything, limit=50)
    assert len(found["suggestions"]) == 5 and len(CORPUS) == 6


def test_another_tenants_articles_are_never_found(app: TicketingApp, db_url: str) -> None:
    assert ids(queries(app, db_url, GB).suggest("export timeout password webhook")) == []
    assert app.apply(article_command("g-1", "create_article", "KB-A", T0, {
        "title": "Exports everywhere", "body": "export export export"}, tenant=GB)
    ).status == "accepted"
    assert ids(queries(app, db_url, GB).suggest("export")) == ["KB-A"]
    found = queries(app, db_url).suggest("export")
    assert ids(found) == ["KB-A", "KB-C"]
    assert found["suggestions"][0]["title"] == "Exports time out"  # its own KB-A
    with pytest.raises(Exception, match="confined"):
        queries(app, db_url, GB).suggest("export", tenant=PP)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_users_text_is_only_words_never_search_syntax(app: TicketingApp, db_url: str,
                                                        text: str) -> None:
    ask = queries(app, db_url)
    plain = " ".join(article_search.terms(text))
    assert ids(ask.suggest(text)) == ids(ask.suggest(plain))


def test_a_huge_text_is_searched_by_its_first_words(app: TicketingApp, db_url: str) -> None:
    huge = "password " + "x" * 1_000_000 + " export"
    assert article_search.terms(huge) == ["password"]
    assert ids(queries(app, db_url).suggest(huge)) == ["KB-B"]
    many = " ".join(f"w{n}" for n in range(10_000)) + " password"
    assert len(article_search.terms(many)) == article_search.MAX_TERMS
    assert ids(queries(app, db_url).suggest(many)) == []  # past the 32 words it reads


def test_an_update_is_found_by_its_new_words_and_not_its_old(app: TicketingApp,
                                                            db_url: str) -> None:
    outcome = app.apply(article_command("u-1", "update_article", "KB-B",
                                        T0 + timedelta(hours=1),
                                        {"body": "Passwords expire yearly; renew it."}))
    assert (outcome.status, outcome.events) == ("accepted", ["ArticleUpdated"])
    ask = queries(app, db_url)
    assert ids(ask.suggest("yearly")) == ["KB-B"]
    assert ids(ask.suggest("sign-in link")) == []
    assert ids(ask.suggest("password")) == ["KB-B"]  # the title stayed


@pytest.mark.parametrize(("kind", "payload", "role", "code"), [
    ("update_article", {"title": "Reset a password"}, "agent", "policy_violation"),
    ("update_article", {"title": "x"}, "customer", "forbidden"),
    ("create_article", {"title": "again", "body": "b"}, "agent", "already_exists"),
    ("create_article", {"title": "", "body": "b"}, "agent", "invalid_message"),
])
def test_article_commands_are_refused_with_the_reason(
    app: TicketingApp, kind: str, payload: dict[str, str], role: str, code: str,
) -> None:
    outcome = app.apply(article_command("r-1", kind, "KB-B", T0 + timedelta(hours=1),
                                        payload, role=role))
    assert (outcome.status, outcome.error and outcome.error["code"]) == ("rejected", code)


def test_an_update_of_no_article_is_not_found(app: TicketingApp) -> None:
    outcome = app.apply(article_command("r-2", "update_article", "KB-NONE", T0, {"body": "x"}))
    assert outcome.error and outcome.error["code"] == "not_found"


def published_story(app: TicketingApp, article_id: str = "KB-PUB",
                    ticket_id: str = "T-9") -> None:
    steps = [("create_ticket", "customer", create_payload(subject="Survey logo is blurry",
                                                          description="Uploaded a PNG")),
             ("resolve", "agent", {"resolution": "Upload an SVG logo instead"}),
             ("consent_to_publish", "customer", {}),
             ("publish_as_article", "agent", {"article_id": article_id})]
    for n, (kind, role, payload) in enumerate(steps):
        outcome = app.apply(command_line(f"p-{article_id}-{n}", kind, ticket_id,
                                         T0 + timedelta(minutes=10 + n), role, payload))
        assert outcome.status == "accepted", outcome


def test_an_article_published_from_a_ticket_is_found_by_its_text(app: TicketingApp,
                                                                 db_url: str) -> None:
    published_story(app)
    ask = queries(app, db_url)
    assert ids(ask.suggest("blurry logo")) == ["KB-PUB"]
    assert ids(ask.suggest("svg")) == ["KB-PUB"]  # the resolution is its body


def test_an_agents_article_is_kept_before_a_publication_under_its_id(
    app: TicketingApp, db_url: str,
) -> None:
    published_story(app, article_id="KB-B")  # the id of an agent's article
    ask = queries(app, db_url)
    assert ids(ask.suggest("blurry logo")) == []
    assert ids(ask.suggest("password")) == ["KB-B"]


def test_deflection_is_recorded_per_article_from_what_sessions_showed(
    app: TicketingApp, db_url: str,
) -> None:
    at = T0 + timedelta(hours=2)
    sessions = [
        session_command("s-1", "SS-1", at, outcome="solved", shown=["KB-A", "KB-C"],
                        viewed=["KB-A"]),
        session_command("s-2", "SS-2", at, outcome="solved", shown=["KB-A"], viewed=[]),
        session_command("s-3", "SS-3", at, outcome="ticket_created", shown=["KB-A", "KB-B"],
                        viewed=["KB-B"], ticket_id="T-5"),
    ]
    for command in sessions:
        assert app.apply(command).status == "accepted"
    report = queries(app, db_url).report_articles(T0.date(), T0.date() + timedelta(days=1))
    rows = {row["article_id"]: row for row in report["rows"]}
    assert (rows["KB-A"]["shown"], rows["KB-A"]["viewed"], rows["KB-A"]["sessions"],
            rows["KB-A"]["deflections"], rows["KB-A"]["deflection_rate"]) == (3, 1, 3, 2, 66.7)
    assert (rows["KB-B"]["sessions"], rows["KB-B"]["deflections"],
            rows["KB-B"]["deflection_rate"]) == (1, 0, 0.0)
    assert (rows["KB-C"]["deflections"], rows["KB-D"]["sessions"]) == (1, 0)
    assert rows["KB-D"]["deflection_rate"] is None
    later = queries(app, db_url).report_articles(date(2027, 1, 1), date(2027, 2, 1))
    assert all(row["sessions"] == 0 for row in later["rows"])


def test_a_replay_rebuilds_the_knowledge_base_and_its_search(app: TicketingApp,
                                                             db_url: str) -> None:
    published_story(app)
    app.apply(article_command("u-2", "update_article", "KB-D", T0 + timedelta(hours=1),
                              {"tags": ["performance", "charts"]}))
    assert app.apply(session_command("s-9", "SS-9", T0 + timedelta(hours=2), outcome="solved",
                                     shown=["KB-D", "KB-A"], viewed=["KB-D"])).status \
        == "accepted"
    ask = queries(app, db_url)
    texts = [*EXPECTED, "blurry logo", "charts"]
    before = [ids(ask.suggest(text)) for text in texts]
    window = (T0.date(), T0.date() + timedelta(days=1))
    effect = ask.report_articles(*window)
    assert before[-2:] == [["KB-PUB"], ["KB-D"]]
    assert [r["deflections"] for r in effect["rows"] if r["article_id"] in ("KB-A", "KB-D")] \
        == [1, 1]
    assert rebuild(app, engine_for(db_url)) > 0
    again = queries(app, db_url)
    assert [ids(again.suggest(text)) for text in texts] == before
    assert again.report_articles(*window) == effect


def test_the_articles_are_the_same_whatever_order_the_streams_are_projected_in(
    app: TicketingApp, db_url: str,
) -> None:
    published_story(app, article_id="KB-B", ticket_id="T-8")  # an agent's article id
    later = [("create_ticket", "customer", create_payload(subject="Second logo question")),
             ("resolve", "agent", {"resolution": "SVG again"}),
             ("consent_to_publish", "customer", {}),
             ("publish_as_article", "agent", {"article_id": "KB-PUB"})]
    for n, (kind, role, payload) in enumerate(later):  # recorded first, published later
        assert app.apply(command_line(f"q-{n}", kind, "T-10", T0 + timedelta(hours=3, minutes=n),
                                      role, payload)).status == "accepted"
    published_story(app, article_id="KB-PUB")
    envelopes = [app.event_log.envelope_of(r) for r in app.event_log.stream_records()]
    streams: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for e in envelopes:
        kind = "article" if str(e["type"]).startswith("Article") and e["type"] != \
            "ArticleLinked" else "ticket"
        streams.setdefault((kind, str(e["tenant"]), str(e["ticket_id"])), []).append(e)
    engine = engine_for(db_url)
    found = []
    for suffix, order in (("__a", envelopes),
                          ("__b", [e for s in reversed(list(streams.values())) for e in s])):
        projector = Projector(app, engine, suffix=suffix, private=True)
        with engine.begin() as conn:
            for envelope in order:  # one at a time: each stream in its own order
                projector.apply(conn, [envelope])
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(projector.t.kb_articles).order_by(projector.t.kb_articles.c.article_id))]
            hits = [article_search.search(conn, projector.t.kb_articles.name, PP, text, 5)
                    for text in (*EXPECTED, "logo", "svg")]
        found.append((rows, hits))
        projector.t.metadata.drop_all(engine)
    assert found[0] == found[1]
    rows = {row["article_id"]: row for row in found[0][0]}
    assert (rows["KB-B"]["source"], rows["KB-PUB"]["ticket_id"]) == ("agent", "T-9")


def test_effectiveness_counts_links_and_the_csat_of_the_tickets_that_linked(
    app: TicketingApp, db_url: str,
) -> None:
    stories = {"T-1": (["KB-A", "KB-A"], 5), "T-2": (["KB-A", "KB-B"], 2), "T-3": (["KB-B"], None)}
    for ticket_id, (links, score) in stories.items():
        steps: list[tuple[str, str, dict[str, object]]] = [
            ("create_ticket", "customer", create_payload())]
        steps += [("link_article", "agent", {"article_id": a}) for a in links]
        steps.append(("resolve", "agent", {"resolution": "done"}))
        if score is not None:
            steps.append(("record_satisfaction", "customer", {"score": score}))
        for n, (kind, role, payload) in enumerate(steps):
            assert app.apply(command_line(f"{ticket_id}-{n}", kind, ticket_id,
                                          T0 + timedelta(hours=1, minutes=n), role, payload)
                             ).status == "accepted"
    report = queries(app, db_url).report_articles(T0.date(), T0.date() + timedelta(days=1))
    rows = {row["article_id"]: row for row in report["rows"]}
    assert [(rows[a]["links"], rows[a]["resolved_links"], rows[a]["csat_responses"],
             rows[a]["csat_percent"]) for a in ("KB-A", "KB-B", "KB-C")] == [
        (3, 3, 2, 50.0), (2, 2, 1, 0.0), (0, 0, 0, None)]
