"""The audit log's stored subtree roots (ticketflow/log_tree.py), on SQLite and
PostgreSQL: written in a save's transaction (on SQLite behind the log's entries:
tests/integration/test_spans_behind.py), they give the same heads and proofs as
the tree recomputed from the log's leaves (whose maths tests/unit/test_merkle.py checks
against RFC 6962's recursive definitions), reading O(log n) of them; a store made
before them still verifies, and gets them on its next write."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.builders import T0, command_line, create_payload
from tests.support.checkpoints import Signed
from ticketflow import audit_log, log_tree
from ticketflow.application import TicketingApp
from ticketflow.audit_log import AuditLog
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.domain.audit_log import event_leaf
from ticketflow.domain.merkle import Node, StoredTree, Tree, verify_consistency, verify_inclusion
from ticketflow.log_tree import completing_leaf, hash_offset
from ticketflow.settings import Settings

BATCHES = [1, 3, 7, 2, 12, 1, 5, 9]  # commands per transaction: uneven on purpose


def create(n: int, tenant_ticket: str = "T") -> bytes:
    return command_line(f"c-{tenant_ticket}{n}", "create_ticket", f"{tenant_ticket}{n}", T0,
                        "customer", create_payload())


def comment(n: int) -> bytes:
    return command_line(f"m-{n}", "add_comment", f"T{n % 4}", T0 + timedelta(minutes=n),
                        "customer", {"body": f"words {n}"})


def fill(app: TicketingApp) -> None:
    n = 0
    for size in BATCHES:
        lines = [create(n + k) if n + k < 4 or (n + k) % 3 else comment(n + k)
                 for k in range(size)]
        assert {o.status for o in app.apply_batch(lines)} == {"accepted"}
        n += size


@pytest.fixture
def every_save_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each SQLite save writes its spans (with any the log's tail lacks) in its own
    transaction, as every `CATCH_UP_EVERY`-th save does: what these tests check of a
    save's spans then happens at each save."""
    monkeypatch.setattr(audit_log, "CATCH_UP_EVERY", 1)


