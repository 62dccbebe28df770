"""The wire contracts: JSON Schema files match the models; commands parse strictly;
older event envelopes upcast to the current schema."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.builders import T0, Story, command_line, create_payload
from tests.support.spec import EVENT_TYPES
from ticketflow.domain.chain import find_break
from ticketflow.domain.errors import InvalidMessage
from ticketflow.schemas import generate
from ticketflow.schemas.characters import id_problem
from ticketflow.schemas.commands import parse_command
from ticketflow.schemas.events import (
    EVENT_DATA,
    SCHEMA_VERSIONS,
    upcast_envelope,
    validate_envelope,
)
from ticketflow.schemas.fields import ID_PATTERN


def test_the_json_schema_files_match_the_models() -> None:
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in generate.OUTPUT.glob("*.json")}
    expected = {name: generate.render(doc) for name, doc in generate.documents().items()}
    stale = sorted(name for name in expected if on_disk.get(name) != expected[name])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, (
        f"schemas/json is out of date (stale {stale}, extra {extra});"
        " run: python -m ticketflow.schemas.generate"
    )


def test_there_is_a_schema_for_every_event_type_of_the_spec() -> None:
    assert set(EVENT_DATA) == EVENT_TYPES
    assert {p.name for p in generate.OUTPUT.glob("event.*.json")} == {
        f"event.{name}.json" for name in EVENT_TYPES
    }


def test_the_spec_example_command_parses() -> None:
    raw = command_line("m-0001", "create_ticket", "T-1001", T0, "customer", create_payload())
    command = parse_command(raw)
    assert (command.type, command.stream_id, command.actor.role) == (
        "create_ticket", "T-1001", "customer")


@pytest.mark.parametrize("raw, fragment", [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"type": "teleport"}', "unknown command type"),
    (json.dumps({"message_id": "m", "type": "acknowledge", "tenant": "t", "ticket_id": "T",
                 "occurred_at": "2026-11-20T14:03:00", "actor": {"id": "a", "role": "agent"},
                 "payload": {}}).encode(), "occurred_at"),
    (json.dumps({"message_id": "m", "type": "acknowledge", "tenant": "t", "ticket_id": "T",
                 "occurred_at": "2026-11-20T14:03:00Z", "actor": {"id": "a", "role": "ceo"},
                 "payload": {}}).encode(), "actor.role"),
    (json.dumps({"message_id": "m", "type": "record_satisfaction", "tenant": "t",
                 "ticket_id": "T", "occurred_at": "2026-11-20T14:03:00Z",
                 "actor": {"id": "a", "role": "customer"}, "payload": {"score": 6}}).encode(),
     "payload.score"),
    (json.dumps({"message_id": "m", "type": "acknowledge", "tenant": "t", "session_id": "S",
                 "occurred_at": "2026-11-20T14:03:00Z", "actor": {"id": "a", "role": "agent"},
                 "payload": {}}).encode(), "ticket_id"),
    (json.dumps({"message_id": "m", "type": "acknowledge", "tenant": "t", "ticket_id": "T",
                 "occurred_at": "2026-11-20T14:03:00Z", "actor": {"id": "a", "role": "agent"},
                 "payload": {}, "schema_version": 2}).encode(), "schema_version"),
    (b'{"message_id": "' + b"x" * 300_000 + b'"}', "limit"),
])
def test_malformed_messages_are_invalid_with_a_reason(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidMessage) as refused:
        parse_command(raw)
    assert fragment in refused.value.message


@pytest.mark.parametrize("ticket_id", ["[/]", "mk-3[/x]", "チケット-1", "T 1", "\u00e9-1",
                                       "Ω/7", "😀", "#1: a/b", "x" * 128])
def test_an_id_in_any_script_with_markup_or_inner_spaces_is_accepted(ticket_id: str) -> None:
    raw = command_line("m-1", "create_ticket", ticket_id, T0, "customer", create_payload())
    assert parse_command(raw).stream_id == ticket_id


@pytest.mark.parametrize("ticket_id, reason", [
    ("T-1\u200b", "an invisible or formatting character (U+200B, character 4)"),
    ("T-\x7f1", "a control character (U+007F, character 3)"),
    ("T\u00a01", "a space other than U+0020 (U+00A0, character 2)"),
    (" T-1", "begin or end with a space"),
    ("\t ", "blank"),
    ("Te\u0301", "normalisation form NFC; send the composed form, 'T\\xe9'"),
])
def test_a_lookalike_id_is_refused_saying_which_character(ticket_id: str, reason: str) -> None:
    raw = command_line("m-1", "create_ticket", ticket_id, T0, "customer", create_payload())
    with pytest.raises(InvalidMessage) as refused:
        parse_command(raw)
    assert str(refused.value).startswith("ticket_id: an id "), str(refused.value)
    assert reason in str(refused.value)


@given(st.text(st.one_of(st.characters(), st.sampled_from(" \u00a0\u200b\u202e\x7f\x85")),
               max_size=8))
def test_an_id_the_json_schema_pattern_refuses_is_refused_by_the_engine(text: str) -> None:
    if not re.fullmatch(ID_PATTERN, text):
        assert text == "" or id_problem(text) is not None


@given(st.text(st.characters(max_codepoint=0x7F), max_size=8))
def test_an_ascii_id_is_refused_only_for_a_control_character_or_an_outer_space(
    text: str
) -> None:
    """ASCII ids take a short cut (printable ASCII is never hidden and always NFC)."""
    refused = not text.strip() or text != text.strip() or any(
        ord(char) < 0x20 or ord(char) == 0x7F for char in text)
    assert (id_problem(text) is not None) == refused


def test_every_envelope_a_story_emits_validates_and_chains() -> None:
    story = (Story().do("acknowledge").do("add_comment").do("request_user_input")
             .do("receive_user_input").do("escalate").do("change_priority").do("assign")
             .do("link_article").do("resolve").do("record_satisfaction").do("consent_to_publish")
             .do("publish_as_article").do("close"))
    envelopes = [e.envelope() for e in story.ticket.pending_events]  # type: ignore[attr-defined]
    assert find_break(envelopes) is None
    for envelope in envelopes:
        model = validate_envelope(json.loads(json.dumps(envelope)))
        assert model.type == envelope["type"]


def test_an_edited_event_breaks_the_chain_at_that_event() -> None:
    story = Story().do("acknowledge").do("start_work", after=timedelta(hours=1))
    envelopes = [e.envelope() for e in story.ticket.pending_events]  # type: ignore[attr-defined]
    envelopes[1]["data"]["note"] = "edited"
    assert find_break(envelopes) == (1, find_break(envelopes)[1])  # type: ignore[index]


def test_a_v1_comment_envelope_upcasts_to_the_current_schema() -> None:
    assert SCHEMA_VERSIONS["CommentAdded"] == 2
    story = Story().do("add_comment")
    envelope = story.ticket.pending_events[-1].envelope()  # type: ignore[attr-defined]
    old = {**envelope, "schema_version": 1, "data": {"body": "hi", "public": True}}
    current = upcast_envelope(old)
    assert current["schema_version"] == 2
    assert current["data"] == {"body": "hi", "visibility": "public"}
    assert validate_envelope(old).data.visibility == "public"  # type: ignore[attr-defined]
