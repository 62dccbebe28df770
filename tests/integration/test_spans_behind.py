"""On SQLite a save's spans (the stored subtree roots, ticketflow/log_tree.py) are
written behind its log entry: every `CATCH_UP_EVERY`-th save of a process writes the
spans the log's tail lacks with its own, and a read of the tree writes them first. The
tree so made is the log's — the same leaves, nodes and positions as if each save had
written its own — whoever wrote the entries meanwhile, and a catch-up that another
writer overtook writes nothing."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.builders import T0, command_line, create_payload
from ticketflow import audit_log
from ticketflow.application import TicketingApp
from ticketflow.audit_log import AuditLog
from ticketflow.bootstrap import build_app
from ticketflow.domain.merkle import StoredTree, Tree
from ticketflow.log_tree import LogAppend
from ticketflow.settings import Settings

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes, base64


def create(n: int, who: str = "T") -> bytes:
    return command_line(f"c-{who}{n}", "create_ticket", f"{who}{n}", T0, "customer",
                        create_payload())


def comment(n: int, ticket: str) -> bytes:
    return command_line(f"m-{ticket}-{n}", "add_comment", ticket,
                        T0 + timedelta(minutes=n), "customer", {"body": f"words {n}"})


def spans(url: str) -> list[tuple[int, int]]:
    """The span rows as stored: (first leaf, leaves)."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT first_leaf, leaves FROM stored_log_spans"
                            " ORDER BY first_leaf").fetchall()


def stored_size(url: str) -> int:
    return sum(leaves for _, leaves in spans(url))


def logged_size(app: TicketingApp) -> int:
    return len(AuditLog(app.event_log).logged().leaves)


def is_the_logs(app: TicketingApp) -> None:
    """The tree read is the stored one, and holds the log's leaves, its root, and where
    each leaf's event is stored."""
    log = AuditLog(app.event_log)
    tree, leaves = log.tree(), log.logged().leaves
    assert isinstance(tree, StoredTree) and tree.size == len(leaves)
    assert [tree.leaf(i) for i in range(tree.size)] == leaves
    assert tree.root() == Tree(leaves).root()
    positions = [record.id for record in app.event_log.stream_records()]
    recorder: Any = app.recorder
    assert recorder.tree_leaves_at(positions) == \
        {position: (index, leaves[index]) for index, position in enumerate(positions)}


@pytest.mark.parametrize("rows_page", [10_000, 2])
def test_saves_leave_their_spans_behind_and_a_read_of_the_tree_writes_them(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, rows_page: int) -> None:
    monkeypatch.setattr(audit_log, "ROWS_PAGE", rows_page)  # 2: the tail over many pages
    with build_app(Settings(db=sqlite_url)) as app:
        assert app.apply(create(0)).status == "accepted"  # the log's first entry
        assert stored_size(sqlite_url) == 1  # the first entry writes its spans at once
        for n in range(1, 6):
            assert app.apply(comment(n, "T0")).status == "accepted"
        assert app.apply_batch([create(n) for n in range(1, 4)])[0].status == "accepted"
        assert stored_size(sqlite_url) == 1 < logged_size(app) == 9  # behind
        is_the_logs(app)  # the read caught them up: one row for the tail
        assert spans(sqlite_url) == [(0, 1), (1, 8)]
        is_the_logs(app)  # nothing behind: nothing written
        assert spans(sqlite_url) == [(0, 1), (1, 8)]


def test_every_nth_save_writes_the_tails_spans_with_its_own(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_log, "CATCH_UP_EVERY", 4)
    with build_app(Settings(db=sqlite_url)) as app:
        assert app.apply(create(0)).status == "accepted"
        sizes = []
        for n in range(1, 10):
            assert app.apply(comment(n, "T0")).status == "accepted"
            sizes.append(stored_size(sqlite_url))
        assert sizes == [1, 1, 1, 5, 5, 5, 5, 9, 9]
        assert spans(sqlite_url) == [(0, 1), (1, 4), (5, 4)]
        is_the_logs(app)


