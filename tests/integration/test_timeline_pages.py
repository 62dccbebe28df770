"""The timeline read model a page at a time: `ticketflow timeline ID --after V --limit N`
(the HTTP API's cursor), on every backend. Pages give every event exactly once, in
order; a cursor stays valid while the ticket grows; limits are enforced."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.builders import T0, command_line, create_payload
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.domain.errors import NotFound
from ticketflow.projections.db import engine_for
from ticketflow.projections.runner import Projector
from ticketflow.projections.timeline import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ticket_as_of,
    timeline_page,
    version_at,
)
from ticketflow.queries import Queries, ReadModels
from ticketflow.settings import Settings

EVENTS = 57


def add_comments(db_url: str, ticket_id: str, count: int, first: int = 0) -> None:
    """`count` customer comments, a second apart, after the ticket's own events."""
    with build_app(Settings(db=db_url)) as app:
        if not first:
            app.apply(command_line(f"{ticket_id}-c", "create_ticket", ticket_id, T0, "customer",
                                   create_payload()))
        outcomes = app.apply_batch([
            command_line(f"{ticket_id}-{n}", "add_comment", ticket_id,
                         T0 + timedelta(seconds=n + 1), "customer",
                         {"body": f"comment {n}", "visibility": "public"})
            for n in range(first, first + count)])
        assert {o.status for o in outcomes} == {"accepted"}


def caught_up(db_url: str) -> Projector:
    with build_app(Settings(db=db_url)) as app:
        projector = Projector(app, engine_for(db_url))
        projector.catch_up()
    return projector


