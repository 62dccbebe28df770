"""The AsyncAPI document of the Kafka door (schemas/asyncapi.json) is the code's: in sync
with its generator, and its keys and headers those the code writes."""

from __future__ import annotations

import base64
import re
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.notifications import END, done_when_story
from ticketflow.bootstrap import build_app
from ticketflow.consumers.commands import TRUNCATION_HEADERS, dead_letter
from ticketflow.domain.receipt import KEEP_BYTES
from ticketflow.keys import sign
from ticketflow.notifications import recorded
from ticketflow.producers.relay import event_message, notification_message
from ticketflow.producers.topics import DEFAULT_PARTITIONS, Topics
from ticketflow.schemas import generate
from ticketflow.settings import Settings
from ticketflow.tools import asyncapi

DOC = asyncapi.document()
MESSAGES = DOC["components"]["messages"]
SECRET = "tfk_k0123456789abcdef_" + base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=")


def test_the_committed_document_matches_the_code() -> None:
    on_disk = asyncapi.OUTPUT.read_text(encoding="utf-8")
    assert on_disk == asyncapi.render(DOC), (
        "schemas/asyncapi.json is out of date; run: python -m ticketflow.tools.asyncapi")


def test_every_topic_and_every_event_type_is_there() -> None:
    topics = Topics()
    assert {c["address"] for c in DOC["channels"].values()} == {
        topics.commands, topics.ticket_events, topics.dead_letter, topics.notifications,
        "support.checkpoints"}
    events = {name.removeprefix("event.").removesuffix(".json")
              for name in generate.documents() if name.startswith("event.")}
    assert set(DOC["channels"]["ticketEvents"]["messages"]) == events
    assert DOC["channels"]["commands"]["bindings"]["kafka"]["partitions"] == DEFAULT_PARTITIONS
    assert DOC["channels"]["ticketEvents"]["bindings"]["kafka"]["topicConfiguration"] == {
        "cleanup.policy": ["delete"], "retention.ms": -1, "retention.bytes": -1}


def test_the_knowledge_base_events_are_documented_keyed_by_their_article_id() -> None:
    channel = DOC["channels"]["ticketEvents"]["messages"]
    for name in ("ArticleCreated", "ArticleUpdated"):
        assert name in channel
        assert MESSAGES[name]["payload"] == {"$ref": f"#/components/schemas/event.{name}"}
        assert "article" in MESSAGES[name]["bindings"]["kafka"]["key"]["description"]
        # the relay keys an article's event by its stream's id, its envelope's ticket_id
        record = event_message({"ticket_id": "KB-1", "type": name, "schema_version": 1,
                                "event_id": "6b7c1c38-6c51-5a4e-9d0b-2f0d1b9e5a11"})
        assert record["key"] == b"KB-1"
    assert "article" in MESSAGES["command"]["bindings"]["kafka"]["key"]["description"]


def _pattern_holds(schema: dict[str, Any], value: bytes) -> bool:
    text = value.decode()
    return ("pattern" not in schema or re.search(schema["pattern"], text) is not None) and \
        schema.get("const", text) == text and text in schema.get("enum", [text])


def test_a_signed_command_carries_exactly_the_documented_headers() -> None:
    headers = MESSAGES["command"]["headers"]["properties"]
    signed = sign(SECRET, b'{"message_id": "m-1"}')
    assert [name for name, _ in signed] == list(headers)
    assert all(_pattern_holds(headers[name], value) for name, value in signed)


def test_an_event_record_carries_exactly_the_documented_headers() -> None:
    envelope = {"ticket_id": "T-1", "type": "TicketResolved", "schema_version": 1,
                "event_id": "6b7c1c38-6c51-5a4e-9d0b-2f0d1b9e5a11"}
    record = event_message(envelope)
    documented = MESSAGES["TicketResolved"]["headers"]
    assert [name for name, _ in record["headers"]] == list(documented["properties"])
    assert documented["required"] == list(documented["properties"])
    assert all(_pattern_holds(documented["properties"][name], value)
               for name, value in record["headers"])


@pytest.mark.parametrize("code", ["unauthenticated", "forbidden", "invalid_message"])
def test_a_dead_letter_carries_exactly_the_documented_headers(code: str) -> None:
    signed = [("ticketflow-key-id", b"k1"), ("ticketflow-signature", b"A" * 86 + b"==")]
    documented = MESSAGES["deadLetter"]["headers"]
    for body, cut in ((b"{}", []), (b"x" * (KEEP_BYTES + 1), list(TRUNCATION_HEADERS))):
        for headers in ([], signed):
            record = SimpleNamespace(topic="support.commands", partition=2, offset=41,
                                     key=b"T-1", value=body, headers=headers)
            letter = dead_letter(record, {"code": code, "message": "why"}, "m-1")  # type: ignore[arg-type]
            names = [name for name, _ in letter["headers"]]
            assert names == documented["required"] + cut + [name for name, _ in headers]
            assert all(_pattern_holds(documented["properties"][name], value)
                       for name, value in letter["headers"])
    assert list(documented["properties"]) == names


def test_the_command_payload_is_the_generated_json_schema() -> None:
    schemas = DOC["components"]["schemas"]
    command = generate.documents()["command.json"]
    assert len(schemas["command"]["oneOf"]) == len(command["oneOf"])
    assert schemas["command"]["discriminator"] == "type"
    refs = re.findall(r'"\$ref": "([^"]+)"', asyncapi.render(DOC))
    assert refs and all(not ref.startswith("#/$defs/") for ref in refs)


def test_a_notification_record_carries_exactly_the_documented_payload_and_headers() -> None:
    with build_app(Settings(db="sqlite:///:memory:"), clock=lambda: END) as app:
        done_when_story(app, live=True)
        documents = list(recorded(app.event_log))
    documented = MESSAGES["notification"]
    assert documents
    for document in documents:
        assert sorted(document) == documented["payload"]["required"]
        record = notification_message(document)
        assert [name for name, _ in record["headers"]] == list(
            documented["headers"]["properties"])
        assert record["key"] == document["ticket_id"].encode()
