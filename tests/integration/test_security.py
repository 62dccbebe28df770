"""Security on every backend, through the command line as a user runs it: encryption at
rest of the event store (TICKETFLOW_CIPHER_KEY), and tenant confinement of the read
commands (--tenant / TICKETFLOW_TENANT)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper

from tests.support.builders import T0, command_line, create_payload
from tests.support.checkpoints import keys
from tests.support.store_rows import StoreRows
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.settings import Settings

SUBJECT = "Quarterly exports vanish overnight"
KEY = base64.b64encode(b"k" * 32).decode()
OTHER_KEY = base64.b64encode(b"o" * 32).decode()


def commands_file(tmp_path: Path) -> Path:
    """A PersonalysisPro ticket with a secret subject, worked and resolved, a
    GrowgrEbuddy ticket, and an unreadable line that quotes the subject."""
    at = [T0 + timedelta(minutes=n) for n in range(6)]
    lines = [
        command_line("p-1", "create_ticket", "T-P", at[0], "customer",
                     create_payload(subject=SUBJECT)),
        command_line("p-2", "acknowledge", "T-P", at[1], "agent", {}),
        command_line("p-3", "add_comment", "T-P", at[2], "customer", {"body": "any news?"}),
        command_line("p-4", "resolve", "T-P", at[3], "agent", {"resolution": "re-indexed"}),
        command_line("g-1", "create_ticket", "T-G", at[4], "customer",
                     create_payload("growgrebuddy"), tenant="growgrebuddy"),
        f"not a command, but it mentions {SUBJECT}".encode(),
    ]
    path = tmp_path / "commands.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_json(text: str) -> Any:
    return json.loads(text)


# -- encryption at rest -----------------------------------------------------------------


@pytest.fixture
def encrypted(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """The commands applied to a store encrypted with KEY (the key stays set)."""
    monkeypatch.setenv("TICKETFLOW_CIPHER_KEY", KEY)
    code, _, _ = cli(capsys, "apply", str(commands_file(tmp_path)), "--db", db_url)
    assert code == 1  # the unreadable line
    return db_url


def test_an_encrypted_store_holds_no_subject_in_its_rows(encrypted: str) -> None:
    states = StoreRows(encrypted).states()
    assert len(states) >= 7  # five events, policy copies, receipts
    assert not any(SUBJECT.encode() in state or b"T-P" in state for state in states)


def test_an_encrypted_sqlite_file_holds_no_subject_at_all(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TICKETFLOW_CIPHER_KEY", KEY)
    cli(capsys, "apply", str(commands_file(tmp_path)), "--db", sqlite_url)
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    assert not any(SUBJECT.encode() in p.read_bytes() for p in files)


def test_every_command_and_report_works_on_an_encrypted_store(
    encrypted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--db", encrypted)
    code, out, _ = cli(capsys, "timeline", "T-P", "--json", *db)
    assert code == 0 and as_json(out)["events"][0]["data"]["subject"] == SUBJECT
    assert as_json(cli(capsys, "ticket", "T-P", "--json", *db)[1])["status"] == "resolved"
    sla = as_json(cli(capsys, "sla", "T-P", "--json", "--as-of", "2026-11-17T00:00Z", *db)[1])
    assert sla["first_response"]["status"] == "met"
    assert cli(capsys, "verify", *db)[0] == 0
    assert as_json(cli(capsys, "outcome", "p-4", *db)[1])["status"] == "accepted"
    (letter,) = as_json(cli(capsys, "dead-letters", "--json", *db)[1])
    assert SUBJECT in letter["original"]
    for report in ("sla", "volume", "satisfaction", "times"):
        code, out, _ = cli(capsys, "report", report, "--from", "2026-11-01", "--to",
                           "2026-12-01", "--json", *db)
        assert code == 0 and as_json(out)["from"], report


def test_an_encrypted_stores_audit_log_is_checkpointed_verified_and_bundled(
    encrypted: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private, public = keys(tmp_path, "a")
    monkeypatch.setenv("TICKETFLOW_SIGNING_KEY", str(private))
    signed, bundle = tmp_path / "first.checkpoint", tmp_path / "T-P.json"
    db = ("--db", encrypted)
    assert cli(capsys, "checkpoint", "-o", str(signed), *db)[0] == 0
    assert cli(capsys, "verify", "--checkpoint", str(signed), "--public-key", str(public),
               *db)[0] == 0
    assert cli(capsys, "bundle", "T-P", "-o", str(bundle), *db)[0] == 0
    assert cli(capsys, "bundle", "verify", str(bundle), "--public-key", str(public))[0] == 0


def test_an_edited_encrypted_row_is_named_by_verify(
    encrypted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = StoreRows(encrypted)
    topic, state = rows.row("T-P", 3)
    rows.put("T-P", 3, topic, state[:-1] + bytes([state[-1] ^ 1]))
    code, out, _ = cli(capsys, "verify", "--json", "--db", encrypted)
    assert code == 1
    assert [(b["ticket_id"], b["version"]) for b in as_json(out)["breaks"]] == [("T-P", 3)]
    assert as_json(out)["breaks"][0]["problem"].startswith("unreadable")


def test_a_snapshot_not_written_with_the_key_is_ignored_and_named_by_verify(
    encrypted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The true head hash, tenant and ticket id copied in do not help without the key."""
    with build_app(Settings(db=encrypted)) as app:
        snapshot = Snapshot.take(app.load_ticket("T-P"))
        snapshot.state["status"] = "in_progress"
        stored = Mapper(transcoder=app.mapper.transcoder).to_stored_event(snapshot)
    StoreRows(encrypted).insert_snapshot("T-P", 4, stored.topic, stored.state)
    assert as_json(cli(capsys, "ticket", "T-P", "--json", "--db", encrypted)[1])[
        "status"] == "resolved"
    code, out, _ = cli(capsys, "verify", "T-P", "--json", "--db", encrypted)
    (found,) = as_json(out)["breaks"]
    assert (code, found["version"], found["record"]) == (1, 4, "snapshot")
    assert "does not decode" in found["problem"]


