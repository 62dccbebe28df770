"""Issue 13.6 through the CLI: a policy the SLA maths could not serve used to validate,
then crash `apply` (the whole batch), `sla`, `tick` and `report sla` for every tenant.
Now such a policy is served or refused by `ticketflow policy`, and an old stored version
that cannot be served costs only its own tickets a `policy_violation`, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import SPEC_EXAMPLE, as_json, command, run, write_jsonl
from ticketflow.application import TicketingApp
from ticketflow.domain.policy import policy_from_data, shipped_policies
from ticketflow.settings import eventstore_env

SHIPPED = Path(__file__).parents[2] / "domain" / "policies"
AS_OF = "2026-12-01T00:00:00+00:00"
PERIOD = ("--from", "2026-11-01", "--to", "2026-12-31", "--as-of", AS_OF)
GROW = {
    "message_id": "g-1", "type": "create_ticket", "tenant": "growgrebuddy", "ticket_id": "G-1",
    "occurred_at": "2026-11-20T14:03:00+00:00", "actor": {"id": "user-7", "role": "customer"},
    "payload": {"account_id": "grow-1", "plan": "standard", "channel": "email",
                "category": "account", "priority": "high", "subject": "Locked out",
                "description": "…"},
}
GROW_ACK = {**GROW, "message_id": "g-2", "type": "acknowledge", "payload": {},
            "occurred_at": "2026-11-20T15:03:00+00:00", "actor": {"id": "a-1", "role": "agent"}}
ACK = command("m-0002", "acknowledge", "2026-11-20T15:03:00-05:00", "agent")


def personalysispro(version: str, calendar: str, hours: dict[str, list[str]],
                    **resolution: str) -> str:
    """The shipped personalysispro file with one calendar and some targets changed."""
    text = (SHIPPED / "personalysispro.toml").read_text(encoding="utf-8")
    document = tomllib.loads(text)
    hours_toml = ", ".join(f"{day} = {json.dumps(windows)}" for day, windows in hours.items())
    text = text.replace(f'version = "{document["version"]}"', f'version = "{version}"')
    text = text.replace(
        f"[calendars.{calendar}]\nhours = " + _inline(document["calendars"][calendar]["hours"]),
        f"[calendars.{calendar}]\nhours = {{ {hours_toml} }}")
    for priority, target in resolution.items():
        text = text.replace(f'{priority} = "{document["resolution"][priority]}"\n',
                            f'{priority} = "{target}"\n')
    return text


def _inline(hours: dict[str, list[str]]) -> str:
    return "{ " + ", ".join(f"{day} = {json.dumps(w)}" for day, w in hours.items()) + " }"


def no_traceback(*results: Any) -> None:
    for result in results:
        assert "Traceback" not in result.stderr, result.stderr


def test_the_policy_of_the_issue_is_served_for_every_tenant(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Open Saturdays 10-12 only, 90 days to resolve a low ticket: due two decades on.
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "personalysispro.toml").write_text(personalysispro(
        "1.1.0", "business", {"sat": ["10:00-12:00"]}, low="90d"), encoding="utf-8")
    monkeypatch.setenv("TICKETFLOW_POLICIES", str(folder))
    low = {**SPEC_EXAMPLE, "payload": {**SPEC_EXAMPLE["payload"], "plan": "standard",
                                       "priority": "low"}}

    applied = run("apply", str(write_jsonl(tmp_path / "in.jsonl", GROW, low, ACK, GROW_ACK)),
                  db=sqlite_url)
    sla = run("sla", "T-1001", "--as-of", AS_OF, "--json", db=sqlite_url)
    tick = run("tick", "--until", AS_OF, "--json", db=sqlite_url)
    report = run("report", "sla", *PERIOD, "--json", db=sqlite_url)

    no_traceback(applied, sla, tick, report)
    assert applied.returncode == 0, applied.stdout
    assert [json.loads(line)["status"] for line in applied.stdout.splitlines()] == [
        "accepted"] * 4
    # The 1080th Saturday from Fri 2026-11-20, 12:00 EDT
    assert as_json(sla)["resolution"]["due_at"] == "2047-07-27T16:00:00+00:00"
    assert tick.returncode == 0 and "G-1" in tick.stdout
    assert {row["tenant"] for row in as_json(report)["rows"]} == {"growgrebuddy"}


def test_a_policy_the_evaluator_cannot_serve_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, sqlite_url: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(personalysispro("2.0.0", "extended", {"sat": ["10:00-10:01"]},
                                   high="366d"), encoding="utf-8")
    run("apply", str(write_jsonl(tmp_path / "in.jsonl", SPEC_EXAMPLE)), db=sqlite_url)

    validated = subprocess.run([sys.executable, "-m", "ticketflow.cli", "policy", str(bad)],
                               capture_output=True, text=True, check=False)
    what_if = run("report", "sla", *PERIOD, "--policy", str(bad), db=sqlite_url)

    no_traceback(validated, what_if)
    for result in (validated, what_if):
        assert result.returncode == 2
        message = " ".join(result.stderr.split())
        assert f"{bad}: invalid policy" in message
        assert "resolution.high: 527040 min may not fall due within 50 years on calendar" \
               " 'extended' (open 1 min a week)" in message


def test_a_stored_version_that_cannot_be_served_costs_only_its_own_tickets(
    tmp_path: Path, sqlite_url: str
) -> None:
    # An older version, accepted before validation knew better, is in the store with a
    # ticket under it; the files have moved on to the shipped policies.
    document = tomllib.loads(personalysispro("0.9.0", "extended", {"sat": ["10:00-10:01"]},
                                             high="366d"))
    old = policy_from_data(document, "stored", stored=True)
    clock = lambda: datetime(2026, 11, 20, 20, tzinfo=UTC)  # noqa: E731
    with TicketingApp({**shipped_policies(), "personalysispro": old},
                      eventstore_env(sqlite_url), clock=clock) as app:
        created = app.apply_batch([json.dumps(d).encode() for d in (GROW, SPEC_EXAMPLE)])
    assert [o.status for o in created] == ["accepted", "accepted"]

    applied = run("apply", str(write_jsonl(tmp_path / "in.jsonl", ACK, GROW_ACK)), db=sqlite_url)
    sla = run("sla", "T-1001", "--as-of", AS_OF, db=sqlite_url)
    tick = run("tick", "--until", AS_OF, "--json", db=sqlite_url)
    report = run("report", "sla", *PERIOD, db=sqlite_url)

    no_traceback(applied, sla, tick, report)
    outcomes = [json.loads(line) for line in applied.stdout.splitlines()]
    assert applied.returncode == 1
    assert [o["status"] for o in outcomes] == ["rejected", "accepted"]
    assert outcomes[0]["error"]["code"] == "policy_violation"
    assert "policy personalysispro 0.9.0 cannot evaluate" in outcomes[0]["error"]["message"]
    assert sla.returncode == 2 and "cannot evaluate the SLA clocks" in sla.stderr
    assert tick.returncode == 2
    assert [json.loads(line)["ticket_id"] for line in tick.stdout.splitlines()] == ["G-1"] * 2
    assert "nothing fired for ticket T-1001" in " ".join(tick.stderr.split())
    assert report.returncode == 2
    assert "ticket T-1001 (personalysispro)" in " ".join(report.stderr.split())
