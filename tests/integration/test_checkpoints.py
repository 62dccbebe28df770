"""Audit checkpoints (SPEC §13): the Merkle log is written with the events, a signed
checkpoint leaves the machine, then rows are changed with SQL behind the application's
back; `ticketflow verify --checkpoint` names each change, also those the hash chains
cannot show, and a bundle is checked with no database."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid5

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import StoredEvent
from kafka import KafkaConsumer

from tests.support.builders import T0, command_line, create_payload, created, ctx, policy_for
from tests.support.checkpoints import PP, Signed, keys
from ticketflow.audit_log import LOG_TOPIC, AuditLog, fast_leaf
from ticketflow.bootstrap import build_app
from ticketflow.checkpoint_verification import audit, checkpoint
from ticketflow.cli import main
from ticketflow.domain.audit_log import event_leaf
from ticketflow.domain.chain import chain_hash
from ticketflow.domain.merkle import StoredTree, Tree
from ticketflow.domain.receipt import receipt_uuid
from ticketflow.domain.streams import envelope_from_state, stream_uuid
from ticketflow.domain.ticket import Ticket
from ticketflow.log_tree import LOG_APPEND
from ticketflow.settings import Settings
from ticketflow.verification import verify_store


@pytest.fixture
def signed(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Signed:
    """On every backend (the log's atomicity is the store's)."""
    return Signed(db_url, tmp_path, monkeypatch)


def named(found: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(f["problem"], f["event"]) for f in found]


def test_every_event_is_a_leaf_in_recording_order(signed: Signed) -> None:
    with build_app(Settings(db=signed.url)) as app:
        log = AuditLog(app.event_log)
        logged, stored = log.logged(), list(log.stored())
        assert logged.leaves == [leaf.leaf for leaf in stored]
        assert logged.labels == [f"{PP}/T-1@1", f"{PP}/T-2@1", f"{PP}/T-1@2", f"{PP}/T-1@3",
                                 f"{PP}/T-1@4"]
        assert log.logged().entries == 3  # one per transaction that recorded events


def test_an_intact_store_verifies_against_its_checkpoint(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    assert signed.verify(capsys) == (0, [])


def test_the_checkpoint_is_the_documented_text(signed: Signed) -> None:
    lines = signed.checkpoint.read_text().split("\n")
    assert lines[0] == "ticketflow-checkpoint/1"
    assert [line.split(" ")[0] for line in lines[1:7]] == ["size", "root", "time", "key", "",
                                                          "sig"]
    with build_app(Settings(db=signed.url)) as app:
        leaves = AuditLog(app.event_log).logged().leaves
    assert lines[1:3] == ["size 5", f"root {Tree(leaves).root().hex()}"]


def test_an_edited_event_is_named(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    signed.rows.edit("T-1", 2, b"original words", b"altered words!")
    code, found = signed.verify(capsys)
    assert code == 1
    assert named(found)[0] == ("edited", f"{PP}/T-1@2")
    assert "root" in [f["problem"] for f in found]


def test_an_unreadable_event_is_named(signed: Signed,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    topic, _ = signed.rows.row("T-1", 3)
    signed.rows.put("T-1", 3, topic, b"\x00 not an event")
    code, found = signed.verify(capsys)
    assert (code, named(found)[0]) == (1, ("edited", f"{PP}/T-1@3"))
    assert found[0]["detail"].endswith("its row no longer decodes")


def test_a_consistent_rewrite_is_named_though_every_chain_links(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    with build_app(Settings(db=signed.url)) as app:
        signed.rows.rewrite(app, "T-1", 2, b"original words", b"altered words!")
        assert verify_store(app) == []  # the hash chains cannot show it
    code, found = signed.verify(capsys)
    assert code == 1
    assert named(found)[:3] == [("rewritten", f"{PP}/T-1@2"), ("rewritten", f"{PP}/T-1@3"),
                                ("rewritten", f"{PP}/T-1@4")]


def test_a_confined_caller_sees_only_its_tenants_events_named(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    signed.rows.edit("T-1", 2, b"original words", b"altered words!")
    capsys.readouterr()
    assert main(["verify", "--json", "--db", signed.url, "--tenant", "growgrebuddy",
                 "--checkpoint", str(signed.checkpoint), "--public-key",
                 str(signed.public)]) == 1
    found = json.loads(capsys.readouterr().out)["log"]
    assert [f["problem"] for f in found] == ["root"]  # changed, not where


def test_a_deleted_event_is_named(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    signed.rows.delete("T-1", 2)
    code, found = signed.verify(capsys)
    assert (code, named(found)[0]) == (1, ("deleted", f"{PP}/T-1@2"))


def test_a_deleted_last_event_with_its_receipt_is_named(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    signed.rows.delete("T-1", 4)
    signed.rows.delete_stream(receipt_uuid(PP, "m-4"))
    with build_app(Settings(db=signed.url)) as app:
        assert verify_store(app) == []  # nothing left to show it, but the log
    code, found = signed.verify(capsys)
    assert (code, named(found)[0]) == (1, ("deleted", f"{PP}/T-1@4"))


def test_an_inserted_event_is_named(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    topic, state = signed.rows.row("T-2", 1)
    signed.rows.insert(stream_uuid("ticket", PP, "T-9"), 1, topic,
                       state.replace(b'"ticket_id":"T-2"', b'"ticket_id":"T-9"'))
    code, found = signed.verify(capsys)
    assert code == 1
    assert named(found) == [("inserted", f"{PP}/T-9@1")]
    assert found[0]["signed"] is False  # past the checkpoint: only the log vouches


def test_reordered_events_are_named(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    signed.rows.swap("T-1", 2, 3)
    code, found = signed.verify(capsys)
    assert code == 1
    assert {f["problem"] for f in found} >= {"moved"}


def test_a_log_rewritten_with_the_events_fails_the_consistency_proof(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    with build_app(Settings(db=signed.url)) as app:
        signed.rows.rewrite(app, "T-1", 2, b"original words", b"altered words!")
        stored = [leaf.leaf.hex() for leaf in AuditLog(app.event_log).stored()]
    first = 0
    for uuid, state in signed.rows.by_topic(LOG_TOPIC):  # the insider's new log
        entry = orjson.loads(state)
        new = stored[first:first + len(entry["leaves"])]
        first += len(entry["leaves"])
        rewritten = state
        for old_leaf, new_leaf in zip(entry["leaves"], new, strict=True):
            rewritten = rewritten.replace(old_leaf.encode(), new_leaf.encode())
        signed.rows.put_row(uuid, 1, rewritten)
    code, found = signed.verify(capsys)
    assert code == 1
    assert [f["problem"] for f in found] == ["log", "root"]


def test_a_forged_checkpoint_or_another_key_fails_the_signature(
        signed: Signed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    forged = tmp_path / "forged"
    forged.write_text(signed.checkpoint.read_text().replace("size 5", "size 4"))
    assert named(signed.verify(capsys, forged)[1]) == [("signature", None)]
    _, other = keys(tmp_path, "other")
    code, found = signed.verify(capsys, public=other)
    assert code == 1 and "not by the given public key" in found[0]["detail"]


def test_after_key_rotation_an_old_checkpoint_verifies_with_the_old_key(
        signed: Signed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with build_app(Settings(db=signed.url)) as app:
        assert app.apply(command_line("m-9", "add_comment", "T-2", T0 + timedelta(hours=1),
                                      "customer", {"body": "later"})).status == "accepted"
    new_private, new_public = keys(tmp_path, "b")
    newer = signed.sign(new_private, "second.checkpoint")
    assert signed.verify(capsys) == (0, [])  # the old one, against the grown log
    assert signed.verify(capsys, newer, new_public) == (0, [])
    assert signed.verify(capsys, signed.checkpoint, new_public)[0] == 1


def test_a_bundle_verifies_with_no_database_and_names_a_changed_event(
        signed: Signed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bundle = tmp_path / "T-1.bundle.json"
    assert main(["bundle", "T-1", "-o", str(bundle), "--db", signed.url]) == 0
    nowhere = f"sqlite:///{tmp_path / 'absent' / 'none.db'}"
    check = ["bundle", "verify", str(bundle), "--public-key", str(signed.public),
             "--json", "--db", nowhere]
    capsys.readouterr()
    assert main(check) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "problems": []}
    assert not (tmp_path / "absent").exists()
    document = json.loads(bundle.read_text())
    assert [e["leaf_index"] for e in document["events"]] == [0, 2, 3, 4]
    document["events"][1]["envelope"]["data"]["body"] = "altered words!"
    bundle.write_text(json.dumps(document))
    assert main(check) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert problems[0].startswith(f"event {PP}/T-1@2 is not leaf 2 of the signed log of 5")


def test_a_store_from_before_the_log_starts_it_with_its_events(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent.parent / "fixtures" / "release-0.1.0.db", path)
    with build_app(Settings(db=f"sqlite:///{path}")) as app:
        log = AuditLog(app.event_log)
        before = [leaf.leaf for leaf in log.stored()]
        assert not log.started() and before
        more = command_line("m-5", "start_work", "T-1", T0 + timedelta(minutes=8), "agent", {})
        assert app.apply(more).status == "accepted"
        logged = log.logged().leaves
        assert logged[:len(before)] == before
        assert logged == [leaf.leaf for leaf in log.stored()]
        tree = log.tree()  # its stored subtree roots start with the log
        assert isinstance(tree, StoredTree) and tree.root() == Tree(logged).root()


def test_two_writers_extend_one_log_without_losing_a_leaf_or_waiting(sqlite_url: str) -> None:
    with build_app(Settings(db=sqlite_url)) as one, build_app(Settings(db=sqlite_url)) as two:
        for n, app in enumerate([one, two, one, two, one]):
            line = command_line(f"c-{n}", "create_ticket", f"T-{n}", T0, "customer",
                                create_payload())
            assert app.apply(line).status == "accepted"
        log = AuditLog(one.event_log)
        assert log.logged().leaves == [leaf.leaf for leaf in log.stored()]
        assert log.logged().entries == 5
        assert log.tree().root() == Tree(log.logged().leaves).root()


def test_openssl_verifies_a_checkpoint_as_documented(sqlite_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert shutil.which("openssl"), "openssl is missing: apt-get install openssl"
    signed = Signed(sqlite_url, tmp_path, monkeypatch)
    lines = signed.checkpoint.read_text().split("\n")
    (tmp_path / "body").write_text("\n".join(lines[:5]) + "\n")
    (tmp_path / "sig").write_bytes(base64.b64decode(lines[6].removeprefix("sig ")))
    checked = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(signed.public), "-rawin",
         "-in", str(tmp_path / "body"), "-sigfile", str(tmp_path / "sig")],
        capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Signature Verified Successfully" in checked.stdout


def test_checkpoint_without_a_signing_key_is_a_usage_error(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TICKETFLOW_SIGNING_KEY", raising=False)
    assert main(["checkpoint", "--db", sqlite_url]) == 2
    assert "TICKETFLOW_SIGNING_KEY" in capsys.readouterr().err


def test_a_stream_saved_outside_the_command_path_is_logged_too(sqlite_url: str) -> None:
    with build_app(Settings(db=sqlite_url)) as app:
        ticket = Ticket.create(ctx(T0), policy_for(PP), "T-7", created())
        app.save(ticket)  # eventsourcing's own save, not a command
        log = AuditLog(app.event_log)
        assert log.logged().labels == [f"{PP}/T-7@1"]
        assert log.logged().leaves == [leaf.leaf for leaf in log.stored()]


def test_a_checkpoint_is_published_to_kafka_when_configured(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        kafka_bootstrap: str) -> None:
    monkeypatch.setenv("TICKETFLOW_TOPIC_PREFIX", f"cp{tmp_path.name[-6:]}.")
    monkeypatch.setenv("TICKETFLOW_KAFKA", kafka_bootstrap)
    signed = Signed(sqlite_url, tmp_path, monkeypatch)  # `checkpoint` publishes it
    consumer = KafkaConsumer(f"cp{tmp_path.name[-6:]}.support.checkpoints",
                             bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20_000)
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert record.value.decode() == signed.checkpoint.read_text()
    assert dict(record.headers)["size"] == b"5"


def test_leaves_recomputed_in_several_processes_name_the_same_changes(
        signed: Signed) -> None:
    signed.rows.edit("T-1", 2, b"original words", b"altered words!")
    signed.rows.delete("T-1", 4)
    key = Ed25519PrivateKey.generate()
    with build_app(Settings(db=signed.url)) as app:
        head = checkpoint(app, key, T0).text()
        signed.rows.edit("T-1", 3, b'"role":"agent"', b'"role":"admin"')
        alone = audit(app, head, key.public_key(), workers=1)
        assert {("edited", f"{PP}/T-1@2"), ("edited", f"{PP}/T-1@3"),
                ("deleted", f"{PP}/T-1@4")} <= {(f.problem, f.event) for f in alone}
        for workers in (2, 3):  # the first shares read by spawned processes
            assert audit(app, head, key.public_key(), workers=workers) == alone


def test_an_event_holding_a_float_is_checked_as_canonical_json(signed: Signed) -> None:
    """orjson writes 0.00001 where json.dumps (the canonical JSON) writes 1e-05: the fast
    leaf of such an event misses and is recomputed canonically, not called changed."""
    key = Ed25519PrivateKey.generate()
    with build_app(Settings(db=signed.url)) as app:
        record = app.recorder.select_events(stream_uuid("ticket", PP, "T-2"), limit=1)[0]
        state = app.event_log.decode(record)
        stream = stream_uuid("ticket", PP, "T-8")
        state.update(ticket_id="T-8", event_id=str(uuid5(stream, "1")), hash="",
                     data={**state["data"], "score": 1e-05})
        envelope = envelope_from_state(record.topic, 1, state)
        state["hash"] = chain_hash("", envelope)
        stored = StoredEvent(originator_id=stream, originator_version=1, topic=record.topic,
                             state=app.mapper.transcoder.encode(state))
        envelope = app.event_log.envelope_of(stored)
        entry, append = app.audit_log.entry_of([(0, envelope)], T0, genesis=False,
                                               check_roots=True)
        app.recorder.insert_events([stored, app.mapper.to_stored_event(entry)],
                                   **{LOG_APPEND: append})
        fast = fast_leaf(record.topic.rsplit(".", 1)[-1], 1, stored.state)
        assert fast is not None and fast != event_leaf(envelope)
        log = AuditLog(app.event_log)
        exact = [leaf.leaf for leaf in log.stored()]
        assert exact == log.logged().leaves
        quick = log.recomputed().leaves  # audit recomputes those missing from the log
        assert [n for n, leaf in enumerate(quick) if leaf != exact[n]] == [len(exact) - 1]
        head = checkpoint(app, key, T0).text()
        assert audit(app, head, key.public_key()) == []
        written = b"1e-05" if b"1e-05" in stored.state else b"0.00001"
        signed.rows.edit("T-8", 1, written, written.replace(b"1", b"2"))
        assert [(f.problem, f.event) for f in audit(app, head, key.public_key())][:1] == [
            ("edited", f"{PP}/T-8@1")]
