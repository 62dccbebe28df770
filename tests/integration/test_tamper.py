"""Tamper evidence on every backend: rows of the event store edited, deleted and
reordered, snapshots forged and timeline read-model rows changed with SQL behind the
application's back; `ticketflow verify` names each, and no forged snapshot is obeyed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from eventsourcing.domain import Snapshot

from tests.support.builders import T0, command_line, create_payload
from tests.support.store_rows import StoreRows, TimelineRows
from ticketflow import verification
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.domain.streams import stream_uuid
from ticketflow.settings import Settings
from ticketflow.verification import event_id, verify_store

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


# -- snapshots: a cache of a fold, never a source of truth -----------------------------


def forge_snapshot(db_url: str, store: StoreRows, ticket_id: str, version: int | None = None,
                   **changes: Any) -> int:
    """INSERT a snapshot row of the ticket as it truly stands, with `changes` made to its
    state, at `version` (default: the ticket's current version); returns that version."""
    with build_app(Settings(db=db_url)) as app:
        ticket = app.load_ticket(ticket_id)
        snapshot = Snapshot.take(ticket)
        snapshot.state.update(changes)
        stored = app.mapper.to_stored_event(snapshot)
    at = ticket.version if version is None else version
    store.insert_snapshot(ticket_id, at, stored.topic, stored.state)
    return at


def state_of(db_url: str, capsys: pytest.CaptureFixture[str], ticket_id: str) -> Any:
    capsys.readouterr()
    assert main(["ticket", ticket_id, "--json", "--db", db_url]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_forged_snapshot_is_neither_served_nor_obeyed_and_verify_names_it(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str]
) -> None:
    at = forge_snapshot(db_url, store, "T-1", status="closed", tenant="growgrebuddy")
    shown = state_of(db_url, capsys, "T-1")
    assert (shown["status"], shown["tenant"], shown["version"]) == (
        "in_progress", "personalysispro", 4)
    code, breaks = verify(db_url, capsys)
    assert (code, named(breaks)) == (1, [("T-1", at, "Snapshot", "forged or stale snapshot")])
    assert "tenant" in breaks[0]["problem"]
    with build_app(Settings(db=db_url)) as app:  # a fresh process: nothing cached
        outcome = app.apply(command_line("m-5", "resolve", "T-1", T0 + timedelta(minutes=9),
                                         "agent", {"resolution": "fixed"}))
    assert (outcome.status, outcome.events) == ("accepted", ["TicketResolved"])


def test_a_snapshot_whose_state_is_not_the_fold_of_its_events_is_named(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even with the true head hash and identity copied in: verify folds the events."""
    at = forge_snapshot(db_url, store, "T-1", status="closed")
    code, breaks = verify(db_url, capsys, "T-1")
    assert (code, named(breaks)) == (1, [("T-1", at, "Snapshot", "forged or stale snapshot")])
    assert "status" in breaks[0]["problem"]


def test_a_snapshot_with_the_true_identity_and_a_forged_status_is_neither_served_nor_obeyed(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Head hash, tenant and ticket id copied from the true snapshot: placement passes,
    so a load folds the events once, finds another status, and ignores the row."""
    forge_snapshot(db_url, store, "T-1", status="closed", closed_at=T0)
    assert state_of(db_url, capsys, "T-1")["status"] == "in_progress"
    assert "its closed_at, status differ from the fold" in caplog.text
    with build_app(Settings(db=db_url)) as app:  # a fresh process: nothing vouched for
        refused = app.apply(command_line("m-5", "reopen", "T-1", T0 + timedelta(minutes=8),
                                         "customer", {"reason": "not closed at all"}))
        outcome = app.apply(command_line("m-6", "resolve", "T-1", T0 + timedelta(minutes=9),
                                         "agent", {"resolution": "fixed"}))
    assert refused.status == "rejected"  # in progress, not closed: nothing to reopen
    assert (outcome.status, outcome.events) == ("accepted", ["TicketResolved"])


def test_a_load_folds_a_snapshot_it_did_not_write_once_and_its_own_never(
    db_url: str, store: StoreRows, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What checking costs: one fold for a row no one vouched for, none after it; none
    for a row this process wrote; one again for a row changed behind its back."""
    with build_app(Settings(db=db_url)) as app:
        folds = count_folds(app, monkeypatch)
        app.apply(command_line("L-c", "create_ticket", "L-1", T0, "customer",
                               create_payload()))
        app.apply_batch(comments("L-1", 101))  # a snapshot at version 100, written here
        for _ in range(2):
            app.repository.get(L_1)
        assert folds == []
    at = forge_snapshot(db_url, store, "L-1")  # the true state, by another process
    with build_app(Settings(db=db_url)) as app:
        folds = count_folds(app, monkeypatch)
        for _ in range(3):
            assert app.repository.get(L_1).version == at
        assert folds == [at]
        forged = forge_snapshot(db_url, store, "L-1", status="closed")
        assert forged == at  # a new row at the same version: other bytes
        assert app.repository.get(L_1).status == \
            "created"
        assert folds == [at, at]


L_1 = stream_uuid("ticket", "personalysispro", "L-1")


def count_folds(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The versions the snapshot store folds up to, from now on."""
    folds: list[int] = []
    fold_at = app.snapshots.fold_at

    def counted(uuid: Any, version: int) -> Any:
        folds.append(version)
        return fold_at(uuid, version)
    monkeypatch.setattr(app.snapshots, "fold_at", counted)
    return folds


def comments(ticket_id: str, count: int) -> list[str]:
    return [command_line(f"{ticket_id}-{n}", "add_comment", ticket_id,
                         T0 + timedelta(seconds=n + 1), "customer",
                         {"body": f"comment {n}", "visibility": "public"})
            for n in range(count)]


@pytest.mark.parametrize("version, fragment", [(3, "head hash"), (9, "ends at version 4")],
                         ids=["stale, at another version", "beyond the last event"])
def test_a_misplaced_snapshot_is_ignored_and_named(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str], version: int,
    fragment: str,
) -> None:
    forge_snapshot(db_url, store, "T-1", version=version)  # the true state, at v4
    assert state_of(db_url, capsys, "T-1")["version"] == 4
    code, breaks = verify(db_url, capsys)
    assert (code, named(breaks)) == (1, [("T-1", version, "Snapshot",
                                          "forged or stale snapshot")])
    assert fragment in breaks[0]["problem"]


def test_a_snapshot_of_a_ticket_without_events_makes_no_ticket(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str]
) -> None:
    with build_app(Settings(db=db_url)) as app:
        snapshot = Snapshot.take(app.load_ticket("T-2"))
        snapshot.state["stream_id"] = "T-9"
        stored = app.mapper.to_stored_event(snapshot)
    store.insert_snapshot("T-9", 1, stored.topic, stored.state)
    capsys.readouterr()
    assert main(["ticket", "T-9", "--json", "--db", db_url]) == 1
    code, breaks = verify(db_url, capsys, "T-9")
    assert (code, named(breaks)) == (1, [("T-9", 1, "Snapshot", "forged or stale snapshot")])


def test_snapshots_the_engine_took_verify_and_serve(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Snapshots every 100 events, taken by this or an earlier release (they have always
    carried the head hash, tenant and ticket id): equal to the fold, so accepted."""
    with build_app(Settings(db=db_url)) as app:
        app.apply(command_line("L-c", "create_ticket", "L-1", T0, "customer",
                               create_payload()))
        app.apply_batch(comments("L-1", 230))
        assert app.snapshots is not None
        assert [s.originator_version for s in app.snapshots.get(app.load_ticket("L-1").id)] \
            == [100, 200]
    assert verify(db_url, capsys, "L-1") == (0, [])
    assert state_of(db_url, capsys, "L-1")["version"] == 231


# -- the timeline read model: what `timeline` and `ticket --as-of` show -----------------


@pytest.fixture
def timeline_rows(db_url: str, store: StoreRows,
                  capsys: pytest.CaptureFixture[str]) -> TimelineRows:
    """The read models caught up (as `ticketflow timeline` does), for SQL on their rows."""
    assert main(["timeline", "T-1", "--json", "--db", db_url]) == 0
    capsys.readouterr()
    return TimelineRows(db_url)


ROW_TAMPERING: dict[str, tuple[Callable[[TimelineRows], None], tuple[str, int, str, str],
                               str]] = {
    "an edited row": (lambda rows: rows.edit("T-1", 2, data={"body": "softer words",
                                                             "visibility": "public"}),
                      ("T-1", 2, "CommentAdded", "timeline row edited"), "data"),
    "an edited hash": (lambda rows: rows.edit("T-1", 3, hash="0" * 64),
                       ("T-1", 3, "TicketAcknowledged", "timeline row edited"), "hash"),
    "a row deleted in the middle": (lambda rows: rows.delete("T-1", 2),
                                    ("T-1", 2, "CommentAdded", "timeline row missing"),
                                    "no row"),
    "the last row deleted": (lambda rows: rows.delete("T-1", 4),
                             ("T-1", 4, "WorkStarted", "timeline row missing"), "no row"),
    "an extra row": (lambda rows: rows.copy("T-1", 4, to_version=5),
                     ("T-1", 5, "WorkStarted", "timeline row extra"), "ends at version 4"),
}


@pytest.mark.parametrize("tamper, expected, fragment", ROW_TAMPERING.values(),
                         ids=ROW_TAMPERING.keys())
def test_verify_compares_the_timeline_read_model_with_the_store(
    db_url: str, timeline_rows: TimelineRows, capsys: pytest.CaptureFixture[str],
    tamper: Callable[[TimelineRows], None], expected: tuple[str, int, str, str],
    fragment: str,
) -> None:
    tamper(timeline_rows)
    code, breaks = verify(db_url, capsys)
    assert (code, named(breaks)) == (1, [expected])
    assert fragment in breaks[0]["problem"]
    assert verify(db_url, capsys, "T-1") == (1, breaks)


def test_rows_of_a_ticket_the_store_does_not_hold_are_named(
    db_url: str, timeline_rows: TimelineRows, capsys: pytest.CaptureFixture[str]
) -> None:
    timeline_rows.copy("T-1", 1, to_version=1, to_ticket="T-9")
    code, breaks = verify(db_url, capsys)
    assert (code, named(breaks)) == (1, [("T-9", 1, "TicketCreated", "timeline row extra")])
    assert verify(db_url, capsys, "T-9") == (1, breaks)


def test_events_the_read_model_has_not_reached_yet_are_not_differences(
    db_url: str, timeline_rows: TimelineRows, capsys: pytest.CaptureFixture[str]
) -> None:
    with build_app(Settings(db=db_url)) as app:
        assert app.apply(command_line("m-5", "resolve", "T-1", T0 + timedelta(minutes=9),
                                      "agent", {"resolution": "fixed"})).status == "accepted"
    assert verify(db_url, capsys) == (0, [])
    timeline_rows.delete("T-1", 2)
    assert named(verify(db_url, capsys)[1]) == [("T-1", 2, "CommentAdded",
                                                 "timeline row missing")]


@pytest.mark.parametrize("tamper, expected, fragment", TAMPERING.values(), ids=TAMPERING.keys())
def test_verify_reads_the_store_in_pages(
    db_url: str, store: StoreRows, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tamper: Callable[[StoreRows], None],
    expected: tuple[str, int, str, str], fragment: str,
) -> None:
    """Pages of two events: every finding is the same across a page boundary."""
    monkeypatch.setattr(verification, "PAGE", 2)
    tamper(store)
    code, breaks = verify(db_url, capsys, expected[0])
    assert (code, named(breaks)) == (1, [expected])
    assert fragment in breaks[0]["problem"]
