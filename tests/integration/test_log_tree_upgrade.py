"""A store whose stored subtree roots are in the layout before spans — a row per node in
`<prefix>_log_tree` (level, idx, hash, position) — is migrated to spans when opened:
every stored root copied as it was (not recomputed), the old table dropped, in one
transaction; its heads, proofs, bundles and `verify --checkpoint` then work as before,
and its next saves extend it.

The SQLite store is `tests/fixtures/log-tree-nodes.db`, made by that layout's code
(commit cfefdb9) with `tests/fixtures/make_log_tree_store.py`: 37 leaves saved in
transactions of 1 to 12 commands. PostgreSQL has no fixture file: the same layout is
written there from a store's own log (`write_node_rows`), which is checked here to give
exactly the fixture's rows on the fixture."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.builders import T0, command_line, create_payload
from tests.support.checkpoints import keys
from ticketflow import log_tree
from ticketflow.audit_log import AuditLog
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.domain.merkle import StoredTree, Tree, appended_nodes
from ticketflow.event_log import STREAM_TOPICS
from ticketflow.settings import Settings

NODES_STORE = Path(__file__).parent.parent / "fixtures" / "log-tree-nodes.db"
LEAVES = 37
OldRow = tuple[int, int, bytes, int | None]


@pytest.fixture
def nodes_store(tmp_path: Path) -> str:
    path = tmp_path / "ticketflow.db"
    shutil.copy(NODES_STORE, path)
    return f"sqlite:///{path}"


def sqlite_rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql, params).fetchall()


def old_rows(url: str) -> list[OldRow]:
    return [(level, idx, bytes(found), position) for level, idx, found, position in sqlite_rows(
        url, "SELECT level, idx, hash, position FROM stored_log_tree ORDER BY level, idx")]


def tables(url: str) -> set[str]:
    return {name for (name,) in sqlite_rows(url, "SELECT name FROM sqlite_master")}


def node_rows_of(url: str) -> list[OldRow]:
    """The node-per-row layout's rows for a store's log, as that layout's writer made
    them: every perfect subtree root, a leaf with where its event is stored."""
    with build_app(Settings(db=url)) as app:
        leaves = AuditLog(app.event_log).logged().leaves
        positions = [record.id for page in app.event_log.pages(topics=STREAM_TOPICS)
                     for record in page]
    return sorted((level, index, found, positions[index] if level == 0 else None)
                  for level, index, found in appended_nodes(0, [], leaves))


def write_node_rows(url: str, rows: list[OldRow]) -> None:
    """PostgreSQL: the store's stored roots put back in the node-per-row layout (its
    table and index as that layout made them), the spans table dropped."""
    with psycopg.connect(url) as pg:
        pg.execute("CREATE TABLE ticketflow_log_tree (level integer NOT NULL, idx bigint"
                   " NOT NULL, hash bytea NOT NULL, position bigint, PRIMARY KEY (level, idx))")
        pg.execute("CREATE INDEX ticketflow_log_tree_position ON ticketflow_log_tree"
                   " (position) WHERE position IS NOT NULL")
        with pg.cursor() as curs:
            curs.executemany("INSERT INTO ticketflow_log_tree VALUES (%s, %s, %s, %s)", rows)
        pg.execute("DROP TABLE ticketflow_log_spans")


def check_tree(url: str, rows: list[OldRow]) -> None:
    """The store's stored tree holds exactly `rows`' roots, and gives the heads and
    proofs of its log's leaves."""
    with build_app(Settings(db=url)) as app:
        log = AuditLog(app.event_log)
        tree, leaves = log.tree(), log.logged().leaves
        assert isinstance(tree, StoredTree) and tree.size == len(leaves)
        stored = app.recorder.tree_nodes([(level, idx) for level, idx, _, _ in rows])
        assert stored == {(level, idx): found for level, idx, found, _ in rows}
        where = app.recorder.tree_leaves_at(  # type: ignore[attr-defined]
            [position for level, _, _, position in rows if level == 0 and position])
        assert where == {position: (idx, found) for level, idx, found, position in rows
                         if level == 0 and position}
        recomputed = Tree(leaves)
        assert [tree.root(size) for size in range(1, tree.size + 1)] == \
            [recomputed.root(size) for size in range(1, tree.size + 1)]
        assert [tree.inclusion_proof(i) for i in range(tree.size)] == \
            [recomputed.inclusion_proof(i) for i in range(tree.size)]


def test_the_fixture_is_the_layout_before_and_its_rows_are_what_its_log_gives(
        nodes_store: str) -> None:
    assert "stored_log_tree" in tables(nodes_store)
    assert "stored_log_spans" not in tables(nodes_store)
    rows = old_rows(nodes_store)
    assert len([r for r in rows if r[0] == 0]) == LEAVES and max(r[0] for r in rows) == 5
    assert node_rows_of(nodes_store) == rows  # opening it migrates: read before
    assert "stored_log_tree" not in tables(nodes_store)


