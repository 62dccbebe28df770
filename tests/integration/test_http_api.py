"""The HTTP API (SPEC §9) on a real uvicorn server, through httpx: every endpoint, the
status of every rejection code, keys (tenant confinement, role bounds, revocation,
expiry), rate limits, and what a hostile client can send."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from tests.support.builders import T0, command_line, create_payload
from tests.support.http import Served, serving
from tests.support.knowledge import EXPECTED, article_command, corpus_commands, session_command
from tests.support.receiver import Receiver, receiving
from ticketflow.cli import main
from ticketflow.consumers.webhooks import DeliveryWorker
from ticketflow.http import models
from ticketflow.projections.db import engine_for
from ticketflow.schemas.commands import MAX_MESSAGE_BYTES

PP, GB = "personalysispro", "growgrebuddy"


def at(minutes: int) -> Any:
    return T0 + timedelta(minutes=minutes)


def create(message_id: str, ticket_id: str, minutes: int = 0, tenant: str = PP,
           role: str = "customer", actor: str = "actor-1") -> bytes:
    return command_line(message_id, "create_ticket", ticket_id, at(minutes), role,
                        create_payload(tenant), tenant=tenant, actor=actor)


def act(message_id: str, type_: str, ticket_id: str, minutes: int, role: str = "agent",
        tenant: str = PP, actor: str = "actor-1", **payload: Any) -> bytes:
    return command_line(message_id, type_, ticket_id, at(minutes), role, payload,
                        tenant=tenant, actor=actor)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    models.Problem.model_validate(body)
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"urn:ticketflow:problem:{code}"
    assert body["title"] and body["detail"]
    return body


def shaped(model: type[BaseModel], response: httpx.Response) -> Any:
    """The answer is a 200 that its documented model describes."""
    assert response.status_code == 200, response.text
    body = response.json()
    model.model_validate(body)
    return body


@pytest.fixture
def agent(http_api: Served) -> httpx.Client:
    """A PersonalysisPro key for customers, agents and managers (any actor)."""
    return http_api.client(http_api.key(PP, ("customer", "agent", "manager")))


@pytest.fixture
def worked(http_api: Served, agent: httpx.Client) -> httpx.Client:
    """T-1 created, acknowledged, worked on, commented and resolved; T-2 created."""
    sent = [create("m-1", "T-1"), act("m-2", "acknowledge", "T-1", 5),
            act("m-3", "start_work", "T-1", 10),
            act("m-4", "add_comment", "T-1", 20, role="customer", body="any news?",
                visibility="public"),
            act("m-5", "resolve", "T-1", 30, resolution="re-indexed"), create("m-6", "T-2", 40)]
    for raw in sent:
        assert agent.post("/v1/commands", content=raw).status_code == 201
    return agent


def cli_json(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> Any:
    capsys.readouterr()
    main([*argv, "--db", db, "--json"])
    return json.loads(capsys.readouterr().out)


# -- commands ---------------------------------------------------------------------------


def test_a_command_is_accepted_201_with_its_outcome_and_again_a_duplicate_200(
        agent: httpx.Client) -> None:
    first = agent.post("/v1/commands", content=create("m-1", "T-1"))
    assert first.status_code == 201
    # no article yet to suggest (SPEC §11); a duplicate carries none (not the receipt)
    assert first.json() == {"message_id": "m-1", "status": "accepted",
                            "events": ["TicketCreated"], "ticket_id": "T-1",
                            "suggestions": []}
    assert first.headers["location"] == "/v1/outcomes/m-1"
    again = agent.post("/v1/commands", content=create("m-1", "T-1"))
    assert again.status_code == 200
    assert again.json() == {"message_id": "m-1", "status": "duplicate", "events": [],
                            "ticket_id": "T-1"}


REJECTIONS = {
    "invalid_message": (400, [b'{"message_id": "m-9", "type": "create_ticket"']),
    "not_found": (404, [act("m-9", "acknowledge", "T-404", 5)]),
    "invalid_transition": (409, [create("m-1", "T-1"), act("m-9", "start_work", "T-1", 5)]),
    "already_exists": (409, [create("m-1", "T-1"), create("m-9", "T-1", 5)]),
    "idempotency_mismatch": (409, [create("m-1", "T-1"), create("m-1", "T-2")]),
    "policy_violation": (422, [create("m-1", "T-1"), act(
        "m-9", "change_priority", "T-1", 5, priority="high", reason="same again")]),
    "forbidden": (403, [create("m-9", "T-1", tenant=GB)]),
}


@pytest.mark.parametrize("code", sorted(REJECTIONS))
def test_a_rejected_command_is_a_problem_with_its_code_at_the_tables_status(
        agent: httpx.Client, code: str) -> None:
    status, sent = REJECTIONS[code]
    for raw in sent[:-1]:
        assert agent.post("/v1/commands", content=raw).status_code == 201
    body = problem(agent.post("/v1/commands", content=sent[-1]), status, code)
    assert body.get("message_id") == (None if code == "invalid_message" else
                                      "m-1" if code == "idempotency_mismatch" else "m-9")


def test_a_command_without_a_valid_key_is_401_with_a_bearer_challenge(
        http_api: Served) -> None:
    for client in (http_api.client(), http_api.client("tfk_nobody_" + "A" * 43),
                   http_api.client("not a key")):
        response = client.post("/v1/commands", content=create("m-1", "T-1"))
        problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    basic = httpx.post(http_api.url + "/v1/commands", content=create("m-1", "T-1"),
                       auth=("user", "password"))
    problem(basic, 401, "unauthenticated")


def test_a_batch_is_answered_200_with_each_outcome_as_ticketflow_apply_prints_it(
        http_api: Served, agent: httpx.Client, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    lines = [create("m-1", "T-1"), act("m-2", "acknowledge", "T-1", 5),
             act("m-3", "start_work", "T-404", 6), b"\"not a command\"",
             create("m-1", "T-1"), act("m-4", "close", "T-1", 7, role="customer")]
    response = agent.post("/v1/commands", content=b"[" + b",\n ".join(lines) + b"]")
    assert response.status_code == 200
    answered = response.json()
    for outcome in answered:
        models.Outcome.model_validate(outcome)
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    capsys.readouterr()
    main(["apply", str(path), "--db", f"sqlite:///{tmp_path / 'cli.db'}"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert answered == printed
    assert [o["status"] for o in answered] == ["accepted", "accepted", "rejected", "rejected",
                                               "duplicate", "rejected"]


def test_a_batch_keeps_each_commands_own_bytes(http_api: Served, agent: httpx.Client) -> None:
    spaced = b'{ "message_id" : "m-1",\n "type": "create_ticket"' + create("x", "T-1")[
        len(b'{"message_id": "x", "type": "create_ticket"'):]
    assert json.loads(spaced)["message_id"] == "m-1"
    assert agent.post("/v1/commands", content=b"[" + spaced + b"]").json()[0]["status"] \
        == "accepted"
    again = agent.post("/v1/commands", content=spaced)  # the same command, alone
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


@pytest.mark.parametrize("body", [b"[", b"[1,,2]", b'[{"a": 1}] x', b"[" * 100_000,
                                  b"[\xff]"])
def test_a_body_that_is_no_json_array_of_commands_is_400(agent: httpx.Client,
                                                         body: bytes) -> None:
    problem(agent.post("/v1/commands", content=body), 400, "invalid_message")


def test_an_empty_batch_is_an_empty_answer(agent: httpx.Client) -> None:
    response = agent.post("/v1/commands", content=b" [ ] ")
    assert response.status_code == 200 and response.json() == []


def test_a_batch_of_other_things_than_commands_rejects_each(agent: httpx.Client) -> None:
    answered = agent.post("/v1/commands", content=b'[1, "x", null, [], ' + b"9" * 5000
                          + b"]").json()
    assert [o["error"]["code"] for o in answered] == ["invalid_message"] * 5


# -- bounded bodies ---------------------------------------------------------------------


def test_a_body_declared_over_the_bound_is_413_before_it_is_read(
        http_api: Served, agent: httpx.Client) -> None:
    huge = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    problem(agent.post("/v1/commands", content=huge), 413, "invalid_message")


def test_a_streamed_body_over_the_bound_is_413(agent: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(100):  # 6.4 MiB, without a Content-Length
            yield b" " * (64 * 1024)

    problem(agent.post("/v1/commands", content=chunks()), 413, "invalid_message")


def test_a_batch_of_more_than_1000_commands_is_400_and_nothing_is_recorded(
        http_api: Served, agent: httpx.Client) -> None:
    body = b"[" + b",".join(create(f"m-{n}", f"T-{n}") for n in range(1001)) + b"]"
    problem(agent.post("/v1/commands", content=body), 400, "invalid_message")
    problem(agent.get("/v1/tickets/T-0"), 404, "not_found")


def test_a_command_over_the_message_limit_is_rejected_and_kept_bounded(
        http_api: Served, agent: httpx.Client) -> None:
    raw = create("m-big", "T-1").replace(b'"description": "\\u2026"', b'"description": "'
                                          + b"x" * MAX_MESSAGE_BYTES + b'"')
    assert len(raw) > MAX_MESSAGE_BYTES
    body = problem(agent.post("/v1/commands", content=raw), 400, "invalid_message")
    assert "limit" in body["detail"]
    letters = http_api.service.queries(http_api.service.keys.list()[0]).dead_letters()
    assert [len(letter["original"]) < len(raw) for letter in letters] == [True]


def test_an_unreadable_command_is_kept_as_the_callers_dead_letter(
        http_api: Served, agent: httpx.Client) -> None:
    problem(agent.post("/v1/commands", content=b"\xff\xfe not a command"), 400,
            "invalid_message")
    key = http_api.service.keys.list()[0]
    [letter] = http_api.service.queries(key).dead_letters()
    assert letter["error"]["code"] == "invalid_message"


# -- keys bound what a caller may say ---------------------------------------------------


def test_a_customer_key_cannot_escalate_or_resolve(http_api: Served) -> None:
    customer = http_api.client(http_api.key(PP, ("customer",)))
    assert customer.post("/v1/commands", content=create("m-1", "T-1")).status_code == 201
    for raw in (act("m-2", "escalate", "T-1", 5, level="management", reason="now"),
                act("m-3", "resolve", "T-1", 6, resolution="done"),
                act("m-4", "escalate", "T-1", 7, role="customer", level="management",
                    reason="as a customer")):
        problem(customer.post("/v1/commands", content=raw), 403, "forbidden")
    state = customer.get("/v1/tickets/T-1").json()
    assert (state["status"], state["level"], state["version"]) == ("created", None, 1)


def test_an_agent_key_cannot_record_satisfaction(http_api: Served, worked: httpx.Client) -> None:
    agent = http_api.client(http_api.key(PP, ("agent",)))
    rating = act("m-7", "record_satisfaction", "T-1", 50, role="customer", score=5)
    problem(agent.post("/v1/commands", content=rating), 403, "forbidden")
    as_agent = act("m-8", "record_satisfaction", "T-1", 51, role="agent", score=5)
    problem(agent.post("/v1/commands", content=as_agent), 403, "forbidden")
    assert worked.post("/v1/commands", content=rating).status_code == 201  # a customer may


def test_a_key_for_one_actor_speaks_for_that_actor_only(http_api: Served) -> None:
    own = http_api.client(http_api.key(PP, ("customer",), actor="user-42"))
    assert own.post("/v1/commands", content=create("m-1", "T-1", actor="user-42")
                    ).status_code == 201
    problem(own.post("/v1/commands", content=create("m-2", "T-2", actor="user-43")),
            403, "forbidden")


def test_no_key_may_speak_as_the_engines_timer(http_api: Served) -> None:
    system = http_api.client(http_api.key(PP, ("system",)))
    problem(system.post("/v1/commands", content=create(
        "m-1", "T-1", role="system", actor="ticketflow-timer")), 403, "forbidden")


def test_a_revoked_key_is_refused_at_once(http_api: Served) -> None:
    secret = http_api.key(PP, ("customer",))
    client = http_api.client(secret)
    assert client.post("/v1/commands", content=create("m-1", "T-1")).status_code == 201
    [key] = http_api.service.keys.list()
    http_api.service.keys.revoke(key.key_id)
    problem(client.get("/v1/tickets/T-1"), 401, "unauthenticated")
    problem(client.post("/v1/commands", content=create("m-2", "T-2")), 401, "unauthenticated")


def test_a_key_is_refused_once_it_expires_by_the_engines_clock(http_api: Served) -> None:
    client = http_api.client(http_api.key(PP, ("customer",),
                                          expires_at=http_api.clock() + timedelta(hours=1)))
    assert client.post("/v1/commands", content=create("m-1", "T-1")).status_code == 201
    http_api.clock.advance(timedelta(minutes=59))
    assert client.get("/v1/tickets/T-1").status_code == 200
    http_api.clock.advance(timedelta(minutes=1))
    problem(client.get("/v1/tickets/T-1"), 401, "unauthenticated")


# -- reads are confined to the key's tenant ---------------------------------------------

CONFINED = ["/v1/tickets/T-9", "/v1/tickets/T-9?as_of=2026-11-16T15:00:00Z",
            "/v1/tickets/T-9/timeline", "/v1/tickets/T-9/sla?as_of=2026-11-16T15:00:00Z",
            "/v1/verify?ticket=T-9", "/v1/outcomes/g-1"]


def test_another_tenants_ticket_is_answered_byte_for_byte_like_a_missing_one(
        http_api: Served) -> None:
    pp = http_api.client(http_api.key(PP, ("customer", "agent")))
    gb = http_api.client(http_api.key(GB, ("customer",)))
    missing = {path: pp.get(path) for path in CONFINED}
    assert gb.post("/v1/commands", content=create("g-1", "T-9", tenant=GB)).status_code == 201
    assert gb.get("/v1/tickets/T-9").status_code == 200
    for path in CONFINED:
        other = pp.get(path)
        assert other.status_code == missing[path].status_code == 404, path
        assert other.content == missing[path].content, path
        assert _headers(other) == _headers(missing[path]), path


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.multi_items() if name != "date"]


def test_reports_and_events_hold_only_the_keys_tenant(http_api: Served,
                                                      worked: httpx.Client) -> None:
    gb = http_api.client(http_api.key(GB, ("customer",)))
    assert gb.post("/v1/commands", content=create("g-1", "T-G", tenant=GB)).status_code == 201
    window = "from=2026-11-01&to=2026-12-01"
    for client, tenant in ((worked, PP), (gb, GB)):
        volume = shaped(models.VolumeReport, client.get(f"/v1/reports/volume?{window}&by=day"))
        assert volume["tenant"] == tenant and {r["tenant"] for r in volume["rows"]} == {tenant}
        lines = client.get("/v1/events?format=jsonl").text.splitlines()
        assert lines and {json.loads(line)["tenant"] for line in lines} == {tenant}


# -- reads, as the command line prints them ---------------------------------------------


def test_the_ticket_now_and_as_of_an_instant_as_ticketflow_ticket(
        http_api: Served, worked: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    now = shaped(models.TicketState, worked.get("/v1/tickets/T-1"))
    assert now == cli_json(capsys, http_api.db, "ticket", "T-1", "--tenant", PP)
    assert now["status"] == "resolved"
    then = shaped(models.TicketState, worked.get("/v1/tickets/T-1",
                                                 params={"as_of": "2026-11-16T09:07:00-05:00"}))
    assert then == cli_json(capsys, http_api.db, "ticket", "T-1", "--tenant", PP,
                            "--as-of", "2026-11-16T09:07:00-05:00")
    assert (then["status"], then["as_of"]) == ("acknowledged", "2026-11-16T09:07:00-05:00")
    problem(worked.get("/v1/tickets/T-1", params={"as_of": "2026-11-16T09:07:00"}), 400,
            "invalid_message")
    problem(worked.get("/v1/tickets/T-1", params={"as_of": "yesterday"}), 400,
            "invalid_message")


def test_the_timeline_pages_by_a_cursor_that_stays_exact_while_the_ticket_grows(
        http_api: Served, worked: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    first = shaped(models.TimelinePage, worked.get("/v1/tickets/T-1/timeline?limit=2"))
    assert [e["version"] for e in first["events"]] == [1, 2] and first["next"] == 2
    assert worked.get("/v1/tickets/T-1/timeline?limit=2").headers["link"] == \
        '</v1/tickets/T-1/timeline?after=2&limit=2>; rel="next"'
    reopen = act("m-7", "reopen", "T-1", 45, role="customer", reason="again")
    assert worked.post("/v1/commands", content=reopen).status_code == 201
    seen, after = [e["version"] for e in first["events"]], first["next"]
    while after is not None:
        page = shaped(models.TimelinePage, worked.get(
            "/v1/tickets/T-1/timeline", params={"after": after, "limit": 2}))
        seen += [e["version"] for e in page["events"]]
        after = page["next"]
    assert seen == [1, 2, 3, 4, 5, 6]
    whole = worked.get("/v1/tickets/T-1/timeline").json()
    assert whole == cli_json(capsys, http_api.db, "timeline", "T-1", "--tenant", PP)
    assert "link" not in worked.get("/v1/tickets/T-1/timeline").headers
    assert worked.get("/v1/tickets/T-1/timeline?after=6").json() == {"events": [], "next": None}


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "after=-1",
                                   "after=99999999999999999999999", "after=1.5"])
def test_a_timeline_page_out_of_bounds_is_400(worked: httpx.Client, query: str) -> None:
    problem(worked.get(f"/v1/tickets/T-1/timeline?{query}"), 400, "invalid_message")


def test_the_timeline_holds_at_most_100_events_unless_asked(
        http_api: Served, agent: httpx.Client) -> None:
    comments = [create("m-0", "T-1")] + [
        act(f"m-{n}", "add_comment", "T-1", 1, role="customer", body=f"c{n}",
            visibility="public") for n in range(1, 120)]
    assert agent.post("/v1/commands", content=b"[" + b",".join(comments) + b"]"
                      ).status_code == 200
    page = agent.get("/v1/tickets/T-1/timeline").json()
    assert len(page["events"]) == 100 and page["next"] == 100
    assert len(agent.get("/v1/tickets/T-1/timeline?limit=1000").json()["events"]) == 120


def test_the_sla_clocks_as_ticketflow_sla(http_api: Served, worked: httpx.Client,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    when = "2026-11-16T16:00:00Z"
    sla = shaped(models.Sla, worked.get("/v1/tickets/T-1/sla", params={"as_of": when}))
    assert sla == cli_json(capsys, http_api.db, "sla", "T-1", "--tenant", PP, "--as-of", when)
    assert "ledger" not in sla["first_response"]
    explained = shaped(models.Sla, worked.get("/v1/tickets/T-1/sla",
                                              params={"as_of": when, "explain": "true"}))
    assert explained == cli_json(capsys, http_api.db, "sla", "T-1", "--tenant", PP,
                                 "--as-of", when, "--explain")
    assert explained["resolution"]["ledger"]
    now = shaped(models.Sla, worked.get("/v1/tickets/T-1/sla"))
    assert now["as_of"] == http_api.clock().isoformat()  # the engine's clock, not the wall's


def test_an_outcome_as_ticketflow_outcome(http_api: Served, worked: httpx.Client,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    found = shaped(models.MessageOutcome, worked.get("/v1/outcomes/m-5"))
    assert found == cli_json(capsys, http_api.db, "outcome", "m-5", "--tenant", PP)
    assert found["events"] == [{"type": "TicketResolved", "version": 5}]
    worked.post("/v1/commands", content=act("m-7", "start_work", "T-2", 41))
    rejected = shaped(models.MessageOutcome, worked.get("/v1/outcomes/m-7"))
    assert rejected["error"]["code"] == "invalid_transition"
    problem(worked.get("/v1/outcomes/m-nope"), 404, "not_found")


def test_tier_goals_in_the_sla_and_times_reports_as_on_the_command_line(
        http_api: Served, capsys: pytest.CaptureFixture[str]) -> None:
    # a GrowgrEbuddy ticket resolved at tier1 after 20 frontline minutes (goal 30), one
    # still there: due 30 min after its creation, missed by the as-of
    gb = http_api.client(http_api.key(GB, ("customer", "agent")))
    for raw in (create("g-1", "G-1", tenant=GB), act("g-2", "resolve", "G-1", 20, tenant=GB,
                                                     resolution="done"),
                create("g-3", "G-2", tenant=GB)):
        assert gb.post("/v1/commands", content=raw).status_code == 201
    window = {"from": "2026-11-16", "to": "2026-11-17", "by": "day"}
    for report, model, extra in (("sla", models.SlaReport, ["--as-of", "2026-11-17T00:00:00Z"]),
                                 ("times", models.TimesReport, [])):
        params = window | ({"as_of": extra[1]} if extra else {})
        answered = shaped(model, gb.get(f"/v1/reports/{report}", params=params))
        assert answered == cli_json(capsys, http_api.db, "report", report, "--from",
                                    "2026-11-16", "--to", "2026-11-17", "--by", "day",
                                    "--tenant", GB, *extra)
        assert [(r["period"], r["level"], r["met"], r["missed"], r["attainment_percent"])
                for r in answered["tiers"]] == [("2026-11-16", "tier1", 1, 1, 50.0)]


@pytest.mark.parametrize(("report", "model", "extra"), [
    ("sla", models.SlaReport, ["--as-of", "2026-11-20T00:00:00Z"]),
    ("volume", models.VolumeReport, ["--by", "day"]),
    ("satisfaction", models.SatisfactionReport, ["--by", "day"]),
    ("times", models.TimesReport, []),
])
def test_each_report_as_ticketflow_report(
        http_api: Served, worked: httpx.Client, capsys: pytest.CaptureFixture[str],
        report: str, model: type[BaseModel], extra: list[str]) -> None:
    params = {"from": "2026-11-01", "to": "2026-12-01"}
    params |= {"as_of": extra[1]} if report == "sla" else {}
    params |= {"by": "day"} if "--by" in extra else {}
    answered = shaped(model, worked.get(f"/v1/reports/{report}", params=params))
    printed = cli_json(capsys, http_api.db, "report", report, "--from", "2026-11-01",
                       "--to", "2026-12-01", "--tenant", PP, *extra)
    assert answered == printed
    assert any(answered.get(rows) for rows in ("rows", "satisfaction", "self_service")) \
        or report == "satisfaction"


def test_a_report_needs_its_window(worked: httpx.Client) -> None:
    problem(worked.get("/v1/reports/volume?from=2026-11-01"), 400, "invalid_message")
    problem(worked.get("/v1/reports/volume?from=2026-11-01&to=soon"), 400, "invalid_message")
    problem(worked.get("/v1/reports/volume?from=2026-11-01&to=2026-12-01&by=fortnight"), 400,
            "invalid_message")
    for report in ("sla", "volume", "satisfaction", "times", "topics", "articles"):
        body = problem(worked.get(f"/v1/reports/{report}?from=0001-01-01&to=9999-12-31"),
                       400, "invalid_message")
        assert "at most 3660 days" in body["detail"]


def test_the_events_stream_as_jsonl_csv_and_parquet_like_the_export(
        http_api: Served, worked: httpx.Client, tmp_path: Path) -> None:
    lines = worked.get("/v1/events?format=jsonl")
    assert lines.headers["content-type"] == "application/jsonl"
    out = tmp_path / "events.jsonl"
    main(["export", "--format", "jsonl", "--tenant", PP, "-o", str(out), "--db", http_api.db])
    assert lines.content == out.read_bytes() and len(lines.text.splitlines()) == 6
    table = worked.get("/v1/events?format=csv").text.splitlines()
    assert table[0].startswith("event_id,type,") and len(table) == 7
    parquet = pq.read_table(io.BytesIO(worked.get("/v1/events?format=parquet").content))
    assert parquet.num_rows == 6
    only = worked.get("/v1/events?type=TicketResolved&type=TicketCreated").text.splitlines()
    assert [json.loads(line)["type"] for line in only] == ["TicketCreated", "TicketResolved",
                                                           "TicketCreated"]
    window = worked.get("/v1/events", params={"from": at(10).isoformat(),
                                              "to": at(30).isoformat()}).text.splitlines()
    assert [json.loads(line)["version"] for line in window] == [3, 4]
    problem(worked.get("/v1/events?type=TicketExploded"), 400, "invalid_message")
    problem(worked.get("/v1/events?format=xml"), 400, "invalid_message")


def test_a_large_export_streams_in_chunks(http_api: Served, agent: httpx.Client) -> None:
    batch = [create(f"m-{n}", f"T-{n}", minutes=n % 50) for n in range(600)]
    assert agent.post("/v1/commands", content=b"[" + b",".join(batch) + b"]"
                      ).status_code == 200
    with agent.stream("GET", "/v1/events?format=jsonl") as response:
        chunks = list(response.iter_raw())
    assert "content-length" not in response.headers
    body = b"".join(chunks)
    assert len(body.splitlines()) == 600 and len(body) > 256 * 1024


def test_verify_as_ticketflow_verify(http_api: Served, worked: httpx.Client,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    whole = shaped(models.Verification, worked.get("/v1/verify"))
    assert whole == {"ok": True, "breaks": []}
    assert shaped(models.Verification, worked.get("/v1/verify?ticket=T-1")) == \
        cli_json(capsys, http_api.db, "verify", "T-1", "--tenant", PP)
    problem(worked.get("/v1/verify?ticket=T-404"), 404, "not_found")


# -- operations -------------------------------------------------------------------------


def test_health_readiness_and_metrics_need_no_key(http_api: Served,
                                                  worked: httpx.Client) -> None:
    anyone = http_api.client()
    assert anyone.get("/healthz").json() == {"status": "ok"}
    assert anyone.get("/readyz").json() == {"status": "ok"}
    worked.get("/v1/tickets/T-404")
    anyone.get("/v1/tickets/T-1")
    text = anyone.get("/metrics").text
    assert 'ticketflow_commands_total{code="",outcome="accepted"}' in text
    assert ('ticketflow_http_request_seconds_count{method="GET",route="/v1/tickets/{ticket_id}",'
            'status="404"}') in text
    assert 'route="/v1/tickets/{ticket_id}",status="401"' in text
    assert "T-404" not in text  # routes by template: no caller's id becomes a label


def test_the_readiness_is_503_when_the_store_does_not_answer(http_api: Served,
                                                             tmp_path: Path) -> None:
    assert http_api.client().get("/readyz").status_code == 200
    http_api.service.engine = engine_for(f"sqlite:///{tmp_path}/no/such/folder/x.db")
    problem(http_api.client().get("/readyz"), 503, "unavailable")


def test_unknown_routes_and_methods_are_problems(http_api: Served, agent: httpx.Client) -> None:
    problem(agent.get("/v1/nothing"), 404, "not_found")
    problem(http_api.client().get("/v2/tickets/T-1"), 404, "not_found")
    problem(agent.delete("/v1/tickets/T-1"), 405, "method_not_allowed")
    problem(agent.get("/ui/nothing"), 404, "not_found")
    problem(agent.get("/ui/static/nothing.js"), 404, "not_found")
    # the console is served beside the API; a bearer key is no console session
    console = agent.get("/ui/")
    assert (console.status_code, console.headers["location"]) == (303, "/ui/sign-in")


HOSTILE = ["..%2F..%2Fetc%2Fpasswd", "%00", "T-1%00", "%E2%80%AEevil", "%27%20OR%201%3D1%20--",
           "x" * 4000, "%F0%9F%92%A9", "%C3%A9", "T-1%2Ftimeline", "%ff%fe", " ", "%20T-1"]


@pytest.mark.parametrize("ticket_id", HOSTILE)
def test_a_hostile_id_in_a_path_is_a_404_problem(worked: httpx.Client, ticket_id: str) -> None:
    for path in (f"/v1/tickets/{ticket_id}", f"/v1/tickets/{ticket_id}/timeline",
                 f"/v1/tickets/{ticket_id}/sla", f"/v1/outcomes/{ticket_id}"):
        response = worked.get(path)
        assert response.status_code in (404, 200) and response.status_code < 500, path
        if response.status_code == 404:
            problem(response, 404, "not_found")


# -- rate limits ------------------------------------------------------------------------


def test_a_key_over_its_rate_is_429_with_retry_after_and_costs_no_other_key(
        tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'rated.db'}", rate="5/minute") as served:
        busy = served.client(served.key(PP, ("customer",)))
        calm = served.client(served.key(PP, ("customer",)))
        assert [busy.get("/v1/tickets/T-1").status_code for _ in range(5)] == [404] * 5
        refused = busy.get("/v1/tickets/T-1")
        problem(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        problem(busy.post("/v1/commands", content=create("m-1", "T-1")), 429, "rate_limited")
        assert calm.post("/v1/commands", content=create("m-1", "T-1")).status_code == 201
        assert [calm.get("/v1/tickets/T-1").status_code for _ in range(4)] == [200] * 4
        assert served.client().get("/healthz").status_code == 200  # no key, no limit


def test_a_rate_limit_setting_that_is_no_rate_is_refused(tmp_path: Path) -> None:
    from ticketflow.http.app import create_app
    from ticketflow.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="TICKETFLOW_RATE_LIMIT"):
        create_app(Settings(db=f"sqlite:///{tmp_path / 'x.db'}"), rate="fast")


# -- webhooks (SPEC §10) ------------------------------------------------------------------


@pytest.fixture
def manager(http_api: Served) -> httpx.Client:
    return http_api.client(http_api.key(PP, ("manager",)))


def test_a_manager_registers_a_webhook_sees_its_secret_once_and_lists_and_removes_it(
        http_api: Served, manager: httpx.Client) -> None:
    added = manager.post("/v1/webhooks", json={"url": "https://hooks.example.com/support",
                                               "rules": ["satisfaction_survey"]})
    assert added.status_code == 201, added.text
    body = models.WebhookCreated.model_validate(added.json())
    assert body.secret.startswith("whsec_") and body.tenant == PP
    assert body.rules == ["satisfaction_survey"] and body.removed_at is None
    assert added.headers["location"] == f"/v1/webhooks/{body.webhook_id}"
    assert added.headers["cache-control"] == "no-store"
    one = shaped(models.Webhook, manager.get(f"/v1/webhooks/{body.webhook_id}"))
    listed = shaped(models.WebhookList, manager.get("/v1/webhooks"))
    assert listed["webhooks"] == [one] and one["url"] == "https://hooks.example.com/support"
    assert body.secret not in manager.get("/v1/webhooks").text + str(one)  # shown once
    # the store's delivery worker sees the same webhook, with the secret the answer gave
    (stored,) = http_api.service.webhooks.registered(PP)
    assert (stored.webhook_id, stored.secret) == (body.webhook_id, body.secret)
    # a path served by a route per method names them all
    wrong = problem(manager.put(f"/v1/webhooks/{body.webhook_id}"), 405, "method_not_allowed")
    assert wrong and manager.put(f"/v1/webhooks/{body.webhook_id}").headers["allow"] == \
        "DELETE, GET"
    assert manager.put("/v1/webhooks").headers["allow"] == "GET, POST"
    removed = manager.delete(f"/v1/webhooks/{body.webhook_id}")
    assert removed.status_code == 204 and removed.content == b""
    assert shaped(models.WebhookList, manager.get("/v1/webhooks")) == {"webhooks": []}
    problem(manager.get(f"/v1/webhooks/{body.webhook_id}"), 404, "not_found")
    problem(manager.delete(f"/v1/webhooks/{body.webhook_id}"), 404, "not_found")


def test_another_tenants_webhook_is_answered_byte_for_byte_like_a_missing_one(
        http_api: Served, manager: httpx.Client) -> None:
    gb = http_api.client(http_api.key(GB, ("manager",)))
    theirs = gb.post("/v1/webhooks", json={"url": "https://gb.example.com/hook"}).json()
    path = f"/v1/webhooks/{theirs['webhook_id']}"
    while_theirs = {"get": manager.get(path), "delete": manager.delete(path)}
    assert manager.get("/v1/webhooks").json() == {"webhooks": []}  # not listed either
    assert gb.get(path).status_code == 200  # the delete above removed nothing
    assert gb.delete(path).status_code == 204
    gone = {"get": manager.get(path), "delete": manager.delete(path)}  # now: missing
    for method, response in while_theirs.items():
        problem(response, 404, "not_found")
        assert response.content == gone[method].content, method
        assert _headers(response) == _headers(gone[method]), method


@pytest.mark.parametrize("roles", [("customer",), ("agent",), ("customer", "agent")])
def test_only_a_managers_key_may_register_list_or_remove_webhooks(
        http_api: Served, manager: httpx.Client, roles: tuple[str, ...]) -> None:
    hook = manager.post("/v1/webhooks", json={"url": "https://hooks.example.com/a"}).json()
    other = http_api.client(http_api.key(PP, roles))
    problem(other.post("/v1/webhooks", json={"url": "https://evil.example.com/"}),
            403, "forbidden")
    problem(other.get("/v1/webhooks"), 403, "forbidden")
    problem(other.get(f"/v1/webhooks/{hook['webhook_id']}"), 403, "forbidden")
    problem(other.delete(f"/v1/webhooks/{hook['webhook_id']}"), 403, "forbidden")
    assert [w.webhook_id for w in http_api.service.webhooks.registered(PP)] == [
        hook["webhook_id"]]  # nothing added, nothing removed
    problem(http_api.client().get("/v1/webhooks"), 401, "unauthenticated")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"url": "ftp://hooks.example.com/a"}, 400, "invalid_message"),
    ({"url": "javascript:alert(1)"}, 400, "invalid_message"),
    ({"url": "http://127.0.0.1:5432/"}, 400, "invalid_message"),  # SSRF: refused
    ({"url": "http://169.254.169.254/latest/meta-data/"}, 400, "invalid_message"),
    ({"url": "http://localhost:9092/"}, 400, "invalid_message"),
    ({"url": "https://hooks.example.com/a", "rules": ["no_such_rule"]}, 422,
     "policy_violation"),
    ({"url": "https://hooks.example.com/a", "secret": "mine"}, 400, "invalid_message"),
    ({"rules": []}, 400, "invalid_message"),
    ({"url": "https://hooks.example.com/" + "a" * 2000}, 400, "invalid_message"),
    ([], 400, "invalid_message"),
])
def test_a_webhook_that_cannot_be_registered_is_a_problem_and_nothing_is_added(
        http_api: Served, manager: httpx.Client, body: Any, status: int, code: str) -> None:
    problem(manager.post("/v1/webhooks", json=body), status, code)
    problem(manager.post("/v1/webhooks", content=b"{not json"), 400, "invalid_message")
    assert http_api.service.webhooks.registered() == []


def test_a_webhook_registered_over_http_gets_deliveries_signed_with_the_secret_it_showed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver: 127.0.0.1
    with serving(f"sqlite:///{tmp_path / 'api.db'}") as served, \
            receiving(Receiver(lambda: served.clock().timestamp())) as receiver:
        manager = served.client(served.key(PP, ("customer", "agent", "manager")))
        added = manager.post("/v1/webhooks", json={"url": receiver.url,
                                                   "rules": ["escalated_first_level"]})
        assert added.status_code == 201, added.text
        receiver.secret = added.json()["secret"]
        for raw in (create("m-1", "T-1"), act("m-2", "escalate", "T-1", 5,
                                                level="first_level", reason="internal")):
            assert manager.post("/v1/commands", content=raw).status_code == 201
        worker = DeliveryWorker(served.service.app, served.service.engine, served.clock,
                                private_targets=True, timeout=5.0)
        try:
            worker.run_once()
            worker.drain()
        finally:
            worker.close()
    assert receiver.badly_signed == 0
    (document,) = receiver.accepted.values()
    assert (document["rule"], document["ticket_id"]) == ("escalated_first_level", "T-1")
    assert "internal" not in json.dumps(document)


# -- the knowledge base (SPEC §11) and reports by period (SPEC §12) ----------------------


@pytest.fixture
def articles(http_api: Served, agent: httpx.Client) -> httpx.Client:
    """PersonalysisPro's corpus (tests/support/knowledge.py); GrowGreBuddy's own articles,
    one under a PersonalysisPro article's id and both with PersonalysisPro's words."""
    assert all(o["status"] == "accepted" for o in agent.post(
        "/v1/commands", content=b"[" + b",".join(corpus_commands()) + b"]").json())
    gb = http_api.client(http_api.key(GB, ("agent",)))
    for n, (article_id, title) in enumerate((("KB-A", "Zebra export timeout in the garden"),
                                             ("KB-G", "Password reset for plant profiles"))):
        raw = article_command(f"g-kb-{n}", "create_article", article_id, at(n), {
            "title": title, "body": "Export timeout, password, webhook: zebra.",
            "tags": ["export"]}, tenant=GB)
        assert gb.post("/v1/commands", content=raw).status_code == 201
    return agent


def test_suggestions_are_the_keys_tenants_articles_as_ticketflow_suggest(
        http_api: Served, articles: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    for text, expected in EXPECTED.items():
        found = shaped(models.Suggestions, articles.get("/v1/articles/suggest",
                                                       params={"q": text}))
        assert found["tenant"] == PP
        assert [s["article_id"] for s in found["suggestions"]] == expected, text
        assert found == cli_json(capsys, http_api.db, "suggest", text, "--tenant", PP)
    # GrowGreBuddy's zebra is not PersonalysisPro's, nor its KB-A's title
    assert shaped(models.Suggestions, articles.get(
        "/v1/articles/suggest?q=zebra garden"))["suggestions"] == []
    gb = http_api.client(http_api.key(GB, ("customer",)))
    theirs = shaped(models.Suggestions, gb.get("/v1/articles/suggest?q=export timeout"))
    assert theirs["tenant"] == GB
    assert [(s["article_id"], s["title"]) for s in theirs["suggestions"]] == [
        ("KB-A", "Zebra export timeout in the garden"),  # its title, not PersonalysisPro's
        ("KB-G", "Password reset for plant profiles")]  # its body only
    assert [s["article_id"] for s in shaped(models.Suggestions, gb.get(
        "/v1/articles/suggest?q=password webhook"))["suggestions"]] == ["KB-G", "KB-A"]


def test_a_created_ticket_is_answered_with_its_tenants_suggestions(
        http_api: Served, articles: httpx.Client) -> None:
    created = articles.post("/v1/commands", content=create("m-1", "T-1"))  # Exports time out
    assert created.status_code == 201
    assert created.json()["suggestions"][:1] == ["KB-A"]
    assert all(not s.startswith("KB-G") for s in created.json()["suggestions"])
    gb = http_api.client(http_api.key(GB, ("customer",)))
    raw = command_line("g-1", "create_ticket", "T-1", at(1), "customer",
                       create_payload(GB, subject="Password reset"), tenant=GB)
    assert gb.post("/v1/commands", content=raw).json()["suggestions"] == ["KB-G", "KB-A"]
    wordless = command_line("m-2", "create_ticket", "T-2", at(2), "customer",
                            create_payload(PP, subject="x"), tenant=PP)
    batch = articles.post("/v1/commands", content=b"[" + wordless + b","
                          + create("m-1", "T-1") + b"]").json()
    assert [a.get("suggestions") for a in batch] == [[], None]  # no words; a duplicate


@pytest.mark.parametrize("q", [
    '"', "*", "NEAR(export* OR timeout)", 'title:zebra OR scope:*', '") OR 1=1 --', "((export",
    "export\x00timeout", "\u202eexport\u202c \x1b[2J", "^export", "-password +export",
    "export " * 500,
])
def test_a_hostile_query_is_searched_as_its_words_in_the_keys_tenant(
        articles: httpx.Client, q: str) -> None:
    found = shaped(models.Suggestions, articles.get("/v1/articles/suggest", params={"q": q}))
    assert found["tenant"] == PP
    ids = [s["article_id"] for s in found["suggestions"]]
    assert "KB-G" not in ids and len(ids) <= 5
    if "export" in q and "password" not in q:
        assert ids[:1] in (["KB-A"], ["KB-C"])  # the corpus's export articles, no one else's
    assert all(term.isalnum() for term in found["terms"])


def test_a_suggestion_needs_a_key_and_a_bounded_text(http_api: Served,
                                                    articles: httpx.Client) -> None:
    problem(http_api.client().get("/v1/articles/suggest?q=password"), 401, "unauthenticated")
    problem(http_api.client("tfk_nope").get("/v1/articles/suggest?q=password"), 401,
            "unauthenticated")
    problem(articles.get("/v1/articles/suggest"), 400, "invalid_message")
    problem(articles.get("/v1/articles/suggest?q="), 400, "invalid_message")
    body = problem(articles.get("/v1/articles/suggest", params={"q": "a" * 4001}), 400,
                   "invalid_message")
    assert "4000" in body["detail"]
    longest = articles.get("/v1/articles/suggest", params={"q": "password " + "b" * 3991})
    assert [s["article_id"] for s in shaped(models.Suggestions, longest)["suggestions"]] == [
        "KB-B"]
    problem(articles.post("/v1/articles/suggest?q=password"), 405, "method_not_allowed")


def _by_a_customer(raw: bytes) -> bytes:
    """A widget's session as its customer sends it (no key may speak as the system)."""
    command = json.loads(raw)
    return json.dumps({**command, "actor": {"id": "actor-1", "role": "customer"}}).encode()