@pytest.fixture(scope="module")
def long_ticket(tmp_path_factory: pytest.TempPathFactory) -> Projector:
    """P-1 with EVENTS events (created, then comments), projected (SQLite)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'ticketflow.db'}"
    add_comments(url, "P-1", EVENTS - 1)
    return caught_up(url)


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, EVENTS + 3), start=st.integers(0, EVENTS + 3))
def test_pages_give_every_event_exactly_once_in_order(
    long_ticket: Projector, limit: int, start: int
) -> None:
    versions: list[int] = []
    after: int | None = start
    with long_ticket.engine.connect() as conn:
        while after is not None:
            page = timeline_page(conn, long_ticket.t, "personalysispro", "P-1", after=after,
                                 limit=limit)
            assert len(page.events) <= limit
            got = [e["version"] for e in page.events]
            assert page.next == (got[-1] if got and got[-1] < EVENTS else None)
            versions += got
            after = page.next
    assert versions == list(range(start + 1, EVENTS + 1))


def timeline(db_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["timeline", *args, "--db", db_url])
    return code, capsys.readouterr().out


def test_a_cursor_stays_valid_while_the_ticket_grows(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_comments(db_url, "P-2", 4)
    code, out = timeline(db_url, capsys, "P-2", "--limit", "3", "--json")
    first = json.loads(out)
    assert (code, [e["version"] for e in first["events"]], first["next"]) == (0, [1, 2, 3], 3)
    add_comments(db_url, "P-2", 3, first=4)  # versions 6 to 8, recorded meanwhile
    code, out = timeline(db_url, capsys, "P-2", "--after", "3", "--limit", "3", "--json")
    second = json.loads(out)
    assert ([e["version"] for e in second["events"]], second["next"]) == ([4, 5, 6], 6)
    code, out = timeline(db_url, capsys, "P-2", "--after", "6", "--limit", "3", "--json")
    last = json.loads(out)
    assert ([e["version"] for e in last["events"]], last["next"]) == ([7, 8], None)


@pytest.mark.parametrize("arguments", [("--limit", "0"), ("--limit", str(MAX_LIMIT + 1)),
                                       ("--after", "-1"), ("--limit", "ten")])
def test_a_limit_or_cursor_out_of_range_is_a_usage_error(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], arguments: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["timeline", "P-1", *arguments, "--db", sqlite_url])
    assert exited.value.code == 2
    assert "whole number" in capsys.readouterr().err


def test_without_a_limit_a_page_holds_the_default_and_says_how_to_go_on(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_comments(sqlite_url, "P-3", DEFAULT_LIMIT + 1)
    page = json.loads(timeline(sqlite_url, capsys, "P-3", "--json")[1])
    assert (len(page["events"]), page["next"]) == (DEFAULT_LIMIT, DEFAULT_LIMIT)
    code, out = timeline(sqlite_url, capsys, "P-3", "--after", "990", "--limit", "5")
    assert code == 0 and "versions 991 to 995" in out
    assert "ticketflow timeline P-3 --after 995 --limit 5" in out
    code, out = timeline(sqlite_url, capsys, "P-3", "--after", str(DEFAULT_LIMIT))
    assert "versions 1001 to 1002" in out and "--after" not in out


def test_all_streams_every_event_as_json_lines(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_comments(sqlite_url, "P-4", 6)
    code, out = timeline(sqlite_url, capsys, "P-4", "--all", "--limit", "2", "--json")
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert (code, [e["version"] for e in lines]) == (0, list(range(1, 8)))
    code, out = timeline(sqlite_url, capsys, "P-4", "--all", "--after", "5", "--json")
    assert [json.loads(line)["version"] for line in out.splitlines()] == [6, 7]


def test_an_unknown_ticket_is_not_found_on_any_page(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_comments(sqlite_url, "P-5", 1)
    for args in (("P-404",), ("P-404", "--after", "3"), ("P-404", "--all")):
        code, out = timeline(sqlite_url, capsys, *args, "--json")
        assert (code, json.loads(out)["error"]["code"]) == (1, "not_found")
    code, out = timeline(sqlite_url, capsys, "P-5", "--after", "9", "--json")
    assert (code, json.loads(out)) == (0, {"events": [], "next": None})


def test_a_long_ticket_as_of_any_instant_is_its_timelines_fold(tmp_path: Any) -> None:
    """`Queries.ticket(as_of=…)` finds the version by a search over the timeline and
    loads it from its snapshot: at every instant (before, at and between events, with
    several events at one instant) it equals the fold of the timeline's rows and the
    event store's own fold by instant."""
    url = f"sqlite:///{tmp_path / 'ticketflow.db'}"
    ticket = "A-1"
    with build_app(Settings(db=url)) as app:
        app.apply(command_line(f"{ticket}-c", "create_ticket", ticket, T0, "customer",
                               create_payload()))
        app.apply(command_line(f"{ticket}-a", "acknowledge", ticket,
                               T0 + timedelta(seconds=1), "agent", {}))
        outcomes = app.apply_batch([  # three comments an instant, past two snapshots
            command_line(f"{ticket}-{n}", "add_comment", ticket,
                         T0 + timedelta(seconds=2 + n // 3), "customer",
                         {"body": f"comment {n}", "visibility": "public"})
            for n in range(240)])
        assert {o.status for o in outcomes} == {"accepted"}
        projector = Projector(app, engine_for(url))
        projector.catch_up()
        queries = Queries(app, ReadModels(app, engine_for(url), projector=projector))
        instants = [T0 + timedelta(seconds=s) for s in range(84)]
        probes = [T0 - timedelta(seconds=1), *instants,
                  *(at + timedelta(milliseconds=500) for at in instants[::7]),
                  T0 + timedelta(days=3)]
        with projector.engine.connect() as conn:
            for at in probes:
                if at < T0:
                    with pytest.raises(NotFound, match="did not exist yet"):
                        queries.ticket(ticket, as_of=at)
                    continue
                found, _ = queries.ticket(ticket, as_of=at)
                folded = ticket_as_of(conn, projector.t, "personalysispro", ticket, at)
                assert found.state() == folded.state() == app.load_ticket(ticket, at).state()
                assert found.version == version_at(conn, projector.t, "personalysispro",
                                                   ticket, at)