def run_sql(url: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(sql.format(t="stored_log_spans", p="?"), params)
        return
    with psycopg.connect(url) as pg:
        pg.execute(sql.format(t="ticketflow_log_spans", p="%s"), params)  # type: ignore[arg-type]


def change_node(url: str, node: Node, value: bytes) -> None:
    """Overwrite one stored subtree root in the span row that holds it, as an insider
    with the database's write access would."""
    leaf = completing_leaf(node)
    select = ("SELECT first_leaf, hashes FROM {t} WHERE first_leaf <= {p}"
              " ORDER BY first_leaf DESC LIMIT 1")
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            first, hashes = conn.execute(select.format(t="stored_log_spans", p="?"),
                                         (leaf,)).fetchone()
    else:
        with psycopg.connect(url) as pg:
            found = pg.execute(select.format(t="ticketflow_log_spans", p="%s"),  # type: ignore[arg-type]
                               (leaf,)).fetchone()
            assert found is not None
            first, hashes = found
    at = 32 * hash_offset(first, leaf, node[0])
    changed = bytes(hashes[:at]) + value + bytes(hashes[at + 32:])
    run_sql(url, "UPDATE {t} SET hashes = {p} WHERE first_leaf = {p}", (changed, first))


class Counted:
    """The recorder's node reads, counted."""

    def __init__(self, app: TicketingApp) -> None:
        self.recorder: Any = app.recorder
        self.reads: list[int] = []

    def __call__(self, wanted: Collection[Node]) -> Mapping[Node, bytes]:
        self.reads.append(len(wanted))
        return dict(self.recorder.tree_nodes(wanted))


BUILT: dict[str, None] = {}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_stored_roots_give_the_heads_and_proofs_of_the_logs_leaves(db_url: str,
                                                                    data: st.DataObject) -> None:
    with build_app(Settings(db=db_url)) as app:
        if db_url not in BUILT:
            fill(app)
            BUILT[db_url] = None
        log = AuditLog(app.event_log)
        tree, leaves = log.tree(), log.logged().leaves
        assert isinstance(tree, StoredTree) and tree.size == len(leaves) == sum(BATCHES)
        recomputed, counted = Tree(leaves), Counted(app)
        stored = StoredTree(tree.size, counted)
        size = data.draw(st.integers(1, tree.size), label="size")
        index = data.draw(st.integers(0, size - 1), label="leaf")
        old = data.draw(st.integers(1, size), label="old size")
        assert stored.root(size) == recomputed.root(size)
        assert stored.inclusion_proof(index, size) == recomputed.inclusion_proof(index, size)
        assert verify_inclusion(leaves[index], index, size, stored.inclusion_proof(index, size),
                                recomputed.root(size))
        proof = stored.consistency_proof(old, size)
        assert proof == recomputed.consistency_proof(old, size)
        assert verify_consistency(old, size, recomputed.root(old), recomputed.root(size), proof)
        assert max(counted.reads) <= 2 * size.bit_length()  # O(log n), never the leaves


@pytest.mark.parametrize("span", [256, 2])
def test_a_bundle_finds_its_leaves_by_where_its_events_are_stored(
        db_url: str, span: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_tree, "SPAN", span)  # 2: a save's leaves over several rows
    with build_app(Settings(db=db_url)) as app:
        fill(app)
        log = AuditLog(app.event_log)
        tree = log.tree()
        where = {leaf: index for index, leaf in enumerate(log.logged().leaves)}
        stream = app.event_log.stream_uuid_of("ticket", "T1")
        envelopes = app.event_log.ticket_events("T1")
        assert len(envelopes) > 1
        assert log.leaf_indexes(tree, stream, envelopes) == \
            [where[event_leaf(envelope)] for envelope in envelopes]


def test_concurrent_writers_keep_the_stored_roots_of_one_log(postgres_url: str) -> None:
    """PostgreSQL: writers at once (SQLite has one writer; test_checkpoints alternates two)."""
    db_url = postgres_url
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            with build_app(Settings(db=db_url)) as app:
                for n in range(15):
                    assert app.apply(create(n, name)).status == "accepted"
        except BaseException as exc:
            errors.append(exc)
    with build_app(Settings(db=db_url)) as app:
        assert app.apply(create(0, "S")).status == "accepted"  # the log's first entry
        writers = [threading.Thread(target=write, args=(name,)) for name in ("A", "B")]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert errors == []
        log = AuditLog(app.event_log)
        leaves = log.logged().leaves
        tree = log.tree()
        assert isinstance(tree, StoredTree) and tree.size == len(leaves) == 31
        assert tree.root() == Tree(leaves).root()
        assert [tree.leaf(i) for i in range(31)] == leaves


def test_a_store_made_before_the_stored_roots_verifies_and_gets_them_when_next_written(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    signed = Signed(db_url, tmp_path, monkeypatch)
    run_sql(db_url, "DELETE FROM {t}")  # as a store written before them has none
    with build_app(Settings(db=db_url)) as app:
        log = AuditLog(app.event_log)
        tree = log.tree()
        if log.spans_behind:  # SQLite: the read writes them from the log's entries
            assert isinstance(tree, StoredTree)
            assert tree.root() == Tree(log.logged().leaves).root()
        else:  # computed from the log's leaves on the fly
            assert isinstance(tree, Tree)
    assert signed.verify(capsys) == (0, [])
    assert main(["bundle", "T-1", "-o", str(tmp_path / "b.json"), "--db", db_url]) == 0
    assert main(["bundle", "verify", str(tmp_path / "b.json"), "--public-key",
                 str(signed.public)]) == 0
    with build_app(Settings(db=db_url)) as app:
        assert app.apply(comment(9)).status == "rejected"  # T1 is not a ticket here: no events
        assert app.apply(command_line("m-later", "add_comment", "T-2", T0 + timedelta(hours=1),
                                      "customer", {"body": "later"})).status == "accepted"
        log = AuditLog(app.event_log)
        tree, leaves = log.tree(), log.logged().leaves
        assert isinstance(tree, StoredTree) and tree.size == len(leaves) == 6
        assert tree.root() == Tree(leaves).root()
        assert [tree.leaf(i) for i in range(6)] == leaves
    assert signed.verify(capsys) == (0, [])


def test_a_backfill_raced_by_another_writer_is_retried_from_the_log_as_it_then_is(
        sqlite_url: str) -> None:
    with build_app(Settings(db=sqlite_url)) as app:
        fill(app)
    run_sql(sqlite_url, "DELETE FROM {t}")
    with build_app(Settings(db=sqlite_url)) as one, build_app(Settings(db=sqlite_url)) as two:
        entry = two.audit_log.entry
        raced: list[int] = []

        def overtaken(*args: Any, **kwargs: Any) -> Any:
            made = entry(*args, **kwargs)
            if not raced:  # another writer logs (and backfills) before this save
                raced.append(1)
                assert one.apply(create(100)).status == "accepted"
            return made
        two.audit_log.entry = overtaken  # type: ignore[method-assign]
        assert two.apply(create(101)).status == "accepted"
        log = AuditLog(two.event_log)
        tree, leaves = log.tree(), log.logged().leaves
        assert raced and isinstance(tree, StoredTree) and tree.size == len(leaves)
        assert tree.root() == Tree(leaves).root()


def test_changed_stored_roots_are_named_by_verify_or_fail_the_bundle(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    signed = Signed(db_url, tmp_path, monkeypatch)  # 5 leaves: T-1 at 0, 2, 3, 4
    change_node(db_url, (1, 1), b"\x07" * 32)
    bundle = tmp_path / "T-1.json"
    assert main(["bundle", "T-1", "-o", str(bundle), "--db", db_url]) == 0
    capsys.readouterr()
    assert main(["bundle", "verify", str(bundle), "--public-key", str(signed.public),
                 "--json"]) == 1  # a proof made from a changed root fails, never passes
    assert "is not leaf 0" in json.loads(capsys.readouterr().out)["problems"][0]
    change_node(db_url, (2, 0), b"\x07" * 32)
    code, found = signed.verify(capsys)
    assert code == 1
    assert [f["problem"] for f in found] == ["log"]
    assert "stored subtree roots" in found[0]["detail"]


@pytest.mark.parametrize("span", [256, 3])
def test_a_random_history_keeps_its_stored_roots_equal_to_its_leaves(
        sqlite_url: str, span: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_tree, "SPAN", span)
    chooser = random.Random(17)
    with build_app(Settings(db=sqlite_url)) as app:
        n = 0
        for _ in range(12):
            size = chooser.randint(1, 20)
            assert {o.status for o in app.apply_batch(
                [create(n + k) for k in range(size)])} == {"accepted"}
            n += size
        log = AuditLog(app.event_log)
        tree, leaves = log.tree(), log.logged().leaves
        assert isinstance(tree, StoredTree)
        assert [tree.root(size) for size in range(1, n + 1)] == \
            [Tree(leaves).root(size) for size in range(1, n + 1)]
        positions = [record.id for record in app.event_log.stream_records()]
        recorder: Any = app.recorder
        assert recorder.tree_leaves_at(positions) == \
            {position: (index, leaves[index]) for index, position in enumerate(positions)}
        assert recorder.tree_leaves_at(positions[5::7]) == \
            {position: (5 + 7 * k, leaves[5 + 7 * k]) for k, position in enumerate(positions[5::7])}


def test_a_deleted_span_row_leaves_its_leaves_unfound_and_the_rest_found(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, every_save_catches_up: None) -> None:
    monkeypatch.setattr(log_tree, "SPAN", 2)
    with build_app(Settings(db=sqlite_url)) as app:
        fill(app)
        positions = [record.id for record in app.event_log.stream_records()]
    run_sql(sqlite_url, "DELETE FROM {t} WHERE first_leaf IN (4, 10)")  # 4, 5 and 10
    with build_app(Settings(db=sqlite_url)) as app:
        recorder: Any = app.recorder
        found = recorder.tree_leaves_at(positions)
    assert sorted(index for index, _ in found.values()) == \
        [i for i in range(len(positions)) if i not in (4, 5, 10)]


def stored_tree_is_the_logs(app: TicketingApp) -> None:
    log = AuditLog(app.event_log)
    tree, leaves = log.tree(), log.logged().leaves
    assert isinstance(tree, StoredTree) and tree.size == len(leaves)
    assert [tree.leaf(i) for i in range(tree.size)] == leaves
    assert tree.root() == Tree(leaves).root()


def test_a_save_rolled_back_after_its_span_went_in_leaves_the_next_on_the_committed_tree(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, every_save_catches_up: None) -> None:
    """A SQLite recorder appends after the tree its last committed save left, without
    reading the tree's end: a save that fails after inserting its span must not leave
    the next one appending after a span that was rolled back (a gap in the tree)."""
    with build_app(Settings(db=sqlite_url)) as app:
        fill(app)
        recorder: Any = app.recorder
        append_tree = recorder.append_tree
        failed: list[int] = []

        def then_collide(c: Any, append: Any, ids: Any) -> None:
            append_tree(c, append, ids)
            if not failed:  # as a save that collides after its span was inserted
                failed.append(1)
                raise sqlite3.IntegrityError("UNIQUE constraint failed: a later insert")
        monkeypatch.setattr(recorder, "append_tree", then_collide)
        assert app.apply(create(200)).status == "accepted"  # retried, as a collision is
        assert app.apply(create(201)).status == "accepted"
        assert failed
        stored_tree_is_the_logs(app)


def test_two_sqlite_writers_append_after_each_others_spans(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, every_save_catches_up: None) -> None:
    """Each recorder appends after the tree as it last left it; when the other writer
    has appended since, its insert meets the other's span on the primary key, and it
    reads the tree's end instead (and only then)."""
    with build_app(Settings(db=sqlite_url)) as one, build_app(Settings(db=sqlite_url)) as two:
        assert one.apply(create(300)).status == "accepted"
        reads: list[int] = []
        recorder: Any = one.recorder
        frontier = recorder._frontier

        def counted(c: Any) -> Any:
            reads.append(1)
            return frontier(c)
        monkeypatch.setattr(recorder, "_frontier", counted)
        for n in range(1, 13):
            assert (two if n % 4 == 0 else one).apply(create(300 + n)).status == "accepted"
        assert len(reads) == 2  # the saves of `one` right after `two`'s (5, 9): 2 of 9
        stored_tree_is_the_logs(one)