@pytest.mark.parametrize("span,page", [(256, 65_536), (3, 8)])
def test_a_node_per_row_store_is_migrated_when_opened_and_goes_on(
        nodes_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], span: int, page: int) -> None:
    monkeypatch.setattr(log_tree, "SPAN", span)
    monkeypatch.setattr(log_tree, "MIGRATION_PAGE", page)
    rows = old_rows(nodes_store)
    head = Tree([found for level, _, found, _ in rows if level == 0]).root()
    check_tree(nodes_store, rows)
    assert "stored_log_tree" not in tables(nodes_store)
    spans = sqlite_rows(nodes_store, "SELECT first_leaf, leaves FROM stored_log_spans"
                                     " ORDER BY first_leaf")
    assert sum(n for _, n in spans) == LEAVES and max(n for _, n in spans) <= span
    with build_app(Settings(db=nodes_store)) as app:
        assert AuditLog(app.event_log).tree().root() == head  # the same head as before
    private, public = keys(tmp_path, "a")
    monkeypatch.setenv("TICKETFLOW_SIGNING_KEY", str(private))
    signed = tmp_path / "first.checkpoint"
    assert main(["checkpoint", "-o", str(signed), "--db", nodes_store]) == 0
    with build_app(Settings(db=nodes_store)) as app:  # the next saves extend it
        for n in range(5):
            more = command_line(f"later-{n}", "add_comment", f"T-{n}",
                                T0 + timedelta(hours=1, minutes=n), "customer", {"body": "x"})
            assert app.apply(more).status == "accepted"
    check_tree(nodes_store, node_rows_of(nodes_store))
    capsys.readouterr()
    assert main(["verify", "--db", nodes_store, "--checkpoint", str(signed),
                 "--public-key", str(public)]) == 0
    bundle = tmp_path / "T-1.json"
    assert main(["bundle", "T-1", "-o", str(bundle), "--db", nodes_store]) == 0
    assert main(["bundle", "verify", str(bundle), "--public-key", str(public)]) == 0


def test_a_changed_root_is_copied_as_it_was_and_verify_still_names_it(
        nodes_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    private, public = keys(tmp_path, "a")
    monkeypatch.setenv("TICKETFLOW_SIGNING_KEY", str(private))
    signed = tmp_path / "first.checkpoint"
    sqlite_rows(nodes_store, "UPDATE stored_log_tree SET hash = ? WHERE level = 5 AND idx = 0",
                (b"\x07" * 32,))
    with build_app(Settings(db=nodes_store)) as app:  # migrated
        assert app.recorder.tree_nodes([(5, 0)]) == {(5, 0): b"\x07" * 32}
    assert main(["checkpoint", "-o", str(signed), "--db", nodes_store]) == 0
    capsys.readouterr()
    assert main(["verify", "--json", "--db", nodes_store, "--checkpoint", str(signed),
                 "--public-key", str(public)]) == 1
    assert "stored subtree roots" in capsys.readouterr().out


def test_a_node_per_row_table_with_a_hole_is_dropped_and_the_roots_made_afresh(
        nodes_store: str) -> None:
    rows = old_rows(nodes_store)
    sqlite_rows(nodes_store, "DELETE FROM stored_log_tree WHERE level = 3 AND idx = 2")
    with build_app(Settings(db=nodes_store)) as app:
        log = AuditLog(app.event_log)
        assert isinstance(log.tree(), StoredTree)  # nothing copied: made from the log's entries
        assert log.tree().root() == Tree([r[2] for r in rows if r[0] == 0]).root()
        more = command_line("later", "add_comment", "T-1", T0 + timedelta(hours=1),
                            "customer", {"body": "x"})
        assert app.apply(more).status == "accepted"
    assert "stored_log_tree" not in tables(nodes_store)
    check_tree(nodes_store, node_rows_of(nodes_store))


def test_a_node_per_row_store_on_postgresql_is_migrated_when_opened(
        postgres_url: str) -> None:
    with build_app(Settings(db=postgres_url)) as app:
        n = 0
        for size in [1, 3, 7, 2, 12, 1, 1, 5, 3]:  # transactions of uneven sizes
            lines = [command_line(f"c-{n + k}", "create_ticket", f"T-{n + k}", T0, "customer",
                                  create_payload()) for k in range(size)]
            assert {o.status for o in app.apply_batch(lines)} == {"accepted"}
            n += size
    made = node_rows_of(postgres_url)
    assert len([r for r in made if r[0] == 0]) == 35 and max(r[0] for r in made) == 5
    write_node_rows(postgres_url, made)
    check_tree(postgres_url, made)  # migrated when opened
    with psycopg.connect(postgres_url) as pg:
        found = pg.execute("SELECT to_regclass('ticketflow_log_tree')").fetchone()
        assert found is not None and found[0] is None
    with build_app(Settings(db=postgres_url)) as app:
        more = command_line("later", "add_comment", "T-1", T0 + timedelta(hours=1),
                            "customer", {"body": "x"})
        assert app.apply(more).status == "accepted"
    check_tree(postgres_url, node_rows_of(postgres_url))
