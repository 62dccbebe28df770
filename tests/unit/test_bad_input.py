"""Hand-written malformed messages, one per kind of bad input (issue 7): each is
rejected with its stable code, kept as a dead letter with its original bytes and the
reason, and changes no stream. The application service runs for real, on
eventsourcing's in-memory recorder."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.bad_input import (
    SOON,
    TICKET,
    app_with_a_ticket,
    encoded,
    reject_and_keep,
    valid_command,
)
from tests.support.builders import T0


def _set(path: str, value: Any, type_: str = "add_comment") -> bytes:
    document = valid_command(type_)
    *parents, leaf = path.split(".")
    node = document
    for name in parents:
        node = node[name]
    node[leaf] = value
    return encoded(document)


def _drop(path: str, type_: str = "add_comment") -> bytes:
    document = valid_command(type_)
    *parents, leaf = path.split(".")
    node = document
    for name in parents:
        node = node[name]
    del node[leaf]
    return encoded(document)


def _session(session_id: str, **payload: Any) -> bytes:
    """A record_self_service command (it names a session instead of a ticket)."""
    document = valid_command() | {"type": "record_self_service", "session_id": session_id,
                                  "actor": {"id": "widget", "role": "customer"},
                                  "payload": {"articles_viewed": ["KB-1"], "outcome": "solved",
                                              **payload}}
    del document["ticket_id"]
    return encoded(document)


INVALID_MESSAGES: dict[str, bytes] = {
    # wrong types
    "occurred_at as a number": _set("occurred_at", int(SOON.timestamp())),
    "occurred_at as a numeric string": _set("occurred_at", str(int(SOON.timestamp()))),
    "actor as a string": _set("actor", "agent-7"),
    "payload as a list": _set("payload", ["Any news?"]),
    "message_id as a number": _set("message_id", 42),
    "ticket_id as an object": _set("ticket_id", {"id": TICKET}),
    "comment body as a number": _set("payload.body", 7),
    "score as a string": _set("payload.score", "5", "record_satisfaction"),
    "score as a float": _set("payload.score", 5.0, "record_satisfaction"),
    "score as a boolean": _set("payload.score", True, "record_satisfaction"),
    "type as a list": _set("type", ["add_comment"]),
    "a command that is a list": b'[{"type": "add_comment"}]',
    "a command that is null": b"null",
    # missing fields
    "no message_id": _drop("message_id"),
    "no tenant": _drop("tenant"),
    "no ticket_id": _drop("ticket_id"),
    "no occurred_at": _drop("occurred_at"),
    "no actor role": _drop("actor.role"),
    "no escalation level": _drop("payload.level", "escalate"),
    "no subject on create": _drop("payload.subject", "create_ticket"),
    "an empty message": b"",
    # huge strings
    "a message over 256 KiB": _set("payload.body", "x" * 300_000),
    "a body over 20,000 characters": _set("payload.body", "x" * 20_001),
    "a subject over 500 characters": _set("payload.subject", "s" * 501, "create_ticket"),
    "a message_id over 200 characters": _set("message_id", "m" * 201),
    "a ticket id leaving no room for its timers' ids": _set("ticket_id", "T" * 129,
                                                            "create_ticket"),
    # invalid UTF-8 and unusable text
    "bytes that are not UTF-8": b"\xff\xfe not even text",
    "a stray byte inside a string": encoded(valid_command()).replace(b"Any", b"A\xffny"),
    "an overlong encoding": encoded(valid_command()).replace(b"Any", b"\xc0\xafAny"),
    "an encoded surrogate": encoded(valid_command()).replace(b"Any", b"\xed\xa0\x80Any"),
    "a lone surrogate escape in the id": _set("message_id", "m-\ud800"),
    "a lone surrogate escape in the body": _set("payload.body", "\udfff"),
    "a lone surrogate escape in a subject": encoded(
        {**valid_command("create_ticket"),
         "payload": {**valid_command("create_ticket")["payload"], "subject": "x\ud800"}}),
    "a control character in the id": _set("message_id", "m-\x00-1"),
    # lookalike ids (issue #13, item 11): refused, never taken as other ids
    "a zero-width space in the ticket id": _set("ticket_id", TICKET + "\u200b"),
    "a right-to-left override in the message id": _set("message_id", "\u202em-9"),
    "a DEL in the actor id": _set("actor.id", "agent\x7f"),
    "a C1 control in the article id": _set("payload.article_id", "KB\x9b12", "link_article"),
    "a lone space as the ticket id": _set("ticket_id", " "),
    "a trailing space in the ticket id": _set("ticket_id", TICKET + " "),
    "a leading space in the tenant": _set("tenant", " personalysispro"),
    "a line separator in the tenant": _set("tenant", "personalysispro\u2028"),
    "a no-break space in the account id": _set("payload.account_id", "acme\u00a0corp",
                                               "create_ticket"),
    "a byte-order mark in the agent id": _set("payload.agent_id", "\ufeffagent-7", "assign"),
    "a Hangul filler as the ticket id": _set("ticket_id", "\u3164"),
    "a tag character in the message id": _set("message_id", "m-1\U000e0041"),
    "a decomposed accent in the ticket id": _set("ticket_id", "Te\u0301-1"),
    "a zero-width joiner in the session id": _session("S\u200d1"),
    "a soft hyphen in a viewed article": _session("S-1", articles_viewed=["KB\u00ad1"]),
    "JSON nested too deeply": b"[" * 100_000,
    "a 5,000-digit number": b'{"message_id": ' + b"9" * 5_000 + b"}",
    "a byte-order mark": b"\xef\xbb\xbf" + encoded(valid_command()),
    "not JSON at all": b"acknowledge T-1 please",
    # unknown or future schema_version
    "schema_version 2": _set("schema_version", 2),
    "schema_version 0": _set("schema_version", 0),
    "schema_version as a string": _set("schema_version", "1"),
    "schema_version as a float": _set("schema_version", 1.0),
    "schema_version as a boolean": _set("schema_version", True),
    # timestamps without offset, or outside any sensible range
    "a local time without offset": _set("occurred_at", "2026-11-16T14:05:00"),
    "a bare date": _set("occurred_at", "2026-11-16"),
    "a time in words": _set("occurred_at", "yesterday at noon"),
    "the year 9999": _set("occurred_at", "9999-12-31T23:59:59-23:59"),
    "the year 1": _set("occurred_at", "0001-01-01T00:00:00+00:00"),
    "a breach due without offset": _set("payload.due_at", "2026-11-16T22:00:00",
                                        "record_sla_breach"),
    # unknown tenant or type, unknown fields
    "an unknown tenant": _set("tenant", "acme-corp"),
    "an unknown command type": _set("type", "delete_ticket"),
    "an unknown role": _set("actor.role", "root"),
    "a time zone that is a folder of the zone database": _set("payload.timezone", "America",
                                                              "create_ticket"),
    "an unknown envelope field": _set("priority_boost", True),
    "an unknown payload field": _set("payload.html", "<b>hi</b>"),
    # commands older than the ticket's last event
    "a command older than the last event": _set("occurred_at", T0.isoformat()),
}


@pytest.mark.parametrize("raw", INVALID_MESSAGES.values(), ids=INVALID_MESSAGES.keys())
def test_a_malformed_message_is_an_invalid_message_kept_as_a_dead_letter(raw: bytes) -> None:
    outcome = reject_and_keep(app_with_a_ticket(), raw)
    assert outcome.error is not None and outcome.error["code"] == "invalid_message"


RULE_BREAKING: dict[str, tuple[bytes, str]] = {
    # ids are scoped by tenant: another tenant's ticket is answered like a missing one
    "another tenant's ticket": (_set("tenant", "growgrebuddy"), "not_found"),
    "a ticket that does not exist": (_set("ticket_id", "T-404"), "not_found"),
    "a ticket id already in use": (
        encoded({**valid_command("create_ticket"), "ticket_id": TICKET}), "already_exists"),
    "a role the table does not name": (_set("actor.role", "customer", "acknowledge"),
                                       "forbidden"),
    "a transition from the wrong state": (encoded(valid_command("start_work") | {
        "type": "receive_user_input", "actor": {"id": "c", "role": "customer"}}),
        "invalid_transition"),
    "a level the ladder lacks": (_set("payload.level", "ceo", "escalate"), "policy_violation"),
}


@pytest.mark.parametrize("raw, code", RULE_BREAKING.values(), ids=RULE_BREAKING.keys())
def test_a_well_formed_command_breaking_a_rule_is_kept_with_its_code(raw: bytes, code: str) -> None:
    outcome = reject_and_keep(app_with_a_ticket(), raw)
    assert outcome.error is not None and outcome.error["code"] == code


def test_the_reason_names_the_field_and_what_to_send_instead() -> None:
    cases = {
        "occurred_at": (INVALID_MESSAGES["occurred_at as a number"], "ISO-8601"),
        "schema_version": (INVALID_MESSAGES["schema_version 2"], "reads commands of"),
        "years": (INVALID_MESSAGES["the year 9999"], "1970–2199"),
        "nested": (INVALID_MESSAGES["JSON nested too deeply"], "nested too deeply"),
        "tenant": (INVALID_MESSAGES["an unknown tenant"], "known: growgrebuddy"),
    }
    for name, (raw, fragment) in cases.items():
        outcome = app_with_a_ticket().apply(raw)
        assert outcome.error is not None and fragment in outcome.error["message"], name


def test_a_message_with_an_unusable_id_is_kept_under_the_digest_of_its_bytes() -> None:
    app = app_with_a_ticket()
    raw = INVALID_MESSAGES["a lone surrogate escape in the id"]
    outcome = reject_and_keep(app, raw)
    assert outcome.message_id is None
    (letter,) = list(app.event_log.rejected())
    assert letter.key.startswith("sha256:")
    assert app.apply(raw).status == "duplicate"  # the same garbage twice is one letter


def test_a_rejected_message_is_kept_with_the_ticket_it_named() -> None:
    app = app_with_a_ticket()
    reject_and_keep(app, INVALID_MESSAGES["no actor role"])
    (letter,) = list(app.event_log.rejected())
    assert (letter.message_id, letter.tenant, letter.ticket_id) == \
        ("m-ok", "personalysispro", TICKET)
    assert letter.key.startswith("sha256:")  # an invalid message does not use up its id


def test_the_command_the_bad_ones_were_made_from_is_accepted() -> None:
    for type_ in ("add_comment", "escalate", "create_ticket"):
        assert app_with_a_ticket().apply(encoded(valid_command(type_))).status == "accepted"
    assert app_with_a_ticket().apply(_session("S-1")).status == "accepted"
    comment = json.loads(encoded(valid_command()))
    assert comment["occurred_at"] == SOON.isoformat()


def test_a_message_given_as_text_is_applied_as_its_utf8_bytes() -> None:
    text = encoded(valid_command()).decode("ascii").replace("Any news?", "Des nouvelles ? 票")
    app = app_with_a_ticket()
    assert app.apply(text).status == "accepted"
    assert app.apply(text.encode("utf-8")).status == "duplicate"  # the same message


def test_text_that_cannot_be_utf8_is_a_dead_letter_not_a_crash() -> None:
    app = app_with_a_ticket()
    outcome = app.apply('{"message_id": "m-\ud800"}')
    assert outcome.error is not None and outcome.error["code"] == "invalid_message"
    assert len(list(app.event_log.rejected())) == 1


def test_a_message_that_is_neither_bytes_nor_text_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bytes"):
        app_with_a_ticket().apply(valid_command())  # type: ignore[arg-type]
