"""The HTTP API's OpenAPI 3.1 document: generated from the app, committed in
schemas/openapi.json, served at /openapi.json, and kept in sync by this test."""

from __future__ import annotations

import json
from typing import Any

from tests.support.http import Served
from ticketflow.http.openapi import OUTPUT, document, render

PROBLEM = "application/problem+json"


def test_the_committed_document_is_the_apps() -> None:
    assert OUTPUT.read_text(encoding="utf-8") == render(document()), (
        "schemas/openapi.json is stale: run `python -m ticketflow.http.openapi`")


def test_the_document_is_served_without_a_key(http_api: Served) -> None:
    served = http_api.client().get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(OUTPUT.read_text(encoding="utf-8"))


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items()
            for method, op in ops.items()]


def test_every_v1_operation_needs_a_key_and_documents_its_problems() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["key"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"][
            "securitySchemes"]["key"]["description"]}
    v1 = [(path, op) for path, _, op in operations(doc) if path.startswith("/v1/")]
    assert len(v1) == 22  # 15, the reports topics, articles, review, quality and suggest,
    # and a webhook's deliveries and resend
    for path, op in v1:
        assert op["security"] == [{"key": []}], path
        for status in ("400", "401", "429"):
            assert op["responses"][status]["content"] == {
                PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (path, status)
        # policy_violation: a command's, or a webhook naming a rule its policy lacks
        assert "422" not in op["responses"] or (path, "requestBody" in op) in {
            ("/v1/commands", True), ("/v1/webhooks", True)}


def test_the_operations_endpoints_need_no_key() -> None:
    for path, _, op in operations(document()):
        if not path.startswith("/v1/"):
            assert "security" not in op, path


def test_the_command_body_is_the_command_schema_of_schemas() -> None:
    doc = document()
    body = doc["paths"]["/v1/commands"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][0] == {"$ref": "#/components/schemas/Command"}
    command = doc["components"]["schemas"]["Command"]
    shipped = json.loads((OUTPUT.parent / "json" / "command.json").read_text(encoding="utf-8"))
    assert sorted(command["discriminator"]["mapping"]) == sorted(
        shipped["discriminator"]["mapping"])
    assert not any("HTTPValidationError" in name for name in doc["components"]["schemas"])
