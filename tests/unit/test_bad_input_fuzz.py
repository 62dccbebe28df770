"""Hypothesis-generated malformed messages (issue 7). Each strategy breaks a valid
command in one way; whatever it draws, the message is rejected as `invalid_message`,
kept as a dead letter with its bytes and reason, and no stream changes. Arbitrary bytes
and arbitrary JSON never raise out of the application service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bad_input import (
    LAST_EVENT_AT,
    STABLE_CODES,
    app_with_a_ticket,
    encoded,
    reject_and_keep,
    streams,
    valid_command,
)
from tests.support.builders import PAYLOAD_OF, POLICIES
from ticketflow.domain.commands import COMMANDS
from ticketflow.schemas.commands import COMMAND_MODELS

TYPES = sorted(PAYLOAD_OF)  # every command on a ticket
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

Path = tuple[str, ...]


def leaves(node: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """Every scalar of a JSON document with its path."""
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in leaves(value, (*path, key))]
    return [(path, node)]


def replaced(document: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def without(document: dict[str, Any], path: Path) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copy


def required_paths(type_: str) -> list[Path]:
    envelope: list[Path] = [("message_id",), ("type",), ("tenant",), ("ticket_id",),
                            ("occurred_at",), ("actor",), ("actor", "id"), ("actor", "role")]
    fields = COMMANDS[type_].payload.model_fields
    payload = [("payload", name) for name, field in fields.items() if field.is_required()]
    return envelope + payload + ([("payload",)] if payload else [])


commands = st.sampled_from(TYPES).map(valid_command)
json_scalars = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(),
                         st.text(max_size=20))
not_a_string = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(),
                         st.lists(st.text(max_size=5), max_size=3),
                         st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@st.composite
def missing_a_field(draw: st.DrawFn) -> bytes:
    type_ = draw(st.sampled_from(TYPES))
    return encoded(without(valid_command(type_), draw(st.sampled_from(required_paths(type_)))))


not_a_boolean = st.one_of(st.integers(), st.floats(), st.text(max_size=5),
                          st.lists(st.booleans(), max_size=2))
not_an_integer = st.one_of(st.text(max_size=5), st.floats(), st.booleans(),
                           st.lists(st.integers(), max_size=2))


def of_another_type(value: Any) -> st.SearchStrategy[Any]:
    """Values of a JSON type other than `value`'s: never one the field could take
    (the payloads' booleans and integers are strict: 1.0 is not true, true is not 1)."""
    if isinstance(value, str):
        return not_a_string
    if isinstance(value, bool):  # a review's rubric mark (before int: a bool is an int)
        return not_a_boolean
    if isinstance(value, int):  # a satisfaction or review score, an NPS
        return not_an_integer
    raise AssertionError(f"a valid command holds a leaf of another type: {value!r}")


@st.composite
def a_field_of_the_wrong_type(draw: st.DrawFn) -> bytes:
    document = draw(commands)
    path, value = draw(st.sampled_from(leaves(document)))
    return encoded(replaced(document, path, draw(of_another_type(value))))


@st.composite
def a_container_that_is_a_scalar(draw: st.DrawFn) -> bytes:
    document = draw(commands)
    return encoded(replaced(document, (draw(st.sampled_from(["actor", "payload"])),),
                            draw(json_scalars)))


@st.composite
def a_huge_string(draw: st.DrawFn) -> bytes:
    document = draw(commands)
    strings = [path for path, value in leaves(document) if isinstance(value, str)]
    size = draw(st.integers(min_value=20_001, max_value=300_000))
    return encoded(replaced(document, draw(st.sampled_from(strings)),
                            draw(st.characters(codec="utf-8")) * size))


@st.composite
def bytes_that_are_not_utf8(draw: st.DrawFn) -> bytes:
    raw = encoded(draw(commands))
    at = draw(st.integers(min_value=0, max_value=len(raw)))
    bad = draw(st.sampled_from([b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80",
                                b"\xf5\x80\x80\x80", b"\xe2\x82"]))
    return raw[:at] + bad + raw[at:]


@st.composite
def a_schema_version_it_does_not_read(draw: st.DrawFn) -> bytes:
    version = draw(json_scalars.filter(lambda v: not (type(v) is int and v == 1)))
    return encoded(draw(commands) | {"schema_version": version})


@st.composite
def an_instant_without_offset(draw: st.DrawFn) -> bytes:
    naive = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2199, 12, 30)))
    text = draw(st.sampled_from([naive.isoformat(), naive.date().isoformat(),
                                 naive.isoformat(sep=" ", timespec="minutes"),
                                 str(int(naive.replace(tzinfo=UTC).timestamp()))]))
    value = draw(st.sampled_from([text, int(naive.replace(tzinfo=UTC).timestamp())]))
    return encoded(draw(commands) | {"occurred_at": value})


@st.composite
def an_unknown_tenant_or_type(draw: st.DrawFn) -> bytes:
    field = draw(st.sampled_from(["tenant", "type"]))
    known = POLICIES if field == "tenant" else COMMAND_MODELS
    value = draw(st.text(min_size=1, max_size=40).filter(lambda v: v not in known))
    return encoded(draw(commands) | {field: value})


@st.composite
def older_than_the_last_event(draw: st.DrawFn) -> bytes:
    offset = timezone(timedelta(minutes=draw(st.integers(min_value=-1439, max_value=1439))))
    instant = draw(st.datetimes(min_value=datetime(1970, 1, 2),
                                max_value=LAST_EVENT_AT.replace(tzinfo=None)
                                - timedelta(seconds=1), timezones=st.just(UTC)))
    return encoded(draw(commands) | {"occurred_at": instant.astimezone(offset).isoformat()})


MALFORMED = {
    "missing a field": missing_a_field(),
    "a field of the wrong type": a_field_of_the_wrong_type(),
    "a container that is a scalar": a_container_that_is_a_scalar(),
    "a huge string": a_huge_string(),
    "bytes that are not UTF-8": bytes_that_are_not_utf8(),
    "a schema_version it does not read": a_schema_version_it_does_not_read(),
    "an instant without offset": an_instant_without_offset(),
    "an unknown tenant or type": an_unknown_tenant_or_type(),
    "older than the last event": older_than_the_last_event(),
}


@pytest.mark.parametrize("kind", MALFORMED)
@FUZZ
@given(data=st.data())
def test_every_malformed_message_is_an_invalid_message_that_changes_nothing(
    kind: str, data: st.DataObject
) -> None:
    raw = data.draw(MALFORMED[kind], label=kind)
    outcome = reject_and_keep(app_with_a_ticket(), raw)
    assert outcome.error is not None and outcome.error["code"] == "invalid_message"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["message_id", "type", "tenant", "ticket_id", "session_id",
                         "occurred_at", "actor", "payload", "role", "id", "schema_version"])
        | st.text(max_size=8), inner, max_size=6),
    max_leaves=20)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=400), json_values.map(encoded),
                     commands.map(encoded), st.text(max_size=200).map(str.encode)))
def test_no_input_raises_and_a_rejection_is_kept_with_a_stable_code(raw: bytes) -> None:
    app = app_with_a_ticket()
    before = streams(app)
    outcome = app.apply(raw)
    assert outcome.status in {"accepted", "rejected", "duplicate"}
    if outcome.status == "rejected":
        assert outcome.error is not None and outcome.error["code"] in STABLE_CODES
        assert [r.error for r in app.event_log.rejected()
                if r.original_bytes() == raw] == [outcome.error]
        assert streams(app) == before
