"""The `ticketflow` command as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx
import pytest

from tests.support.cli import SPEC_EXAMPLE, as_json, command, run, write_jsonl
from tests.support.kafka import free_ports
from tests.support.waiting import wait_for


def test_apply_prints_one_line_per_command_and_exits_1_on_a_rejection(
    tmp_path: Path, sqlite_url: str
) -> None:
    script = write_jsonl(
        tmp_path / "in.jsonl", SPEC_EXAMPLE,
        command("m-0002", "acknowledge", "2026-11-20T15:00:00-05:00", "agent"),
        command("m-0003", "start_work", "2026-11-20T15:10:00-05:00", "customer"),
        SPEC_EXAMPLE,
    )
    result = run("apply", str(script), db=sqlite_url)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1
    assert [line["status"] for line in lines] == ["accepted", "accepted", "rejected", "duplicate"]
    assert lines[0]["events"] == ["TicketCreated"]
    assert lines[2]["error"]["code"] == "forbidden"


def test_apply_reads_standard_input_and_exits_0_when_all_accepted(sqlite_url: str) -> None:
    result = run("apply", "-", db=sqlite_url, stdin=json.dumps(SPEC_EXAMPLE).encode() + b"\n")
    assert result.returncode == 0
    assert json.loads(result.stdout)["status"] == "accepted"


def test_sla_gives_the_spec_figures_for_the_example_ticket(
    tmp_path: Path, sqlite_url: str
) -> None:
    # Professional/high on `extended` (Mon-Fri 08-20 New York). Created Fri 14:03.
    # First response 3 h: due Fri 17:03 (22:03Z). Resolution 8 h: 5 h 57 min on Friday,
    # 2 h 03 min on Monday: due Mon 10:03 (15:03Z). As of Mon 09:00, unacknowledged:
    # 357 min Friday + 60 min Monday = 417 counted minutes on both clocks.
    run("apply", str(write_jsonl(tmp_path / "in.jsonl", SPEC_EXAMPLE)), db=sqlite_url)
    report = as_json(run("sla", "T-1001", "--as-of", "2026-11-23T09:00:00-05:00", "--json",
                         db=sqlite_url))
    assert (report["plan"], report["priority"], report["calendar"]) == (
        "professional", "high", "extended")
    first, resolution = report["first_response"], report["resolution"]
    assert first == {**first, "status": "breached", "target_minutes": 180,
                     "due_at": "2026-11-20T22:03:00+00:00", "met_at": None,
                     "counted_minutes": 417.0}
    assert resolution == {**resolution, "status": "running", "target_minutes": 480,
                          "due_at": "2026-11-23T15:03:00+00:00", "counted_minutes": 417.0}


def test_sla_explain_lists_every_interval_with_its_reason(
    tmp_path: Path, sqlite_url: str
) -> None:
    script = write_jsonl(
        tmp_path / "in.jsonl", SPEC_EXAMPLE,
        command("m-2", "acknowledge", "2026-11-20T14:33:00-05:00", "agent"),
        command("m-3", "request_user_input", "2026-11-20T15:03:00-05:00", "agent",
                question="Which export?"),
        command("m-4", "receive_user_input", "2026-11-23T08:30:00-05:00", "customer"),
    )
    assert run("apply", str(script), db=sqlite_url).returncode == 0
    report = as_json(run("sla", "T-1001", "--as-of", "2026-11-23T09:30:00-05:00", "--json",
                         "--explain", db=sqlite_url))
    ledger = [(e["reason"], e["counted"], e["minutes"]) for e in report["resolution"]["ledger"]]
    assert ledger == [("open", True, 60.0), ("paused", False, 0.0), ("open", True, 60.0)]
    assert report["resolution"]["counted_minutes"] == 120.0  # 14:03-15:03 + 08:30-09:30
    assert report["first_response"]["status"] == "met"


def test_ticket_as_of_shows_the_state_at_that_instant(tmp_path: Path, sqlite_url: str) -> None:
    script = write_jsonl(
        tmp_path / "in.jsonl", SPEC_EXAMPLE,
        command("m-2", "resolve", "2026-11-21T10:00:00-05:00", "agent", resolution="done"),
    )
    run("apply", str(script), db=sqlite_url)
    created = as_json(run("ticket", "T-1001", "--as-of", "2026-11-20T17:02:59-05:00", "--json",
                          db=sqlite_url))
    before = as_json(run("ticket", "T-1001", "--as-of", "2026-11-21T09:59:59-05:00", "--json",
                         db=sqlite_url))
    after = as_json(run("ticket", "T-1001", "--json", db=sqlite_url))
    assert (created["status"], created["version"]) == ("created", 1)
    # the first-response breach at Fri 17:03 was fired before the resolve (version 2)
    assert (before["status"], before["version"]) == ("created", 2)
    assert (after["status"], after["version"]) == ("resolved", 3)


def test_timeline_and_verify_report_an_intact_chain(tmp_path: Path, sqlite_url: str) -> None:
    run("apply", str(write_jsonl(tmp_path / "in.jsonl", SPEC_EXAMPLE)), db=sqlite_url)
    page = as_json(run("timeline", "T-1001", "--json", db=sqlite_url))
    assert [e["type"] for e in page["events"]] == ["TicketCreated"]
    assert len(page["events"][0]["hash"]) == 64
    assert page["next"] is None
    assert as_json(run("verify", "--json", db=sqlite_url)) == {"ok": True, "breaks": []}


def test_an_unknown_ticket_is_not_found_with_exit_1(sqlite_url: str) -> None:
    result = run("sla", "T-404", "--json", db=sqlite_url)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "not_found"


def test_dead_letters_keep_the_original_text(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"type": "create_ticket"}\n', encoding="utf-8")
    assert run("apply", str(tmp_path / "bad.jsonl"), db=sqlite_url).returncode == 1
    letters = as_json(run("dead-letters", "--json", db=sqlite_url))
    assert letters[0]["original"] == '{"type": "create_ticket"}'
    assert letters[0]["error"]["code"] == "invalid_message"


def test_a_bad_policy_file_names_the_file_the_key_and_the_problem(tmp_path: Path) -> None:
    policy = tmp_path / "broken.toml"
    shipped = Path(__file__).parents[2] / "domain" / "policies" / "growgrebuddy.toml"
    policy.write_text(shipped.read_text().replace('high = "4h"', 'high = "soon"'))
    result = subprocess.run([sys.executable, "-m", "ticketflow.cli", "policy", str(policy)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "broken.toml" in result.stderr
    assert "plans.standard.first_response.high" in result.stderr
    assert "'soon'" in result.stderr


# Its child process waits on PostgreSQL's connection timeouts, which libfaketime's moved
# clock stretches past any bound: it runs in the TICKETFLOW_CLOCK pass, not under faketime.
@pytest.mark.processes
def test_an_unreachable_database_says_what_to_check() -> None:
    result = run("ticket", "T-1", db="postgresql://nobody@127.0.0.1:1/ticketflow")
    assert result.returncode == 2
    assert "--db" in result.stderr


@pytest.mark.parametrize("backend", ["sqlite_url", "postgres_url"])
def test_demo_runs_a_workload_and_prints_the_sla_summary(
    backend: str, request: pytest.FixtureRequest
) -> None:
    db = request.getfixturevalue(backend)
    summary = as_json(run("demo", "--tickets", "80", "--days", "28", "--json", db=db))
    assert summary["outcomes"].get("rejected", 0) == 0
    assert summary["outcomes"]["accepted"] > 400
    assert {row["tenant"] for row in summary["sla"]} == {"personalysispro", "growgrebuddy"}
    assert sum(row["created"] for row in summary["volume"]) == 80
    assert {row["tenant"] for row in summary["satisfaction"]} == {
        "personalysispro", "growgrebuddy"}
    assert summary["self_service"] and summary["times"]
    # GrowgrEbuddy's tier goals (issue #19): measured stints, attainment of each
    assert [(row["tenant"], row["level"]) for row in summary["tiers"]] == [
        ("growgrebuddy", "tier1"), ("growgrebuddy", "tier2")]
    assert all(row["measured"] and row["attainment_percent"] is not None
               for row in summary["tiers"])
    # the knowledge base it starts with answers its customers' questions (SPEC §11)
    first = {(f["tenant"], f["text"]): f["suggestions"] for f in summary["suggestions"]}
    assert first[("personalysispro", "I cannot log in after resetting my password")][0] \
        == "KB-PP-00001"
    assert first[("growgrebuddy", "watering reminders stopped")][0] == "KB-GB-00002"
    assert summary["topics"]["categories"] and summary["topics"]["terms"]
    assert any(row["sessions"] for row in summary["articles"])
    assert all(row["title"] for row in summary["articles"])  # each one it refers to exists
    # the SLA table by month (SPEC §12): the same tickets, cut by the due instant's month
    months = {row["period"] for row in summary["sla_by_month"]}
    assert months and all(month.endswith("-01") for month in months)
    assert sum(row["tickets"] for row in summary["sla_by_month"]) >= sum(
        row["tickets"] for row in summary["sla"])
    # the quarterly review of the window's quarter (SPEC §12), as of the window's end:
    # a clock due after it is open, not breached
    review = summary["review"]
    assert (review["review"], review["from"], review["by"]) == ("2026Q4", "2026-10-01", "month")
    assert {row["tenant"] for row in review["sla"]} == {"personalysispro", "growgrebuddy"}
    assert sum(row["created"] for row in review["volume"]) == 80
    later = [row for row in review["sla"] if row["period"] > "2026-10-01"]
    assert later and all(row["first_response"]["breached"] == 0 for row in later)
    assert sum(row["first_response"]["open"] for row in later) > 0
    sent = summary["notifications"]  # delivered to the demo's webhook receiver
    assert sent["received"] == sum(row["notifications"] for row in sent["rows"]) > 0
    assert sent["badly_signed"] == 0
    assert all(row["delivered"] == row["notifications"] for row in sent["rows"])
    assert {"satisfaction_survey", "survey"} <= {row["rule"] for row in sent["rows"]}


def test_serve_turns_published_commands_into_events_and_stops_on_sigterm(
    tmp_path: Path, sqlite_url: str, kafka_bootstrap: str
) -> None:
    # the engine's clock frozen just after the story: no timer falls due, whatever the date
    env = {**os.environ, "TICKETFLOW_KAFKA": kafka_bootstrap,
           "TICKETFLOW_TOPIC_PREFIX": f"e2e{os.getpid()}.", "TICKETFLOW_LOG_FORMAT": "json",
           "TICKETFLOW_CLOCK": "@2026-11-20T20:30:00Z"}
    port, http_port = free_ports(2)
    issued = _run_env(env, "keys", "create", "--tenant", "personalysispro", "--roles", "agent",
                      "--json", "--db", sqlite_url)
    assert issued is not None
    bearer = {"Authorization": f"Bearer {json.loads(issued.stdout)['secret']}"}
    server = subprocess.Popen([sys.executable, "-m", "ticketflow.cli", "serve", "--db", sqlite_url,
                               "--worker-id", "e2e-1", "--metrics-port", str(port),
                               "--http", str(http_port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        script = write_jsonl(tmp_path / "in.jsonl", SPEC_EXAMPLE,
                             command("m-2", "acknowledge", "2026-11-20T15:00:00-05:00", "agent"))
        published = wait_for(lambda: _run_env(env, "publish", str(script), "--db", sqlite_url),
                             "the commands published")
        assert [json.loads(line)["status"] for line in published.stdout.splitlines()] == [
            "published", "published"]
        found = wait_for(lambda: _run_env(env, "outcome", "m-2", "--db", sqlite_url),
                         "the acknowledge handled")
        assert json.loads(found.stdout)["events"] == [{"type": "TicketAcknowledged", "version": 2}]
        metrics = wait_for(lambda: _accepted_in_metrics(port), "the commands counted")
        assert "ticketflow_relay_position" in metrics
        # --http: the HTTP API beside the Kafka roles, on the same store
        base = f"http://127.0.0.1:{http_port}"
        ticket = httpx.get(f"{base}/v1/tickets/T-1001", headers=bearer, timeout=10)
        assert (ticket.status_code, ticket.json()["status"]) == (200, "acknowledged")
        started = httpx.post(f"{base}/v1/commands", headers=bearer, timeout=10, json=command(
            "m-3", "start_work", "2026-11-20T15:05:00-05:00", "agent"))
        assert (started.status_code, started.json().get("events")) == (201, ["WorkStarted"])
        assert httpx.get(f"{base}/v1/tickets/T-1001", timeout=10).status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    names = {(e["event"], e["role"]) for e in events}
    assert {("created_topics", "main"), ("partitions_assigned", "commands"),
            ("batch_applied", "commands"), ("relay_position_stored", "relay"),
            ("left_group", "commands"), ("http_serving", "main"),
            ("stopped", "main")} <= names, sorted(names)
    assert all(e.get("worker") == "e2e-1" for e in events)
    assert "Exports time out" not in output  # the subject is personal data: never logged


def _accepted_in_metrics(port: int) -> str | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return text if 'ticketflow_commands_total{code="",outcome="accepted"} 2.0' in text else None


def _run_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str] | None:
    result = subprocess.run([sys.executable, "-m", "ticketflow.cli", *args], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    return result if result.returncode == 0 else None



def test_reports_come_from_the_read_models_and_a_replay_reproduces_them(
    tmp_path: Path, sqlite_url: str
) -> None:
    script = write_jsonl(
        tmp_path / "in.jsonl", SPEC_EXAMPLE,
        command("m-2", "acknowledge", "2026-11-20T15:00:00-05:00", "agent"),
        command("m-3", "resolve", "2026-11-23T10:00:00-05:00", "agent", resolution="ok"),
    )
    assert run("apply", str(script), db=sqlite_url).returncode == 0
    period = ("--from", "2026-11-16", "--to", "2026-11-30")
    sla = run("report", "sla", *period, "--as-of", "2026-11-30T00:00:00Z", "--json",
              db=sqlite_url)
    volume = run("report", "volume", *period, "--by", "day", "--json", db=sqlite_url)
    rows = as_json(sla)["rows"]
    assert [(r["first_response"]["met"], r["resolution"]["met"]) for r in rows] == [(1, 1)]
    days = {r["period"]: (r["created"], r["resolved"]) for r in as_json(volume)["rows"]}
    assert days["2026-11-20"] == (1, 0) and days["2026-11-23"] == (0, 1)
    assert run("replay", "--from-start", "--json", db=sqlite_url).returncode == 0
    assert run("report", "sla", *period, "--as-of", "2026-11-30T00:00:00Z", "--json",
               db=sqlite_url).stdout == sla.stdout
    assert run("report", "volume", *period, "--by", "day", "--json",
               db=sqlite_url).stdout == volume.stdout
