"""Property-based fuzzing of the HTTP API from its committed OpenAPI document
(schemathesis): for every operation, generated requests with a key get no 5xx, and
every answer matches the document (status, content type, headers, schema); requests
the document forbids are refused. Bounded: a few examples per operation, the whole
run well under a minute.

One check is left out: that every request the document allows is accepted. The
document says what a command or an instant looks like, not what the engine decides
about it (an occurred_at from the future, a self-service record naming a ticket, a
calendar day that does not exist): such a request is rightly refused 400."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.builders import command_line, create_payload
from tests.support.http import START, Served, serving
from ticketflow.http.openapi import OUTPUT

SCHEMA = schemathesis.openapi.from_dict(json.loads(OUTPUT.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    """The API on a store with a ticket of each tenant, and a key of every role of one."""
    db = Path(tmp_path_factory.mktemp("fuzz")) / "fuzz.db"
    with serving(f"sqlite:///{db}") as served:
        secret = served.key("personalysispro", ("customer", "agent", "manager", "system"))
        other = served.client(served.key("growgrebuddy", ("customer",)))
        own = served.client(secret)
        assert own.post("/v1/commands", content=command_line(
            "m-1", "create_ticket", "T-1", START, "customer", create_payload())
            ).status_code == 201
        assert other.post("/v1/commands", content=command_line(
            "g-1", "create_ticket", "T-2", START, "customer", create_payload("growgrebuddy"),
            tenant="growgrebuddy")).status_code == 201
        yield served, secret


@SCHEMA.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail_or_stray_from_its_document(
        case: schemathesis.Case, fuzzed: tuple[Served, str]) -> None:
    served, secret = fuzzed
    case.call_and_validate(base_url=served.url, headers={"Authorization": f"Bearer {secret}"},
                           excluded_checks=[positive_data_acceptance], timeout=30)