def test_a_sealed_snapshot_is_obeyed_without_a_fold_in_a_process_that_did_not_write_it(
    encrypted: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AES-GCM vouches for a row that decrypts, so a sealed store keeps what snapshots
    are for across processes (an unsealed one folds such a row once: test_tamper)."""
    with build_app(Settings(db=encrypted)) as app:
        outcomes = app.apply_batch([command_line(
            f"c-{n}", "add_comment", "T-G", T0 + timedelta(minutes=10, seconds=n),
            "customer", {"body": f"comment {n}"}, tenant="growgrebuddy") for n in range(100)])
        assert {outcome.status for outcome in outcomes} == {"accepted"}
    with build_app(Settings(db=encrypted)) as app:
        assert app.snapshots is not None
        monkeypatch.setattr(app.snapshots, "fold_at", fold_refused)
        ticket = app.load_ticket("T-G")
        (snapshot,) = app.snapshots.get(ticket.id, desc=True, limit=1)
    assert (ticket.version, snapshot.originator_version) == (101, 100)


def fold_refused(*_: Any) -> Any:
    raise AssertionError("a sealed snapshot was folded")


@pytest.mark.parametrize("key, fragment", [
    (OTHER_KEY, "not the key this store was written with"),
    (None, "this event store is encrypted: set TICKETFLOW_CIPHER_KEY"),
    ("not-a-key", "generate one with: python -c"),
])
def test_a_wrong_or_missing_key_is_a_clear_error(
    encrypted: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    key: str | None, fragment: str,
) -> None:
    if key is None:
        monkeypatch.delenv("TICKETFLOW_CIPHER_KEY")
    else:
        monkeypatch.setenv("TICKETFLOW_CIPHER_KEY", key)
    code, out, err = cli(capsys, "ticket", "T-P", "--db", encrypted)
    assert (code, out) == (2, "")
    assert fragment in " ".join(err.split())


def test_a_key_for_a_store_written_without_one_is_refused(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "apply", str(commands_file(tmp_path)), "--db", db_url)
    monkeypatch.setenv("TICKETFLOW_CIPHER_KEY", KEY)
    code, _, err = cli(capsys, "ticket", "T-P", "--db", db_url)
    assert code == 2 and "written without encryption" in " ".join(err.split())


# -- tenant confinement -----------------------------------------------------------------


@pytest.fixture
def applied(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert "TICKETFLOW_CIPHER_KEY" not in os.environ
    cli(capsys, "apply", str(commands_file(tmp_path)), "--db", db_url)
    return db_url


READS = {
    "ticket": ("ticket", "{id}"), "timeline": ("timeline", "{id}"), "sla": ("sla", "{id}"),
    "verify": ("verify", "{id}"),
}


@pytest.mark.parametrize("command", READS)
def test_a_confined_caller_sees_another_tenants_ticket_as_not_found(
    applied: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    def error(ticket: str) -> tuple[int, Any]:
        argv = [part.format(id=ticket) for part in READS[command]]
        code, out, _ = cli(capsys, *argv, "--json", "--tenant", "growgrebuddy", "--db", applied)
        return code, as_json(out)["error"]

    other_tenants, missing = error("T-P"), error("T-NONE")
    assert other_tenants[0] == 1 and other_tenants[1]["code"] == "not_found"
    assert other_tenants[1]["message"] == missing[1]["message"].replace("T-NONE", "T-P")
    argv = [part.format(id="T-G") for part in READS[command]]
    assert cli(capsys, *argv, "--tenant", "growgrebuddy", "--db", applied)[0] == 0


def test_a_confined_caller_sees_only_its_own_outcomes_and_dead_letters(
    applied: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_TENANT", "growgrebuddy")
    code, out, _ = cli(capsys, "outcome", "p-1", "--json", "--db", applied)
    assert code == 1 and as_json(out)["error"]["code"] == "not_found"
    assert cli(capsys, "outcome", "g-1", "--db", applied)[0] == 0
    assert as_json(cli(capsys, "dead-letters", "--json", "--db", applied)[1]) == []
    monkeypatch.delenv("TICKETFLOW_TENANT")
    assert len(as_json(cli(capsys, "dead-letters", "--json", "--db", applied)[1])) == 1


def test_a_confined_caller_exports_only_its_own_tenants_events(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli(capsys, "apply", str(commands_file(tmp_path)), "--db", sqlite_url)
    monkeypatch.setenv("TICKETFLOW_TENANT", "growgrebuddy")
    code, out, _ = cli(capsys, "export", "--format", "jsonl", "--db", sqlite_url)
    exported = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(e["tenant"], e["ticket_id"], e["type"]) for e in exported] == [
        ("growgrebuddy", "T-G", "TicketCreated")]
    assert SUBJECT not in out
    # --tenant naming another tenant: refused, as every read command refuses it
    for argv in (["export", "--format", "jsonl"], ["dead-letters"],
                 ["report", "volume", "--from", "2026-11-01", "--to", "2026-12-01"]):
        code, out, err = cli(capsys, *argv, "--tenant", "personalysispro", "--db", sqlite_url)
        assert (code, out) == (2, ""), argv
        assert "confines this caller to tenant growgrebuddy" in " ".join(err.split()), argv
    monkeypatch.delenv("TICKETFLOW_TENANT")
    code, out, _ = cli(capsys, "export", "--format", "jsonl", "--db", sqlite_url)
    assert code == 0 and {json.loads(line)["tenant"] for line in out.splitlines()} == {
        "personalysispro", "growgrebuddy"}


def test_a_confined_callers_notification_report_counts_only_its_tenants(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli(capsys, "apply", str(commands_file(tmp_path)), "--db", sqlite_url)
    argv = ("report", "notifications", "--from", "2026-11-01", "--to", "2026-12-01", "--json",
            "--db", sqlite_url)
    rows = as_json(cli(capsys, *argv)[1])["rows"]
    assert [(r["tenant"], r["rule"], r["notifications"]) for r in rows] == [
        ("personalysispro", "satisfaction_survey", 1)]
    monkeypatch.setenv("TICKETFLOW_TENANT", "growgrebuddy")
    assert as_json(cli(capsys, *argv)[1])["rows"] == []


def test_a_confined_caller_cannot_widen_or_misname_its_scope(
    applied: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_TENANT", "growgrebuddy")
    code, _, err = cli(capsys, "ticket", "T-P", "--tenant", "personalysispro", "--db", applied)
    assert code == 2 and "confines this caller to tenant growgrebuddy" in " ".join(err.split())
    code, _, err = cli(capsys, "report", "volume", "--from", "2026-11-01", "--to",
                       "2026-12-01", "--tenant", "personalysispro", "--db", applied)
    assert code == 2
    monkeypatch.setenv("TICKETFLOW_TENANT", "acme")
    code, _, err = cli(capsys, "ticket", "T-G", "--db", applied)
    assert code == 2 and "unknown tenant 'acme'" in err


def test_a_confined_caller_applies_only_its_own_tenants_commands(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "apply", str(commands_file(tmp_path)), "--tenant",
                       "growgrebuddy", "--db", db_url)
    outcomes = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [o["status"] for o in outcomes] == ["rejected"] * 4 + ["accepted", "rejected"]
    assert {o["error"]["code"] for o in outcomes[:4]} == {"forbidden"}
    assert outcomes[5]["error"]["code"] == "invalid_message"  # unreadable: the engine's


def test_a_confined_tick_fires_only_its_own_tenants_tickets(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli(capsys, "apply", str(commands_file(tmp_path)), "--db", sqlite_url)
    until = (T0 + timedelta(days=30)).isoformat()
    monkeypatch.setenv("TICKETFLOW_TENANT", "growgrebuddy")
    code, out, _ = cli(capsys, "tick", "--until", until, "--json", "--db", sqlite_url)
    fired = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and fired and {o["ticket_id"] for o in fired} == {"T-G"}
    monkeypatch.delenv("TICKETFLOW_TENANT")
    ticket = as_json(cli(capsys, "ticket", "T-P", "--json", "--db", sqlite_url)[1])
    assert ticket["status"] == "resolved"  # its auto-close was due, but not this caller's
    code, out, _ = cli(capsys, "tick", "--until", until, "--json", "--db", sqlite_url)
    assert {json.loads(line)["ticket_id"] for line in out.splitlines()} == {"T-P"}


def test_a_confined_caller_cannot_run_the_demo_for_every_tenant(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETFLOW_TENANT", "growgrebuddy")
    code, out, err = cli(capsys, "demo", "--tickets", "4", "--days", "2", "--json",
                         "--db", sqlite_url)
    assert code == 2 and "the demo writes a workload for every tenant" in " ".join(err.split())
    monkeypatch.delenv("TICKETFLOW_TENANT")
    code, out, _ = cli(capsys, "export", "--format", "jsonl", "--db", sqlite_url)
    assert (code, out) == (0, "")  # not one event written


def test_a_line_refused_for_naming_another_tenant_is_kept_as_the_callers_dead_letter(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = commands_file(tmp_path)
    foreign = source.read_bytes().splitlines()[:4]
    for _ in range(2):  # the same lines twice: still refused, still one letter each
        code, out, _ = cli(capsys, "apply", str(source), "--tenant", "growgrebuddy",
                           "--db", sqlite_url)
        assert code == 1
        assert [json.loads(line)["status"] for line in out.splitlines()][:4] == [
            "rejected"] * 4
    monkeypatch.setenv("TICKETFLOW_TENANT", "growgrebuddy")
    letters = as_json(cli(capsys, "dead-letters", "--json", "--db", sqlite_url)[1])
    assert [(d["error"]["code"], d["tenant"], d["original"].encode()) for d in letters] == [
        ("forbidden", "growgrebuddy", line) for line in foreign]
    assert all(d["key"].startswith("sha256:") for d in letters)
    monkeypatch.setenv("TICKETFLOW_TENANT", "personalysispro")
    assert as_json(cli(capsys, "dead-letters", "--json", "--db", sqlite_url)[1]) == []
    monkeypatch.delenv("TICKETFLOW_TENANT")
    _, out, _ = cli(capsys, "apply", str(source), "--tenant", "personalysispro",
                       "--db", sqlite_url)  # the ids it named are still its own to use
    assert [json.loads(line)["status"] for line in out.splitlines()][:4] == ["accepted"] * 4


def test_a_refused_line_over_the_size_limit_keeps_a_bounded_part(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    huge = command_line("p-9", "create_ticket", "T-H", T0, "customer",
                        create_payload(description="x" * 300_000))
    (tmp_path / "huge.jsonl").write_bytes(huge + b"\n")
    code, _, _ = cli(capsys, "apply", str(tmp_path / "huge.jsonl"), "--tenant",
                     "growgrebuddy", "--db", sqlite_url)
    (letter,) = as_json(cli(capsys, "dead-letters", "--json", "--db", sqlite_url)[1])
    # too large to be read, so its tenant is not read either: refused for its size
    assert code == 1 and letter["error"]["code"] == "invalid_message"
    assert f"message is {len(huge)} bytes" in letter["error"]["message"]
    assert letter["original"].encode() == huge[:64 * 1024]
    assert letter["original_length"] == len(huge)
    assert letter["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert letter["tenant"] is None  # kept as nobody's: not the tenant it may name
