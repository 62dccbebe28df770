"""The console offers exactly the commands SPEC §3 allows a key's roles in a ticket's
state (checked against the tests' own copy of the table, tests/support/spec.py), and a
form becomes the command the engine would take from any other sender."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import combinations

import pytest

from tests.support.spec import ALLOWED_FROM, STATES, WHO_MAY
from ticketflow.console.actions import actions, command_bytes, fields_of
from ticketflow.console.views import band, changed
from ticketflow.domain.commands import COMMANDS
from ticketflow.keys import Key

ROLES = ("customer", "agent", "manager", "system")


def key(*roles: str, actor: str | None = None) -> Key:
    at = datetime(2026, 11, 16, tzinfo=UTC)
    return Key("k1", "personalysispro", roles, actor, "", at, None, None, b"")


@pytest.mark.parametrize("status", sorted(STATES))
@pytest.mark.parametrize("roles", [c for n in (1, 2) for c in combinations(ROLES, n)])
def test_the_commands_offered_are_the_tables_for_the_keys_roles(status: str,
                                                                 roles: tuple[str, ...]) -> None:
    offered = {a.command: a.role for a in actions(status, key(*roles))}
    expected = {c for c, states in ALLOWED_FROM.items()
                if status in states and WHO_MAY[c] & set(roles)}
    assert set(offered) == expected
    assert all(role in WHO_MAY[c] and role in roles for c, role in offered.items())


def test_a_form_becomes_the_keys_command_with_a_blank_optional_field_left_out() -> None:
    at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    raw = command_bytes("record_satisfaction", "T-1", key("customer", actor="cust-9"),
                        {"role": "customer", "score": "4", "nps": "", "comment": "fine",
                         "message_id": "console-" + "a" * 32}, at)
    assert json.loads(raw) == {
        "message_id": "console-" + "a" * 32, "type": "record_satisfaction",
        "tenant": "personalysispro", "ticket_id": "T-1", "occurred_at": at.isoformat(),
        "actor": {"id": "cust-9", "role": "customer"},
        "payload": {"score": 4, "comment": "fine"}}


def test_a_review_forms_rubric_is_a_json_object_sent_as_one() -> None:
    at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    [field] = [f for f in fields_of(COMMANDS["review_ticket"]) if f.name == "rubric"]
    assert (field.kind, field.required) == ("json", True)
    raw = command_bytes("review_ticket", "T-1", key("manager", actor="boss"),
                        {"role": "manager", "score": "4", "note": "",
                         "rubric": '{"accurate": true, "complete": false}'}, at)
    assert json.loads(raw)["payload"] == {"score": 4,
                                          "rubric": {"accurate": True, "complete": False}}


def test_a_form_cannot_choose_its_tenant_or_actor_or_a_foreign_message_id() -> None:
    at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    raw = json.loads(command_bytes("acknowledge", "T-1", key("agent"),
                                   {"role": "agent", "tenant": "growgrebuddy",
                                    "message_id": "m-1"}, at))
    assert (raw["tenant"], raw["actor"]["id"]) == ("personalysispro", "k1")
    assert raw["message_id"].startswith("console-") and raw["message_id"] != "m-1"
    with pytest.raises(ValueError):
        command_bytes("create_ticket", "T-1", key("agent"), {}, at)


def test_the_band_draws_each_interval_by_its_length_and_a_stopped_clocks_tail_short() -> None:
    ledger = [
        {"from": "2026-11-16T14:00:00+00:00", "to": "2026-11-16T22:00:00+00:00",
         "counted": True, "reason": "open", "minutes": 480},
        {"from": "2026-11-16T22:00:00+00:00", "to": "2026-11-17T14:00:00+00:00",
         "counted": False, "reason": "out_of_hours", "minutes": 0},
        {"from": "2026-11-17T14:00:00+00:00", "to": "2026-12-17T14:00:00+00:00",
         "counted": False, "reason": "met", "minutes": 0},
    ]
    drawn = band(ledger, "America/New_York")
    assert [s.share for s in drawn] == [30.0, 60.0, 10.0]
    assert drawn[0].description == ("counted: 2026-11-16 09:00 -0500 to 2026-11-16 17:00 -0500,"
                                    " counted (480 counted min)")


def test_what_changed_names_each_field_that_differs() -> None:
    assert changed({"status": "created", "level": None, "version": 1},
                   {"status": "acknowledged", "level": None, "version": 2}) == [
        ("status", "created", "acknowledged")]