def _periods_story(http_api: Served, articles: httpx.Client) -> None:
    """Tickets over two months (some linking articles), self-service sessions that
    showed articles, a satisfaction answer. The engine's clock is moved past them."""
    http_api.clock.advance(timedelta(days=22))
    sent = [create("m-1", "T-1"), act("m-2", "acknowledge", "T-1", 5),
            act("m-3", "link_article", "T-1", 6, article_id="KB-A"),
            act("m-4", "resolve", "T-1", 30, resolution="raised the timeout"),
            act("m-5", "record_satisfaction", "T-1", 40, role="customer", score=5),
            create("m-6", "T-2", 60 * 24 * 20), create("m-7", "T-3", 60 * 24 * 21),
            _by_a_customer(session_command("s-1", "S-1", at(10), outcome="solved",
                                           shown=["KB-A", "KB-C"], viewed=["KB-A"])),
            _by_a_customer(session_command("s-2", "S-2", at(60 * 24 * 20),
                                           outcome="ticket_created", shown=["KB-B"],
                                           viewed=[], ticket_id="T-2"))]
    answered = articles.post("/v1/commands", content=b"[" + b",".join(sent) + b"]").json()
    assert [a["status"] for a in answered] == ["accepted"] * len(sent), answered


@pytest.mark.parametrize(("report", "model", "extra"), [
    ("topics", models.TopicsReport, []),
    ("topics", models.TopicsReport, ["--by", "month", "--timezone", "America/New_York"]),
    ("articles", models.ArticlesReport, []),
    ("articles", models.ArticlesReport, ["--by", "month"]),
    ("sla", models.SlaReport, ["--as-of", "2027-01-01T00:00:00Z", "--by", "month",
                               "--timezone", "America/New_York"]),
    ("volume", models.VolumeReport, ["--by", "month", "--timezone", "Europe/Berlin"]),
    ("volume", models.VolumeReport, ["--by", "quarter"]),
    ("satisfaction", models.SatisfactionReport, ["--by", "year"]),
    ("times", models.TimesReport, ["--by", "week"]),
])
def test_each_report_by_period_as_ticketflow_report(
        http_api: Served, articles: httpx.Client, capsys: pytest.CaptureFixture[str],
        report: str, model: type[BaseModel], extra: list[str]) -> None:
    _periods_story(http_api, articles)
    options = dict(zip(extra[::2], extra[1::2], strict=True))
    params = {"from": "2026-11-01", "to": "2027-01-01",
              **{name.removeprefix("--").replace("-", "_"): value
                 for name, value in options.items()}}
    answered = shaped(model, articles.get(f"/v1/reports/{report}", params=params))
    printed = cli_json(capsys, http_api.db, "report", report, "--from", "2026-11-01",
                       "--to", "2027-01-01", "--tenant", PP, *extra)
    assert answered == printed
    if "--by" in extra:
        assert answered["by"] == options["--by"]
        assert answered["timezone"] == options.get("--timezone", "UTC")
        rows = [row for part in ("rows", "categories", "terms", "satisfaction") for row in
                answered.get(part, [])]
        assert rows and all(row["period"] for row in rows)
    if report == "articles":
        kb_a = [row for row in answered["rows"] if row["article_id"] == "KB-A"]
        assert kb_a and sum(row["deflections"] for row in kb_a) == 1
        assert {row["tenant"] for row in answered["rows"]} == {PP}  # not GB's KB-A
    if report == "topics":  # T-2 and T-3 recur in December (T-1 alone in November)
        assert {row["tenant"] for row in answered["categories"]} == {PP}
        assert [(row.get("period"), row["tickets"]) for row in answered["categories"]] == (
            [("2026-12-01", 2)] if "--by" in extra else [(None, 3)])


