"""What a hostile or careless sender can no longer do (issue: hardening), on the real
application service over eventsourcing's in-memory recorder, with a fixed clock.

Each test states the attack, then that it was refused with a stable code, kept as a
dead letter where it must be, and cost no other ticket or tenant anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bad_input import kept_as, streams
from tests.support.builders import POLICIES, T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.domain.receipt import KEEP_BYTES
from ticketflow.producers.sdk import outcome
from ticketflow.timers import Timers

NOW = T0 + timedelta(days=30)  # the engine's clock in these tests: long after the stories
PP, GB = "personalysispro", "growgrebuddy"
FIRST_RESPONSE_DUE = datetime(2026, 11, 16, 17, tzinfo=UTC)  # T-1's (see test_timers.py)


def app_at(now: datetime = NOW) -> TicketingApp:
    return TicketingApp(POLICIES, {"PERSISTENCE_MODULE": "eventsourcing.popo"},
                        clock=lambda: now)


def create(message_id: str, ticket_id: str = "T-1", tenant: str = PP,
           at: datetime = T0) -> bytes:
    return command_line(message_id, "create_ticket", ticket_id, at, "customer",
                        create_payload(tenant), tenant=tenant)


def comment(message_id: str, minutes: int, body: str = "any news?", ticket_id: str = "T-1",
            tenant: str = PP) -> bytes:
    return command_line(message_id, "add_comment", ticket_id, T0 + timedelta(minutes=minutes),
                        "customer", {"body": body, "visibility": "public"}, tenant=tenant)


def code(app: TicketingApp, raw: bytes) -> str | None:
    result = app.apply(raw)
    return (result.error or {}).get("code") if result.status == "rejected" else result.status


# -- 1, 2, 3: ids are scoped by tenant ---------------------------------------------------


def test_another_tenant_cannot_block_a_tickets_timer_with_its_message_id() -> None:
    app = app_at()
    assert code(app, create("m-1")) == "accepted"
    timer_id = f"timer:T-1:breach:first_response:{FIRST_RESPONSE_DUE.isoformat()}"
    garbage = json.dumps({"message_id": timer_id, "tenant": GB, "type": "nonsense"}).encode()
    assert code(app, garbage) == "invalid_message"
    fired = Timers(app).fire_until(FIRST_RESPONSE_DUE)
    assert [(o.status, o.events) for o in fired] == [("accepted", ["SlaBreached"])]
    assert code(app, comment("m-2", 240)) == "accepted"  # and the ticket goes on


def test_no_inbound_message_may_use_the_timers_ids_or_actor() -> None:
    app = app_at()
    app.apply(create("m-1"))
    timer_id = f"timer:T-1:breach:first_response:{FIRST_RESPONSE_DUE.isoformat()}"
    forged = command_line(timer_id, "record_sla_breach", "T-1", FIRST_RESPONSE_DUE, "system",
                          {"clock": "first_response", "due_at": FIRST_RESPONSE_DUE.isoformat()})
    as_timer = command_line("m-9", "assign", "T-1", T0 + timedelta(minutes=5), "system",
                            {"agent_id": "a-1"}, actor="ticketflow-timer")
    before = streams(app)
    assert code(app, forged) == code(app, as_timer) == "forbidden"
    assert streams(app) == before
    letters = list(app.event_log.rejected())
    assert all(letter.key.startswith("sha256:") for letter in letters)  # ids unused
    fired = Timers(app).fire_until(FIRST_RESPONSE_DUE)  # the real timer is not blocked
    assert [o.events for o in fired] == [["SlaBreached"]]


def test_two_tenants_use_the_same_message_id_without_meeting() -> None:
    app = app_at()
    assert code(app, b'{"message_id": "m-100", "tenant": "growgrebuddy"}') == "invalid_message"
    assert code(app, create("m-100", "G-1", GB)) == "accepted"
    assert code(app, create("m-100", "T-1", PP)) == "accepted"  # not a duplicate
    assert outcome(app, "m-100", tenant=PP).ticket_id == "T-1"  # type: ignore[union-attr]
    assert outcome(app, "m-100", tenant=GB).ticket_id == "G-1"  # type: ignore[union-attr]


def test_two_tenants_use_the_same_ticket_id_without_meeting() -> None:
    app = app_at()
    assert code(app, create("m-1", "T-1", PP)) == "accepted"
    assert code(app, create("g-1", "T-1", GB)) == "accepted"  # not already_exists
    assert code(app, comment("m-2", 5)) == "accepted"
    assert app.load_ticket("T-1", tenant=PP).version == 2
    assert app.load_ticket("T-1", tenant=GB).version == 1
    assert [e["tenant"] for e in app.event_log.ticket_events("T-1", tenant=GB)] == [GB]


def test_another_tenants_ticket_is_answered_exactly_like_a_missing_one() -> None:
    app = app_at()
    app.apply(create("m-1", "T-1", PP))
    theirs = app.apply(comment("g-2", 5, ticket_id="T-1", tenant=GB))
    missing = app.apply(comment("g-3", 5, ticket_id="T-404", tenant=GB))
    assert theirs.error == {**(missing.error or {}),
                            "message": (missing.error or {})["message"].replace("T-404", "T-1")}
    assert (theirs.error or {})["code"] == "not_found"


# -- 4: the sender does not control the future ------------------------------------------


def test_a_command_dated_far_ahead_is_refused_and_fires_nothing() -> None:
    app = app_at()
    app.apply(create("m-1"))
    before = streams(app)
    future = command_line("m-2", "resolve", "T-1", datetime(2199, 12, 31, tzinfo=UTC),
                          "customer", {"resolution": "x"})
    result = app.apply(future)
    assert (result.error or {}).get("code") == "invalid_message"
    assert "ahead of the engine's clock" in (result.error or {})["message"]
    assert streams(app) == before  # no timer fired up to 2199
    assert code(app, comment("m-3", 60)) == "accepted"  # real time goes on


def test_a_command_within_the_skew_is_recorded_at_the_engines_clock() -> None:
    app = app_at(T0 + timedelta(minutes=10))
    app.apply(create("m-1"))
    ahead = command_line("m-2", "acknowledge", "T-1", T0 + timedelta(minutes=13), "agent", {})
    assert code(app, ahead) == "accepted"
    last = app.event_log.ticket_events("T-1")[-1]
    assert last["occurred_at"] == last["recorded_at"] == (T0 + timedelta(minutes=10)).isoformat()


def test_tick_to_a_future_instant_fires_only_what_is_due_by_the_clock() -> None:
    app = app_at(FIRST_RESPONSE_DUE + timedelta(minutes=1))
    app.apply(create("m-1"))
    fired = Timers(app).fire_until(datetime(2199, 1, 1, tzinfo=UTC))
    assert [o.events for o in fired] == [["SlaBreached"]]  # not the resolution's, not later


COMMANDS = st.sampled_from([
    ("acknowledge", "agent", {}), ("start_work", "agent", {}),
    ("add_comment", "customer", {"body": "hi", "visibility": "public"}),
    ("request_user_input", "agent", {"question": "which?"}),
    ("receive_user_input", "customer", {}), ("resolve", "agent", {"resolution": "done"}),
    ("reopen", "customer", {"reason": "again"}), ("close", "customer", {}),
    ("escalate", "agent", {"level": "first_level", "reason": "hard"}),
])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(COMMANDS, st.integers(-600, 4 * 24 * 60)), max_size=12),
       now_minutes=st.integers(0, 5 * 24 * 60))
def test_no_event_is_ever_recorded_before_it_happened(
    steps: list[tuple[tuple[str, str, dict[str, Any]], int]], now_minutes: int,
) -> None:
    """Random commands, dated before and after the engine's clock (some beyond the
    skew), then the timer: every recorded event has occurred_at <= recorded_at."""
    now = T0 + timedelta(minutes=now_minutes)
    app = app_at(now)
    app.apply(create("m-0"))
    for n, ((type_, role, payload), minutes) in enumerate(steps, start=1):
        app.apply(command_line(f"m-{n}", type_, "T-1", T0 + timedelta(minutes=minutes), role,
                               payload))
    Timers(app).fire_until(now + timedelta(days=30))
    for envelope in map(app.event_log.envelope_of, app.event_log.stream_records()):
        assert envelope["occurred_at"] <= envelope["recorded_at"], envelope


# -- 5: the same id with another body ---------------------------------------------------


def test_the_same_body_again_is_a_duplicate_even_reserialised() -> None:
    app = app_at()
    app.apply(create("m-1"))
    first = comment("m-2", 5)
    reordered = json.dumps(dict(reversed(json.loads(first).items())), indent=1).encode()
    assert [code(app, raw) for raw in (first, first, reordered)] == \
        ["accepted", "duplicate", "duplicate"]


def test_the_same_id_with_another_body_is_an_idempotency_mismatch_kept_as_a_dead_letter(
) -> None:
    app = app_at()
    app.apply(create("m-1"))
    assert code(app, comment("m-2", 5, body="first")) == "accepted"
    before = streams(app)
    other = comment("m-2", 6, body="second")
    result = app.apply(other)
    assert (result.error or {}).get("code") == "idempotency_mismatch"
    assert streams(app) == before
    assert outcome(app, "m-2", tenant=PP).status == "accepted"  # type: ignore[union-attr]
    assert [letter.message_id for letter in app.event_log.rejected()
            if kept_as(letter, other)] == ["m-2"]
    assert code(app, other) == "idempotency_mismatch"  # again, and kept once
    assert len([letter for letter in app.event_log.rejected() if kept_as(letter, other)]) == 1


def test_a_rejected_id_reused_for_another_body_is_a_mismatch_too() -> None:
    app = app_at()
    app.apply(create("m-1"))
    refused = command_line("m-2", "start_work", "T-1", T0 + timedelta(minutes=5), "customer",
                           {})
    assert code(app, refused) == "forbidden"
    assert code(app, refused) == "duplicate"
    assert code(app, comment("m-2", 6)) == "idempotency_mismatch"


def test_an_invalid_message_does_not_use_up_its_id() -> None:
    app = app_at()
    app.apply(create("m-1"))
    broken = json.loads(comment("m-2", 5))
    del broken["payload"]["body"]
    assert code(app, json.dumps(broken).encode()) == "invalid_message"
    assert outcome(app, "m-2", tenant=PP) is None
    assert code(app, comment("m-2", 5)) == "accepted"  # the corrected command, same id


def test_a_message_older_than_the_tickets_last_event_does_not_use_up_its_id() -> None:
    app = app_at()
    app.apply(create("m-1"))
    app.apply(comment("m-2", 10))
    assert code(app, comment("m-3", 5)) == "invalid_message"
    assert code(app, comment("m-3", 11)) == "accepted"


# -- 8: dead letters are bounded ---------------------------------------------------------


def test_an_oversized_message_keeps_only_its_head_length_and_digest() -> None:
    app = app_at()
    huge = b'{"message_id": "big", "tenant": "personalysispro", "pad": "' + b"x" * 10_000_000
    assert code(app, huge) == "invalid_message"
    (letter,) = app.event_log.rejected()
    assert kept_as(letter, huge) and letter.truncated
    assert len(letter.original_bytes()) == KEEP_BYTES and letter.raw_length == len(huge)
    assert code(app, huge) == "duplicate"  # the same bytes again: one dead letter


def test_a_text_message_is_taken_as_its_utf8_bytes() -> None:
    app = app_at()
    assert app.apply(create("m-1").decode()).status == "accepted"
    assert app.apply("\ud800").status == "rejected"  # a lone surrogate: refused, not raised
