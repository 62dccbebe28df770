"""`ticketflow webhooks …` and `report notifications`, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import SPEC_EXAMPLE, as_json, command, run, write_jsonl

TENANT = ("--tenant", "personalysispro")


def test_a_webhook_is_added_with_its_secret_once_listed_without_it_and_removed(
        tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hooks.db'}"
    added = as_json(run("webhooks", "add", "https://hooks.example.com/support", *TENANT,
                        "--rules", "satisfaction_survey", "--json", db=db))
    assert added["secret"].startswith("whsec_") and added["rules"] == ["satisfaction_survey"]
    listed = run("webhooks", "list", *TENANT, "--json", db=db)
    assert added["secret"] not in listed.stdout
    assert [w["webhook_id"] for w in json.loads(listed.stdout)] == [added["webhook_id"]]
    assert as_json(run("webhooks", "list", "--tenant", "growgrebuddy", "--json", db=db)) == []
    other = run("webhooks", "remove", added["webhook_id"], "--tenant", "growgrebuddy", db=db)
    assert other.returncode == 1  # another tenant's webhook is not found
    run("webhooks", "remove", added["webhook_id"], *TENANT, db=db)
    assert as_json(run("webhooks", "list", *TENANT, "--json", db=db)) == []


def test_a_webhook_must_be_an_http_url_of_a_tenant_with_its_rules(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hooks.db'}"
    for args in (("file:///etc/passwd", *TENANT), ("https://h.example/", "--rules", "nope",
                                                    *TENANT), ("https://h.example/",)):
        refused = run("webhooks", "add", *args, db=db)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr


def test_report_notifications_counts_by_rule_and_delivery_outcome(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'report.db'}"
    at = "2026-11-20T1{}:00:00-05:00".format
    lines = write_jsonl(tmp_path / "in.jsonl",
                        command("m-1", "create_ticket", at(0), "customer",
                                **SPEC_EXAMPLE["payload"]),
                        command("m-2", "escalate", at(1), "agent", level="first_level",
                                reason="internal reason"),
                        command("m-3", "resolve", at(2), "agent", resolution="done"))
    assert run("apply", str(lines), db=db).returncode == 0
    report = as_json(run("report", "notifications", "--from", "2026-11-01",
                         "--to", "2026-12-01", "--json", db=db))
    assert [(r["rule"], r["notifications"], r["undelivered"]) for r in report["rows"]] == [
        ("escalated_first_level", 1, 1), ("satisfaction_survey", 1, 1)]