def test_a_bare_date_is_its_midnight_in_the_reports_timezone(
        http_api: Served, articles: httpx.Client) -> None:
    _periods_story(http_api, articles)
    # T-1 is created at 14:00 UTC on 2026-11-16, 15:00 in Berlin, 01:00 the 17th in Sydney
    for zone, day in (("UTC", "2026-11-16"), ("Europe/Berlin", "2026-11-16"),
                      ("Australia/Sydney", "2026-11-17")):
        volume = shaped(models.VolumeReport, articles.get("/v1/reports/volume", params={
            "from": day, "to": f"{day[:-2]}{int(day[-2:]) + 1}", "by": "day",
            "timezone": zone}))
        assert sum(row["created"] for row in volume["rows"]) == 1, zone
        assert {row["period"] for row in volume["rows"] if row["created"]} == {day}


WINDOW = "from=2026-11-01&to=2026-12-01"


@pytest.mark.parametrize(("query", "detail"), [
    (f"{WINDOW}&timezone=Mars/Olympus", "not an IANA time zone"),
    (f"{WINDOW}&timezone=Europe", "not an IANA time zone"),  # a folder of zones
    (f"{WINDOW}&timezone=../../etc/passwd", "not an IANA time zone"),
    (f"{WINDOW}&timezone=" + "A" * 65, "timezone"),
    (f"{WINDOW}&by=fortnight", "by"),
    ("from=2016-01-01&to=2026-01-01&by=day", "at most 1000 periods"),
])
def test_a_report_by_period_out_of_bounds_is_400(articles: httpx.Client, query: str,
                                                 detail: str) -> None:
    for report in ("sla", "times", "topics", "articles"):
        body = problem(articles.get(f"/v1/reports/{report}?{query}"), 400, "invalid_message")
        assert detail in body["detail"], (report, body)