def test_two_writers_leaving_spans_behind_keep_one_tree_of_the_log(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_log, "CATCH_UP_EVERY", 3)
    with build_app(Settings(db=sqlite_url)) as one, build_app(Settings(db=sqlite_url)) as two:
        assert one.apply(create(0)).status == "accepted"
        for n in range(1, 20):
            writer, who = (two, "B") if n % 3 == 0 or n % 7 == 0 else (one, "A")
            assert writer.apply(create(n, who)).status == "accepted"
        assert stored_size(sqlite_url) > 1  # each caught up along the way
        is_the_logs(one)
        is_the_logs(two)


def test_a_save_whose_tail_another_writer_overtook_writes_no_spans(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writer one reads the log's tail, then two records a save before one's commits:
    one's save must not write the tail it read followed by its own leaves (two's would be
    missing from the tree); it writes none, and the next catch-up writes them all."""
    monkeypatch.setattr(audit_log, "CATCH_UP_EVERY", 2)
    with build_app(Settings(db=sqlite_url)) as one, build_app(Settings(db=sqlite_url)) as two:
        assert one.apply(create(0)).status == "accepted"
        assert one.apply(create(1)).status == "accepted"  # one behind
        log: Any = one.audit_log
        tail = log.tail

        def overtaken() -> Any:
            found = tail()
            assert two.apply(create(2, "B")).status == "accepted"
            return found
        monkeypatch.setattr(log, "tail", overtaken)
        assert one.apply(create(3)).status == "accepted"  # its catch-up's turn
        assert stored_size(sqlite_url) == 1 < logged_size(one) == 4
        monkeypatch.setattr(log, "tail", tail)
        is_the_logs(one)


def test_a_catch_up_overtaken_by_another_writer_writes_nothing(sqlite_url: str) -> None:
    with build_app(Settings(db=sqlite_url)) as one, build_app(Settings(db=sqlite_url)) as two:
        assert one.apply(create(0)).status == "accepted"
        assert one.apply(create(1)).status == "accepted"
        read = one.audit_log.tail()
        assert read is not None and len(read.leaves) == 1
        late = LogAppend(read.leaves, read.positions, after=(read.size, read.entry))
        assert two.apply(create(2, "B")).status == "accepted"  # a later entry
        recorder: Any = one.recorder
        assert recorder.append_spans(late) is False
        assert stored_size(sqlite_url) == 1
        assert two.audit_log.catch_up() is True  # the tail as it now is
        assert recorder.append_spans(late) is False  # the tree has moved on
        assert stored_size(sqlite_url) == 3
        is_the_logs(one)


def test_a_stream_event_recorded_without_an_entry_leaves_the_tree_the_logs(
        sqlite_url: str) -> None:
    """An event recorded with no entry (an insider's row; `verify` calls it inserted) is
    no leaf: the entry after it keeps its leaves, only without where their events are
    (the hint no longer follows from the rows), and later catch-ups read the log from its
    start to find the tree's end."""
    with build_app(Settings(db=sqlite_url)) as app:
        assert app.apply(create(0)).status == "accepted"
        app._log_entry = lambda events: None  # type: ignore[method-assign]
        assert app.apply(comment(1, "T0")).status == "accepted"
        del app._log_entry
        assert app.apply(comment(2, "T0")).status == "accepted"
        log = AuditLog(app.event_log)
        tree, leaves = log.tree(), log.logged().leaves
        assert isinstance(tree, StoredTree) and tree.size == len(leaves) == 2
        assert tree.root() == Tree(leaves).root()
        assert app.apply(comment(3, "T0")).status == "accepted"
        tree, leaves = log.tree(), log.logged().leaves
        assert isinstance(tree, StoredTree) and tree.size == len(leaves) == 3
        assert [tree.leaf(i) for i in range(3)] == leaves
        assert spans(sqlite_url) == [(0, 1), (1, 1), (2, 1)]


def test_an_encrypted_stores_tail_is_read_through_its_cipher(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_CIPHER_KEY", KEY)
    with build_app(Settings(db=sqlite_url)) as app:
        for n in range(4):
            assert app.apply(create(n)).status == "accepted"
        assert stored_size(sqlite_url) == 1
        is_the_logs(app)


def test_the_last_span_rows_deleted_are_written_again_the_same_from_the_entries(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spans are derived from the entries: an insider who deletes the last ones (while a
    writer that last wrote them runs) has the next catch-up write them again, the same."""
    monkeypatch.setattr(audit_log, "CATCH_UP_EVERY", 3)
    with build_app(Settings(db=sqlite_url)) as app:
        for n in range(10):
            assert app.apply(create(n)).status == "accepted"
        is_the_logs(app)
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
            before = conn.execute("SELECT * FROM stored_log_spans ORDER BY first_leaf").fetchall()
            conn.execute("DELETE FROM stored_log_spans WHERE first_leaf >= 4")
        assert stored_size(sqlite_url) == 4
        for n in range(10, 13):
            assert app.apply(create(n)).status == "accepted"  # the third catches up
        assert stored_size(sqlite_url) == 13
        is_the_logs(app)
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
            after = conn.execute("SELECT * FROM stored_log_spans ORDER BY first_leaf").fetchall()
        hashes = b"".join(row[2] for row in before)
        assert b"".join(row[2] for row in after).startswith(hashes)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(every=st.integers(1, 5),
       steps=st.lists(st.tuples(st.sampled_from(["one", "two", "read", "batch", "race"]),
                                st.integers(1, 4)), min_size=1, max_size=14))
def test_any_interleaving_of_two_writers_and_reads_keeps_the_tree_the_logs(
        tmp_path_factory: pytest.TempPathFactory, every: int,
        steps: list[tuple[str, int]]) -> None:
    """"race": writer two records a save while writer one's next catch-up is between
    reading the log's tail and committing (as a second process can)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('interleaved') / 'store.db'}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(audit_log, "CATCH_UP_EVERY", every)
        with build_app(Settings(db=url)) as one, build_app(Settings(db=url)) as two:
            assert one.apply(create(0, "S")).status == "accepted"
            races: list[bytes] = []
            tail = one.audit_log.tail

            def overtaken() -> Any:
                found = tail()
                while races:
                    assert two.apply(races.pop()).status == "accepted"
                return found
            monkeypatch.setattr(one.audit_log, "tail", overtaken)
            for n, (step, size) in enumerate(steps, start=1):
                if step == "read":
                    AuditLog(two.event_log).tree()
                    continue
                if step == "race":
                    races.append(create(n, "R"))
                writer = two if step == "two" else one
                lines = [create(k, f"{step}{n}x") for k in range(size if step == "batch" else 1)]
                assert {o.status for o in writer.apply_batch(lines)} == {"accepted"}
            races.clear()  # one not caught up since: no race left for its reads or close
            is_the_logs(one)


def test_a_store_at_rest_holds_every_span_its_writers_left_behind(sqlite_url: str) -> None:
    with build_app(Settings(db=sqlite_url)) as app:
        for n in range(5):
            assert app.apply(create(n)).status == "accepted"
        assert stored_size(sqlite_url) == 1 < logged_size(app) == 5
    assert stored_size(sqlite_url) == 5  # written as the app closed
    with build_app(Settings(db=sqlite_url)) as app:
        is_the_logs(app)


def test_a_reader_that_cannot_write_computes_the_tree_from_the_entries(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with build_app(Settings(db=sqlite_url)) as app:
        for n in range(5):
            assert app.apply(create(n)).status == "accepted"
        leaves = AuditLog(app.event_log).logged().leaves

        def read_only(append: LogAppend) -> bool:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        monkeypatch.setattr(app.recorder, "append_spans", read_only)
        tree = AuditLog(app.event_log).tree()
        assert isinstance(tree, Tree) and tree.root() == Tree(leaves).root()
        assert stored_size(sqlite_url) == 1


def test_an_unreadable_entry_in_the_tail_fails_no_save_and_no_close(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An insider's garbled entry past the stored tree: the catch-ups find no tail to
    write (the tree stays where it was, for `verify` to compare), and the saves and the
    close go on."""
    monkeypatch.setattr(audit_log, "CATCH_UP_EVERY", 2)
    with build_app(Settings(db=sqlite_url)) as app:
        assert app.apply(create(0)).status == "accepted"
        assert app.apply(create(1)).status == "accepted"
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE stored_events SET state = ? WHERE rowid = (SELECT MAX(rowid)"
                         " FROM stored_events WHERE topic LIKE '%MerkleLog.Appended')",
                         (b"not json",))
        for n in range(2, 6):
            assert app.apply(create(n)).status == "accepted"
        assert stored_size(sqlite_url) == 1
    assert stored_size(sqlite_url) == 1
