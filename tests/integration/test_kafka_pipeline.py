"""The Kafka path against a real broker: SDK → support.commands → command consumer →
event store → outbox relay → support.ticket-events, and the dead-letter topic.

Each test gets its own topics (a unique prefix) on the session's broker: the fixtures
`settings`, `topics`, `pipeline` and `client` come from tests/support/pipeline.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka.producer import KafkaProducer
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from tests.support.builders import T0, command_line, create_payload
from tests.support.pipeline import Pipeline, read_topic
from tests.support.waiting import wait_for
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.clock import SystemClock
from ticketflow.consumers.projections import KafkaProjectionRunner
from ticketflow.domain.chain import find_break
from ticketflow.domain.errors import InvalidMessage
from ticketflow.producers.relay import OutboxRelay, producer_config
from ticketflow.producers.sdk import CommandClient, outcome
from ticketflow.producers.topics import Topics
from ticketflow.projections.db import engine_for, tables
from ticketflow.schemas.events import validate_envelope
from ticketflow.settings import Settings, kafka_client_config
from ticketflow.timers import Timers
from ticketflow.verification import verify_store


def publish_story(client: CommandClient, ticket: str, tenant: str = "personalysispro") -> int:
    """create, acknowledge, start, comment, resolve: five commands a minute apart."""
    steps: list[tuple[str, tuple[str, str], dict[str, Any]]] = [
        ("create_ticket", ("cust-1", "customer"), create_payload(tenant)),
        ("acknowledge", ("agent-1", "agent"), {}),
        ("start_work", ("agent-1", "agent"), {}),
        ("add_comment", ("cust-1", "customer"), {"body": "thanks"}),
        ("resolve", ("agent-1", "agent"), {"resolution": "fixed"}),
    ]
    for minute, (type_, actor, payload) in enumerate(steps):
        client.send(type_, tenant=tenant, ticket_id=ticket, actor=actor, payload=payload,
                    message_id=f"{ticket}-{minute}", occurred_at=T0 + timedelta(minutes=minute))
    client.flush()
    return len(steps)


def handled(app: TicketingApp, message_ids: list[str]) -> bool:
    return all(outcome(app, m) is not None for m in message_ids)


def test_published_commands_become_chained_events_in_per_ticket_order(
    settings: Settings, topics: Topics, pipeline: Pipeline, client: CommandClient
) -> None:
    tickets = [f"K-{n}" for n in range(4)]
    for ticket in tickets:
        publish_story(client, ticket)
    with build_app(settings) as app:
        wait_for(lambda: handled(app, [f"{t}-4" for t in tickets]), "all commands handled")
        assert {outcome(app, f"{t}-{n}").status for t in tickets for n in range(5)} == {"accepted"}  # type: ignore[union-attr]
    records = read_topic(settings.kafka or "", topics.ticket_events, expected=20)
    by_ticket: dict[str, list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        envelope = json.loads(record["value"])
        assert record["key"].decode() == envelope["ticket_id"]
        assert record["headers"]["type"].decode() == envelope["type"]
        assert record["headers"]["schema_version"] == str(envelope["schema_version"]).encode()
        validate_envelope(envelope)
        by_ticket.setdefault(envelope["ticket_id"], []).append(envelope)
    assert sorted(by_ticket) == tickets
    for envelopes in by_ticket.values():
        assert [e["version"] for e in envelopes] == [1, 2, 3, 4, 5]
        assert [e["type"] for e in envelopes] == [
            "TicketCreated", "TicketAcknowledged", "WorkStarted", "CommentAdded",
            "TicketResolved"]
        assert find_break(envelopes) is None


def test_malformed_and_rule_breaking_messages_land_in_the_dead_letter_topic(
    settings: Settings, topics: Topics, pipeline: Pipeline, client: CommandClient
) -> None:
    garbage = b"\xfe{ not a command"
    raw = KafkaProducer(bootstrap_servers=settings.kafka)
    raw.send(topics.commands, key=b"K-X", value=garbage)
    raw.flush()
    raw.close()
    client.send("create_ticket", tenant="personalysispro", ticket_id="K-1",
                actor=("c", "customer"), payload=create_payload(), message_id="ok-1",
                occurred_at=T0)
    client.send("acknowledge", tenant="growgrebuddy", ticket_id="K-1", actor=("a", "agent"),
                payload={}, message_id="bad-tenant", occurred_at=T0 + timedelta(minutes=1))
    client.flush()
    letters = read_topic(settings.kafka or "", topics.dead_letter, expected=2)
    by_code = {r["headers"]["error_code"].decode(): r for r in letters}
    assert set(by_code) == {"invalid_message", "not_found"}  # ids are scoped by tenant
    assert by_code["invalid_message"]["value"] == garbage
    assert b"UTF-8" in by_code["invalid_message"]["headers"]["error_message"]
    forbidden = by_code["not_found"]
    assert json.loads(forbidden["value"])["message_id"] == "bad-tenant"
    assert forbidden["headers"]["message_id"] == b"bad-tenant"
    assert forbidden["key"] == b"K-1"
    with build_app(settings) as app:  # the rejected command changed nothing
        assert "bad-tenant" not in {e["causation_id"] for e in app.event_log.ticket_events("K-1")}
        assert app.load_ticket("K-1").status == "created"


def test_restarting_mid_stream_loses_nothing_and_duplicates_nothing(
    settings: Settings, topics: Topics, client: CommandClient
) -> None:
    tickets = [f"R-{n}" for n in range(12)]
    first = Pipeline(settings).start()
    for ticket in tickets[:6]:
        publish_story(client, ticket)
    with build_app(settings) as app:
        wait_for(lambda: outcome(app, "R-0-2") is not None, "some commands handled")
    first.stop()  # mid-stream: commands still queued, events maybe not yet relayed
    for ticket in tickets[6:]:
        publish_story(client, ticket)
    second = Pipeline(settings).start()
    try:
        with build_app(settings) as app:
            wait_for(lambda: handled(app, [f"{t}-4" for t in tickets]), "every command handled")
            stored = {(e["ticket_id"], e["version"])
                      for t in tickets for e in app.event_log.ticket_events(t)}
            assert verify_store(app) == []
        assert len(stored) == 60
        records = read_topic(settings.kafka or "", topics.ticket_events, expected=60)
    finally:
        second.stop()
    published = [(json.loads(r["value"])["ticket_id"], json.loads(r["value"])["version"])
                 for r in records]
    assert set(published) == stored  # nothing lost; duplicates (at least once) dedupe away


def test_the_sdk_refuses_an_invalid_command_before_sending(client: CommandClient) -> None:
    with pytest.raises(InvalidMessage, match=r"payload\.priority"):
        client.send("change_priority", tenant="personalysispro", ticket_id="K-1",
                    actor=("m", "manager"), payload={"reason": "x"})


def test_a_non_python_client_sends_a_command_and_reads_the_events(
    settings: Settings, topics: Topics, pipeline: Pipeline, tmp_path: Path
) -> None:
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "kcat is missing: apt-get install kcat (scripts/test.sh installs it)"
    command = {"message_id": "kcat-1", "type": "create_ticket", "tenant": "growgrebuddy",
               "ticket_id": "KC-1", "occurred_at": "2026-11-16T14:30:00Z",
               "actor": {"id": "widget", "role": "customer"},
               "payload": create_payload("growgrebuddy")}
    subprocess.run([kcat, "-P", "-b", settings.kafka or "", "-t", topics.commands, "-K", "\t"],
                   input=f"KC-1\t{json.dumps(command)}\n", text=True, check=True, timeout=60)
    with build_app(settings) as app:
        wait_for(lambda: outcome(app, "kcat-1"), "the kcat command handled")
        assert outcome(app, "kcat-1").status == "accepted"  # type: ignore[union-attr]

    def events_seen_by_kcat() -> list[dict[str, Any]]:
        result = subprocess.run(
            [kcat, "-C", "-b", settings.kafka or "", "-t", topics.ticket_events, "-o",
             "beginning", "-e", "-q", "-f", "%k\t%s\n"],
            capture_output=True, text=True, timeout=60, check=True)
        return [json.loads(line.split("\t", 1)[1]) for line in result.stdout.splitlines()
                if line.startswith("KC-1\t")]

    events = wait_for(events_seen_by_kcat, "kcat to read the TicketCreated event")
    assert events[0]["type"] == "TicketCreated"
    assert events[0]["causation_id"] == "kcat-1"


def read_models(settings: Settings) -> dict[str, Any]:
    engine = engine_for(settings.db)
    t = tables()
    with engine.connect() as conn:
        tickets = {r.ticket_id: (r.version, r.status) for r in conn.execute(select(t.tickets))}
        created = conn.execute(select(func.coalesce(func.sum(t.volume.c.created), 0))).scalar()
    return {"tickets": tickets, "created": created}


def test_the_read_models_follow_kafka_through_a_restart_without_double_counting(
    settings: Settings, topics: Topics, client: CommandClient
) -> None:
    tickets = [f"P-{n}" for n in range(8)]
    first = Pipeline(settings).start()
    for ticket in tickets[:4]:
        publish_story(client, ticket)

    def caught_up(names: list[str]) -> bool:
        with build_app(settings) as app:
            expected = {t: (app.load_ticket(t).version, app.load_ticket(t).status)
                        for t in names if outcome(app, f"{t}-4")}
        try:
            seen = read_models(settings)["tickets"]
        except OperationalError:  # the projections role has not created its tables yet
            return False
        return len(expected) == len(names) and all(seen.get(t) == v for t, v in expected.items())

    wait_for(lambda: caught_up(tickets[:4]), "the first tickets in the read models")
    first.stop()
    for ticket in tickets[4:]:
        publish_story(client, ticket)
    second = Pipeline(settings).start()
    try:
        wait_for(lambda: caught_up(tickets), "every ticket in the read models")
    finally:
        second.stop()
    assert read_models(settings)["created"] == len(tickets)  # each ticket counted once


def test_a_read_model_step_that_fails_after_its_poll_is_applied_once_it_succeeds(
    settings: Settings, topics: Topics,
) -> None:
    with build_app(settings) as app:
        app.apply(command_line("c", "create_ticket", "T-1", T0, "customer", create_payload()))
        app.apply(command_line("a", "acknowledge", "T-1", T0 + timedelta(minutes=1), "agent",
                               {}))
        producer = KafkaProducer(**producer_config(kafka_client_config(settings.kafka)))
        relay = OutboxRelay(app, producer, topic=topics.ticket_events)
        while relay.run_once():
            pass
        engine = engine_for(settings.db)
        runner = KafkaProjectionRunner.subscribe(app, engine,
                                                 kafka_client_config(settings.kafka), topics)
        try:
            with engine.begin() as conn:  # the read-model database fails the next step
                conn.execute(text('ALTER TABLE "rm_offsets" RENAME TO "rm_offsets_away"'))
            wait_for(lambda: _fails(runner.run_once), "a step that polled and failed")
            with engine.begin() as conn:  # … and is back
                conn.execute(text('ALTER TABLE "rm_offsets_away" RENAME TO "rm_offsets"'))
            wait_for(lambda: read_models(settings)["tickets"].get("T-1") == (2, "acknowledged")
                     or (runner.run_once() and False), "both events in the read model")
            assert runner.projector.parked() == []
        finally:
            runner.close()
            producer.close()


def _stepped(runner: KafkaProjectionRunner) -> bool:
    runner.run_once()
    return True


def _fails(step: Any) -> bool:
    """Run one step; True if it raised (after polling something)."""
    try:
        step()
    except OperationalError:
        return True
    return False


def test_a_backfill_published_to_a_running_serve_gets_its_timers_at_their_instants(
    settings: Settings, topics: Topics, client: CommandClient, tmp_path: Path
) -> None:
    """Commands from two days ago reach a running serve: the breaches that fell due in
    between are recorded at their due instants, in order, before the later commands —
    the history an offline `apply` of the same commands gives."""
    comment_at, ack_at = T0 + timedelta(days=2), T0 + timedelta(days=2, minutes=1)
    backfill = [("create_ticket", ("cust-1", "customer"), create_payload(), T0),
                ("add_comment", ("cust-1", "customer"), {"body": "still down"}, comment_at),
                ("acknowledge", ("agent-1", "agent"), {}, ack_at)]
    frozen = replace(settings, clock=SystemClock.frozen(ack_at))
    with build_app(Settings(db=f"sqlite:///{tmp_path / 'offline.db'}"),
                   clock=frozen.clock) as offline:
        for n, (type_, (actor, role), payload, at) in enumerate(backfill):
            offline.apply(command_line(f"B-{n}", type_, "B-1", at, role, payload,
                                       actor=actor))
        Timers(offline).fire_until(ack_at)
        expected = [(e["type"], e["occurred_at"], e["data"])
                    for e in offline.event_log.ticket_events("B-1")]
    timer_instants = [at for type_, at, _ in expected if type_ == "SlaBreached"]
    assert timer_instants and max(timer_instants) < comment_at.isoformat()  # the premise
    running = Pipeline(frozen).start()
    try:
        for n, (type_, actor, payload, at) in enumerate(backfill):
            client.send(type_, tenant="personalysispro", ticket_id="B-1", actor=actor,
                        payload=payload, message_id=f"B-{n}", occurred_at=at)
        client.flush()
        with build_app(frozen) as app:
            wait_for(lambda: handled(app, ["B-2"]), "the backfill handled")
            assert {outcome(app, f"B-{n}").status for n in range(3)} == {"accepted"}  # type: ignore[union-attr]
            live = [(e["type"], e["occurred_at"], e["data"])
                    for e in app.event_log.ticket_events("B-1")]
    finally:
        running.stop()
    assert live == expected
    assert [t for t, _, _ in live][-2:] == ["CommentAdded", "TicketAcknowledged"]