def test_the_service_review_as_ticketflow_report_review(
        http_api: Served, articles: httpx.Client, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _periods_story(http_api, articles)
    # the command line's clock is the API's: the review is as of its end, or now if earlier
    monkeypatch.setenv("TICKETFLOW_CLOCK", "@" + http_api.clock.at.isoformat())
    for query, argv in (({"quarter": "2026Q4"}, ["--quarter", "2026Q4"]),
                        ({"year": "2026"}, ["--year", "2026"])):
        answered = shaped(models.Review, articles.get("/v1/reports/review", params=query))
        assert answered == cli_json(capsys, http_api.db, "report", "review", "--tenant", PP,
                                    *argv)
        assert answered["tenant"] == PP and answered["volume"]
        assert {row["tenant"] for row in answered["knowledge_base"]} == {PP}
    quarter = articles.get("/v1/reports/review?quarter=2026Q4").json()
    assert [row["period"] for row in quarter["volume"]] == ["2026-11-01", "2026-12-01"]
    assert quarter["by"] == "month"
    gb = http_api.client(http_api.key(GB, ("customer",)))
    theirs = shaped(models.Review, gb.get("/v1/reports/review?quarter=2026Q4"))
    assert theirs["tenant"] == GB and not theirs["volume"]


@pytest.mark.parametrize("query", ["", "quarter=2026Q4&year=2026", "quarter=2026Q5",
                                   "quarter=26Q1", "year=twenty", "year=" + "9" * 17])
def test_a_review_names_one_quarter_or_year(articles: httpx.Client, query: str) -> None:
    problem(articles.get(f"/v1/reports/review?{query}"), 400, "invalid_message")


def _delivery(engine: Any, notification: str, webhook: str, tenant: str = PP,
              status: str = "dead") -> None:
    """A row of the delivery log, as the delivery worker leaves it."""
    from ticketflow.webhooks import deliveries_table

    with engine.begin() as conn:
        conn.execute(deliveries_table.insert().values(
            notification_id=notification, webhook_id=webhook, tenant=tenant, ticket_id="T-1",
            rule="satisfaction_survey", at=f"2026-11-16T10:0{notification[-1]}:00+00:00",
            position=1, status=status, attempts=4, next_attempt_at=None,
            last_error="503 from the endpoint" if status == "dead" else None,
            delivered_at=None))


def test_a_manager_reads_a_webhooks_delivery_log_and_resends_a_dead_letter(
        http_api: Served, manager: httpx.Client) -> None:
    hook = manager.post("/v1/webhooks", json={"url": "https://hooks.example.com/a"}).json()
    other = manager.post("/v1/webhooks", json={"url": "https://hooks.example.com/b"}).json()
    engine = http_api.service.webhooks.engine
    _delivery(engine, "n-1", hook["webhook_id"], status="delivered")
    _delivery(engine, "n-2", hook["webhook_id"])
    _delivery(engine, "n-3", other["webhook_id"])
    path = f"/v1/webhooks/{hook['webhook_id']}/deliveries"
    log = shaped(models.Deliveries, manager.get(path))
    assert [(d["notification_id"], d["status"]) for d in log["deliveries"]] == [
        ("n-2", "dead"), ("n-1", "delivered")]  # newest first, this webhook's only
    dead = manager.get(path, params={"status": "dead"}).json()["deliveries"]
    assert [d["notification_id"] for d in dead] == ["n-2"]
    assert manager.get(path, params={"limit": 1}).json()["deliveries"][0]["notification_id"] \
        == "n-2"
    problem(manager.get(path, params={"status": "lost"}), 400, "invalid_message")

    resent = manager.post(f"{path}/n-2/resend")
    assert resent.status_code == 202 and resent.content == b""
    (again,) = [d for d in http_api.service.webhooks.deliveries(PP)
                if d["notification_id"] == "n-2"]
    assert (again["status"], again["attempts"]) == ("pending", 0)
    problem(manager.post(f"{path}/n-3/resend"), 404, "not_found")  # never due to it
    # a removed webhook's log stays readable; it is sent nothing again
    assert manager.delete(f"/v1/webhooks/{hook['webhook_id']}").status_code == 204
    assert len(manager.get(path).json()["deliveries"]) == 2
    problem(manager.post(f"{path}/n-1/resend"), 404, "not_found")


def test_another_tenants_delivery_log_is_not_found_and_its_letters_are_not_resent(
        http_api: Served, manager: httpx.Client) -> None:
    gb = http_api.client(http_api.key(GB, ("manager",)))
    theirs = gb.post("/v1/webhooks", json={"url": "https://gb.example.com/hook"}).json()
    _delivery(http_api.service.webhooks.engine, "n-9", theirs["webhook_id"], tenant=GB)
    path = f"/v1/webhooks/{theirs['webhook_id']}/deliveries"
    missing = f"/v1/webhooks/wh{'0' * 30}/deliveries"
    for response, absent in ((manager.get(path), manager.get(missing)),
                             (manager.post(f"{path}/n-9/resend"),
                              manager.post(f"{missing}/n-9/resend"))):
        problem(response, 404, "not_found")
        assert response.json()["detail"].replace(theirs["webhook_id"], "X") == \
            absent.json()["detail"].replace(f"wh{'0' * 30}", "X")
    (row,) = http_api.service.webhooks.deliveries(GB)
    assert row["status"] == "dead"  # untouched
    agent = http_api.client(http_api.key(GB, ("agent",)))
    problem(agent.get(path), 403, "forbidden")
    problem(agent.post(f"{path}/n-9/resend"), 403, "forbidden")
    assert http_api.service.webhooks.deliveries(GB)[0]["status"] == "dead"
