"""Tamper evidence on every backend: rows of the event store edited, deleted and
reordered with SQL behind the application's back; `ticketflow verify` names each."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.support.builders import T0, command_line, create_payload
from tests.support.store_rows import StoreRows
from ticketflow.audit import event_id, verify_store
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.domain.streams import stream_uuid
from ticketflow.settings import Settings

STORY = [("m-2", "add_comment", "customer", {"body": "original words"}),
         ("m-3", "acknowledge", "agent", {}),
         ("m-4", "start_work", "agent", {})]


@pytest.fixture
def store(db_url: str) -> StoreRows:
    """Two tickets: T-1 with four events (created, comment, acknowledged, started)
    and T-2 with one, all intact."""
    with build_app(Settings(db=db_url)) as app:
        for ticket in ("T-1", "T-2"):
            app.apply(command_line(f"{ticket}-c", "create_ticket", ticket, T0, "customer",
                                   create_payload()))
        for minute, (message_id, type_, role, payload) in enumerate(STORY, start=1):
            assert app.apply(command_line(message_id, type_, "T-1", T0 + timedelta(
                minutes=minute), role, payload)).status == "accepted"
        assert verify_store(app) == []
    return StoreRows(db_url)


def verify(db_url: str, capsys: pytest.CaptureFixture[str], *ticket: str) -> tuple[int, Any]:
    """`ticketflow verify [ID] --json`, as the user runs it: (exit code, breaks)."""
    capsys.readouterr()
    code = main(["verify", *ticket, "--json", "--db", db_url])
    return code, json.loads(capsys.readouterr().out)["breaks"]


def named(breaks: list[dict[str, Any]]) -> list[tuple[str, int, str, str]]:
    return [(b["ticket_id"], b["version"], b["type"], b["problem"].split(":")[0])
            for b in breaks]


def unreadable(store: StoreRows) -> None:
    topic, _ = store.row("T-1", 3)
    store.put("T-1", 3, topic, b"\x00 not an event")


TAMPERING: dict[str, tuple[Callable[[StoreRows], None], tuple[str, int, str, str], str]] = {
    "an edited event": (lambda rows: rows.edit("T-1", 2, b"original words", b"softer words"),
                        ("T-1", 2, "CommentAdded", "edited"), "does not match the recomputed"),
    "an event deleted in the middle": (lambda rows: rows.delete("T-1", 2),
                                       ("T-1", 2, "CommentAdded", "missing"), "message m-2"),
    "the last event deleted": (lambda rows: rows.delete("T-1", 4),
                               ("T-1", 4, "WorkStarted", "missing"), "store ends at version 3"),
    "a reordered event": (lambda rows: rows.swap("T-1", 2, 3),
                          ("T-1", 2, "TicketAcknowledged", "reordered"), "recorded as version 3"),
    "a stream deleted whole": (lambda rows: rows.delete("T-2", 1),
                               ("T-2", 1, "TicketCreated", "missing"), "message T-2-c"),
    "a row that no longer decodes": (unreadable, ("T-1", 3, "?", "unreadable"), "do not decode"),
}


@pytest.mark.parametrize("tamper, expected, fragment", TAMPERING.values(), ids=TAMPERING.keys())
def test_verify_names_the_tampered_event(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str],
    tamper: Callable[[StoreRows], None], expected: tuple[str, int, str, str], fragment: str,
) -> None:
    tamper(store)
    code, breaks = verify(db_url, capsys)
    assert (code, named(breaks)) == (1, [expected])
    assert fragment in breaks[0]["problem"]
    assert breaks[0]["event_id"] == event_id(stream_uuid("ticket", "personalysispro", expected[0]),
                                            expected[1])
    assert verify(db_url, capsys, expected[0]) == (1, breaks)


def test_verify_of_one_ticket_sees_only_that_ticket(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str]
) -> None:
    store.delete("T-1", 4)
    assert verify(db_url, capsys, "T-2") == (0, [])
    assert verify(db_url, capsys, "T-1")[0] == 1


def test_verify_text_output_names_the_ticket_version_and_problem(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str]
) -> None:
    store.delete("T-1", 4)
    capsys.readouterr()
    assert main(["verify", "--db", db_url]) == 1
    out = capsys.readouterr().out
    assert "T-1" in out and "WorkStarted" in out and "missing" in out
