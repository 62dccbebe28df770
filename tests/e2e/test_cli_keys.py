"""`ticketflow keys` and `apply --key`, as an operator runs them (real processes)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import SPEC_EXAMPLE, as_json, command, run, write_jsonl

AT = "2026-11-20T14:03:00-05:00"


def test_a_key_is_issued_once_listed_without_its_secret_and_revoked(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    issued = as_json(run("keys", "create", "--tenant", "personalysispro", "--roles",
                         "customer,agent", "--name", "console", "--json", db=db))
    listed = run("keys", "list", "--json", db=db)
    assert issued["secret"] not in listed.stdout
    assert [(k["key_id"], k["roles"], k["state"]) for k in json.loads(listed.stdout)] == [
        (issued["key_id"], ["customer", "agent"], "active")]
    assert as_json(run("keys", "revoke", issued["key_id"], "--json", db=db))["state"] == "revoked"
    missing = run("keys", "revoke", "k0000", "--json", db=db)
    assert missing.returncode == 1 and "not_found" in missing.stdout + missing.stderr


def test_apply_with_a_key_bounds_every_line_and_without_one_trusts_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'apply.db'}"
    secret = as_json(run("keys", "create", "--tenant", "personalysispro", "--roles", "customer",
                         "--json", db=db))["secret"]
    key_file = tmp_path / "key"
    key_file.write_text(secret + "\n")
    lines = write_jsonl(tmp_path / "in.jsonl",
                        command("m-1", "create_ticket", AT, "customer",
                                **SPEC_EXAMPLE["payload"]),
                        command("m-2", "resolve", AT, "agent", resolution="done"))
    bounded = run("apply", str(lines), "--key", str(key_file), db=db)
    outcomes = [json.loads(line) for line in bounded.stdout.splitlines()]
    assert bounded.returncode == 1
    assert [(o["status"], o.get("error", {}).get("code")) for o in outcomes] == [
        ("accepted", None), ("rejected", "forbidden")]
    other = write_jsonl(tmp_path / "other.jsonl",
                        command("m-3", "add_comment", AT, "customer", body="any news?"),
                        command("m-4", "resolve", AT, "agent", resolution="done"))
    from_env = run("apply", str(other), db=db, env={"TICKETFLOW_KEY": str(key_file)})
    assert [(o["status"], o.get("error", {}).get("code")) for o in map(
        json.loads, from_env.stdout.splitlines())] == [("accepted", None),
                                                       ("rejected", "forbidden")]
    trusted = run("apply", str(lines), db=db)  # the operator's own tool
    assert [json.loads(line)["status"] for line in trusted.stdout.splitlines()] == [
        "duplicate", "accepted"]
    wrong = run("apply", str(lines), "--key", "tfk_k1_" + "A" * 43, db=db)
    assert wrong.returncode == 1 and "unauthenticated" in wrong.stdout + wrong.stderr
