"""Account managers and response quality over HTTP (issue 19): the commands through
`POST /v1/commands` under keys, the ticket's account manager in its state, and
`GET /v1/reports/quality` and `group=account` answering as `ticketflow report … --json`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from tests.support.accounts import PP, review, story
from tests.support.builders import T0
from tests.support.http import Served
from ticketflow.cli import main
from ticketflow.http import models

pytestmark = pytest.mark.usefixtures("told")


@pytest.fixture
def manager(http_api: Served) -> httpx.Client:
    return http_api.client(http_api.key(PP, ("customer", "agent", "manager")))


@pytest.fixture
def told(http_api: Served, manager: httpx.Client) -> None:
    """The story's PersonalysisPro commands (its GrowgrEbuddy ones need their key)."""
    http_api.clock.at = T0 + timedelta(days=30)
    gb = http_api.client(http_api.key("growgrebuddy", ("customer", "agent", "manager")))
    for raw in story():
        client = gb if json.loads(raw)["tenant"] == "growgrebuddy" else manager
        answer = client.post("/v1/commands", content=raw)
        assert answer.status_code == 201, answer.text


def cli_json(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> Any:
    capsys.readouterr()
    main([*argv, "--db", db, "--json"])
    return json.loads(capsys.readouterr().out)


def shaped(model: type[BaseModel], response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    model.model_validate(body)
    return body


@pytest.mark.parametrize(("report", "model", "extra"), [
    ("quality", models.QualityReport, []),
    ("quality", models.QualityReport, ["--group", "agent", "--by", "day"]),
    ("quality", models.QualityReport, ["--group", "tier", "--timezone", "Asia/Tokyo",
                                       "--by", "week"]),
    ("sla", models.SlaReport, ["--group", "account"]),
    ("times", models.TimesReport, ["--group", "account", "--by", "month"]),
])
def test_each_report_as_ticketflow_report(
        http_api: Served, manager: httpx.Client, capsys: pytest.CaptureFixture[str],
        report: str, model: type[BaseModel], extra: list[str]) -> None:
    options = dict(zip(extra[::2], extra[1::2], strict=True))
    params = {"from": "2026-11-01", "to": "2026-12-01",
              **{name.removeprefix("--"): value for name, value in options.items()}}
    answered = shaped(model, manager.get(f"/v1/reports/{report}", params=params))
    printed = cli_json(capsys, http_api.db, "report", report, "--from", "2026-11-01",
                       "--to", "2026-12-01", "--tenant", PP, *extra)
    assert answered == printed
    assert answered["rows"] and {row["tenant"] for row in answered["rows"]} == {PP}
    if "--group" in extra:
        assert answered["group"] == options["--group"]


def test_the_tickets_state_names_its_account_and_manager(manager: httpx.Client) -> None:
    state = shaped(models.TicketState, manager.get("/v1/tickets/T-2"))
    assert (state["account_id"], state["account_manager"]) == ("acme", "am-dana")
    state = shaped(models.TicketState, manager.get("/v1/tickets/T-3"))
    assert (state["account_id"], state["account_manager"]) == ("beta", None)


def test_a_key_of_the_agent_role_bound_to_the_manager_sends_its_review(
        http_api: Served) -> None:
    dana = http_api.client(http_api.key(PP, ("agent",), actor="am-dana"))
    sent = dana.post("/v1/commands", content=review(
        "r-9", "T-1", T0 + timedelta(days=3), 5, (),
        actor="am-dana", role="agent"))
    assert sent.status_code == 201, sent.text
    other = http_api.client(http_api.key(PP, ("agent",), actor="agent-7"))
    refused = other.post("/v1/commands", content=review(
        "r-10", "T-1", T0 + timedelta(days=3), 5, (),
        actor="agent-7", role="agent"))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_a_quality_report_refuses_an_unknown_group(manager: httpx.Client) -> None:
    answer = manager.get("/v1/reports/quality", params={"from": "2026-11-01",
                                                        "to": "2026-12-01",
                                                        "group": "account"})
    assert answer.status_code == 400
