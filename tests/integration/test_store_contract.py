"""One contract, every event-store backend (SQLite file and a real PostgreSQL).

Each test runs twice through the `db_url` fixture. Nothing here is mocked.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.builders import T0, command_line, create_payload
from tests.support.postgres import create_database
from ticketflow import application
from ticketflow.application import Outcome, TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.domain.policy import PolicyError, policy_from_data, shipped_policies
from ticketflow.settings import Settings, eventstore_env
from ticketflow.verification import verify_store


def open_app(db_url: str) -> TicketingApp:
    return build_app(Settings(db=db_url))


def create(message_id: str = "m-1", ticket_id: str = "T-1", **payload: object) -> bytes:
    return command_line(message_id, "create_ticket", ticket_id, T0, "customer",
                        create_payload(**payload))


def act(message_id: str, type_: str, minutes: int, role: str = "agent",
        ticket_id: str = "T-1", **payload: object) -> bytes:
    return command_line(message_id, type_, ticket_id, T0 + timedelta(minutes=minutes), role,
                        payload)


def stored(app: TicketingApp, ticket_id: str = "T-1") -> list[dict[str, object]]:
    return app.event_log.ticket_events(ticket_id)


def test_an_accepted_command_is_stored_with_a_chained_envelope(db_url: str) -> None:
    with open_app(db_url) as app:
        assert app.apply(create()).status == "accepted"
        assert app.apply(act("m-2", "acknowledge", 30)).events == ["TicketAcknowledged"]
        timeline = stored(app)
    assert [e["type"] for e in timeline] == ["TicketCreated", "TicketAcknowledged"]
    assert [e["causation_id"] for e in timeline] == ["m-1", "m-2"]
    assert timeline[1]["occurred_at"] == (T0 + timedelta(minutes=30)).isoformat()


def test_a_message_id_seen_before_is_a_duplicate_in_a_later_process(db_url: str) -> None:
    with open_app(db_url) as first:
        first.apply(create())
        first.apply(act("m-2", "add_comment", 5, role="customer", body="hello"))
    with open_app(db_url) as later:
        again = later.apply(act("m-2", "add_comment", 5, role="customer", body="hello"))
        assert again.status == "duplicate" and again.events == []
        assert [e["type"] for e in stored(later)] == ["TicketCreated", "CommentAdded"]


@pytest.mark.parametrize("raw, code", [
    (act("m-2", "acknowledge", 5, ticket_id="T-404"), "not_found"),
    (create("m-3"), "already_exists"),
    (act("m-4", "start_work", 5), "invalid_transition"),
    (act("m-5", "acknowledge", 5, role="customer"), "forbidden"),
    (act("m-6", "escalate", 5, level="management", reason="x"), "policy_violation"),
    (act("m-7", "acknowledge", -5), "invalid_message"),
    (b"\xff not even utf-8", "invalid_message"),
    (json.dumps({"message_id": "m-8", "type": "acknowledge", "tenant": "acme-corp",
                 "ticket_id": "T-1", "occurred_at": T0.isoformat(),
                 "actor": {"id": "a", "role": "agent"}, "payload": {}}).encode(),
     "invalid_message"),
])
def test_a_rejected_command_changes_nothing_and_is_kept_with_its_reason(
    db_url: str, raw: bytes, code: str
) -> None:
    with open_app(db_url) as app:
        app.apply(create())
        before = stored(app)
        outcome = app.apply(raw)
        assert outcome.status == "rejected"
        assert outcome.error is not None and outcome.error["code"] == code
        assert stored(app) == before
        letters = list(app.event_log.rejected())
        assert len(letters) == 1 and letters[0].error == outcome.error
        assert letters[0].original_bytes() == raw


def test_another_tenants_command_fires_none_of_the_tickets_due_timers(db_url: str) -> None:
    with open_app(db_url) as app:
        app.apply(create())  # its first response falls due within the day
        late = command_line("x-1", "add_comment", "T-1", T0 + timedelta(days=3), "customer",
                            {"body": "hi"}, tenant="growgrebuddy")
        outcome = app.apply(late)
        assert outcome.error is not None and outcome.error["code"] == "not_found"  # not theirs
        assert [e["type"] for e in stored(app)] == ["TicketCreated"]
        assert app.fire_due("T-1", until=T0 + timedelta(days=3))  # they were due


def test_a_message_that_loses_every_race_is_a_conflict_that_may_be_sent_again(
    db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(application, "RACE_BUDGET_SECONDS", 0.0)  # give up after one loss
    with open_app(db_url) as mine, open_app(db_url) as theirs:
        mine.apply(create())
        mine.apply(act("c-1", "add_comment", 1, role="customer", body="1"))  # mine caches v2
        theirs.apply(act("c-2", "add_comment", 2, role="customer", body="2"))  # store: v3
        comment = act("c-3", "add_comment", 3, role="customer", body="3")
        lost = mine.apply(comment)  # from the stale v2: collides, and the budget is spent
        assert lost.error is not None and lost.error["code"] == "conflict"
        assert mine.event_log.receipt("personalysispro", "c-3") is None  # not recorded
        assert list(mine.event_log.rejected()) == []
        assert mine.apply(comment).status == "accepted"  # sent again: it happens
        assert [e["causation_id"] for e in stored(mine)][-2:] == ["c-2", "c-3"]


def test_resending_a_rejected_message_is_a_duplicate(db_url: str) -> None:
    with open_app(db_url) as app:
        app.apply(create())
        assert app.apply(act("m-4", "start_work", 5)).status == "rejected"
        assert app.apply(act("m-4", "start_work", 5)).status == "duplicate"
        assert len(list(app.event_log.rejected())) == 1


@pytest.mark.processes
def test_concurrent_writers_on_one_ticket_lose_no_update(db_url: str) -> None:
    with open_app(db_url) as setup:
        setup.apply(create())
    apps = [open_app(db_url) for _ in range(3)]
    outcomes: list[Outcome] = []

    def write(app: TicketingApp, worker: int) -> None:
        for n in range(10):
            raw = act(f"w{worker}-{n}", "add_comment", 10, role="customer", body=f"{worker}/{n}")
            outcomes.append(app.apply(raw))

    threads = [threading.Thread(target=write, args=(app, i)) for i, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in apps:
        app.close()
    assert [o for o in outcomes if o.status != "accepted"] == []
    with open_app(db_url) as app:
        timeline = stored(app)
        assert [e["version"] for e in timeline] == list(range(1, 32))
        assert verify_store(app) == []


def test_a_ticket_loads_the_same_from_snapshots_after_many_events(db_url: str) -> None:
    with open_app(db_url) as app:
        app.apply(create())
        app.apply(act("ack", "acknowledge", 0))  # no SLA clock runs out in the 230 minutes
        for n in range(230):
            app.apply(act(f"c-{n}", "add_comment", n, role="customer", body=str(n)))
        live = app.load_ticket("T-1").state()
    with open_app(db_url) as fresh:
        assert fresh.snapshots is not None
        assert len(list(fresh.snapshots.get(fresh.load_ticket("T-1").id))) == 2
        assert fresh.load_ticket("T-1").state() == live
        assert fresh.load_ticket("T-1").version == 232


def test_a_ticket_keeps_the_policy_version_it_was_created_under(db_url: str) -> None:
    with open_app(db_url) as app:
        app.apply(create(plan="standard", channel="email", priority="high"))
    document = shipped_policies()["personalysispro"].model_dump(mode="json")
    document["version"] = "2.0.0"
    document["plans"]["standard"]["first_response"]["high"] = 30
    bumped = {**shipped_policies(), "personalysispro": policy_from_data(document, "v2")}
    with TicketingApp(bumped, eventstore_env(db_url)) as app:
        ticket = app.load_ticket("T-1")
        created_under = shipped_policies()["personalysispro"].version
        assert app.policy_store.policy_of(ticket).version == created_under != "2.0.0"
        result = ticket.sla(app.policy_store.policy_of(ticket), T0 + timedelta(hours=1))
        assert result.first_response.target_minutes == 240


def test_a_changed_policy_without_a_version_bump_is_refused(db_url: str) -> None:
    with open_app(db_url) as app:
        app.apply(create())
    document = shipped_policies()["personalysispro"].model_dump(mode="json")
    document["resolution"]["high"] = 60
    edited = {**shipped_policies(), "personalysispro": policy_from_data(document, "edited")}
    with TicketingApp(edited, eventstore_env(db_url)) as app, \
            pytest.raises(PolicyError, match="new `version`"):
        app.apply(create("m-9", "T-2"))


def test_verify_names_an_event_edited_in_the_store(db_url: str) -> None:
    with open_app(db_url) as app:
        app.apply(create())
        app.apply(act("m-2", "add_comment", 5, role="customer", body="original"))
        app.apply(act("m-3", "acknowledge", 6))
        assert verify_store(app) == []
        tamper(app, db_url, "original", "tampered")
        findings = [f.as_dict() for f in verify_store(app)]
        assert [(f["ticket_id"], f["version"]) for f in findings] == [("T-1", 2)]
        assert verify_store(app, "T-1")[0].version == 2


def tamper(app: TicketingApp, db_url: str, old: str, new: str) -> None:
    """Edit a stored event's bytes behind the application's back."""
    table = "stored_events" if db_url.startswith("sqlite") else "ticketflow_events"
    if db_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(f"UPDATE {table} SET state = CAST(REPLACE(CAST(state AS TEXT), ?, ?)"
                         " AS BLOB)", (old, new))
        conn.close()
        return
    import psycopg

    with psycopg.connect(db_url.replace("postgresql://", "postgresql://", 1)) as conn:
        conn.execute(f"UPDATE {table} SET state = convert_to(replace(convert_from(state, 'UTF8'),"
                     " %s, %s), 'UTF8')", (old, new))


def test_recorded_at_comes_from_the_injected_clock(db_url: str) -> None:
    fixed = datetime(2030, 1, 1, tzinfo=UTC)
    with TicketingApp(shipped_policies(), eventstore_env(db_url), clock=lambda: fixed) as app:
        app.apply(create())
        assert stored(app)[0]["recorded_at"] == fixed.isoformat()


@pytest.mark.processes
def test_several_processes_opening_a_fresh_store_at_once_all_start(
    db_url: str, request: pytest.FixtureRequest
) -> None:
    failures: list[str] = []
    for round_ in range(5):
        url = db_url if round_ == 0 else fresh_url(db_url, request, round_)

        def open_and_close(url: str = url) -> None:
            try:
                open_app(url).close()
            except Exception as exc:  # collected: the assertion below names them
                failures.append(repr(exc))

        threads = [threading.Thread(target=open_and_close) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


def fresh_url(db_url: str, request: pytest.FixtureRequest, n: int) -> str:
    """Another empty store on the same backend."""
    if db_url.startswith("sqlite"):
        return db_url.replace("ticketflow.db", f"fresh-{n}.db")
    return create_database(request.getfixturevalue("postgres_server"))
