"""Bad input and tenant clients through a real broker: malformed messages written raw to
support.commands land in support.dead-letter with their bytes and the stable code;
a tenant's SDK client sends only that tenant's commands and sees only its outcomes; and
the hostile senders' table (tests/support/attacks.py), each attack on the victim's
partition, is refused, kept bounded on the topic and in the store, and costs nothing."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from kafka.producer import KafkaProducer

from tests.support.attacks import (
    ATTACKS,
    GIVEN,
    NOW,
    PP,
    VICTIM,
    Attack,
    dead_letter,
    history,
    only_the_victims_next_event,
)
from tests.support.builders import T0, command_line, create_payload
from tests.support.pipeline import Pipeline, Records, read_topic
from tests.support.waiting import wait_for
from ticketflow.bootstrap import build_app
from ticketflow.clock import SystemClock
from ticketflow.domain.errors import Forbidden
from ticketflow.domain.receipt import KEEP_BYTES
from ticketflow.producers.sdk import CommandClient, outcome
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings, kafka_client_config
from ticketflow.verification import verify_store

ACK = json.loads(command_line("bad-0", "acknowledge", "KB-1", T0 + timedelta(minutes=1),
                              "agent", {}))
MALFORMED = {
    b"[" * 50_000: None,  # nested too deeply: no id, known by its digest
    json.dumps({**ACK, "message_id": "bad-1", "schema_version": 2}).encode(): "bad-1",
    json.dumps({**ACK, "message_id": "bad-2", "occurred_at": "2026-11-16T14:01:00"}).encode():
        "bad-2",
    json.dumps({**ACK, "message_id": "bad-3", "occurred_at": 1_790_000_000}).encode(): "bad-3",
    json.dumps({**ACK, "message_id": "bad-4", "tenant": "acme"}).encode(): "bad-4",
    json.dumps({**ACK, "message_id": "bad-\ud800"}).encode(): None,
}


def test_malformed_messages_on_the_commands_topic_are_dead_lettered_with_their_bytes(
    settings: Settings, topics: Topics, pipeline: Pipeline, client: CommandClient,
) -> None:
    client.send("create_ticket", tenant="personalysispro", ticket_id="KB-1",
                actor=("c", "customer"), payload=create_payload(), message_id="ok-1",
                occurred_at=T0)
    client.flush()
    raw = KafkaProducer(bootstrap_servers=settings.kafka)
    for value in MALFORMED:
        raw.send(topics.commands, key=b"KB-1", value=value)
    raw.flush()
    raw.close()
    letters = read_topic(settings.kafka or "", topics.dead_letter, expected=len(MALFORMED))
    assert {r["value"]: r["headers"]["message_id"].decode() or None for r in letters} == \
        MALFORMED
    assert {r["headers"]["error_code"] for r in letters} == {b"invalid_message"}
    with build_app(settings) as app:
        # the timers may fire
        causes = {e["causation_id"] for e in app.event_log.ticket_events("KB-1")}
        assert "ok-1" in causes and not any(c.startswith("bad-") for c in causes)
        assert len(list(app.event_log.rejected())) == len(MALFORMED)


def test_a_tenant_client_sends_and_sees_only_its_own_tenant(
    settings: Settings, topics: Topics, pipeline: Pipeline,
) -> None:
    with CommandClient(settings.kafka or "", topics, tenant="growgrebuddy") as grow, \
            CommandClient(settings.kafka or "", topics, tenant="personalysispro") as pro:
        grow.send("create_ticket", tenant="growgrebuddy", ticket_id="KG-1",
                  actor=("c", "customer"), payload=create_payload("growgrebuddy"),
                  message_id="grow-1", occurred_at=T0)
        pro.send("create_ticket", tenant="personalysispro", ticket_id="KP-1",
                 actor=("c", "customer"), payload=create_payload(), message_id="pro-1",
                 occurred_at=T0)
        with pytest.raises(Forbidden):
            grow.send("acknowledge", tenant="personalysispro", ticket_id="KP-1",
                      actor=("a", "agent"), payload={}, message_id="grow-2")
        grow.flush()
        pro.flush()
        with build_app(settings) as app:
            wait_for(lambda: grow.outcome(app, "grow-1") and pro.outcome(app, "pro-1"),
                     "both creations handled")
            assert grow.outcome(app, "pro-1") is None
            assert pro.outcome(app, "grow-1") is None
            assert app.event_log.receipts_of("grow-2") == []  # refused before it left the process


def test_another_tenant_can_neither_block_nor_stall_a_ticket_over_kafka(
    settings: Settings, topics: Topics, pipeline: Pipeline, client: CommandClient,
) -> None:
    """Tenant B sends, keyed like tenant A's ticket (same partition): garbage under A's
    next message id, a forged breach under A's timer id, its own ticket with A's id.
    A's commands are all accepted in order behind them, nothing is redelivered forever,
    and B's refusals are dead-lettered."""
    due = "2026-11-16T17:00:00+00:00"  # KT-1's first-response breach (see test_timers.py)
    raw = KafkaProducer(bootstrap_servers=settings.kafka)
    for value in (
        json.dumps({"message_id": "a-2", "tenant": "growgrebuddy", "ticket_id": "KT-1"}),
        json.dumps({**json.loads(command_line(
            f"timer:KT-1:breach:first_response:{due}", "record_sla_breach", "KT-1",
            T0 + timedelta(minutes=10), "system", {"clock": "first_response", "due_at": due},
            tenant="growgrebuddy"))}),
    ):
        raw.send(topics.commands, key=b"KT-1", value=value.encode())
    raw.flush()
    raw.close()
    client.send("create_ticket", tenant="growgrebuddy", ticket_id="KT-1",
                actor=("c", "customer"), payload=create_payload("growgrebuddy"),
                message_id="a-1", occurred_at=T0)
    for n, (type_, actor, payload, minutes) in enumerate([
        ("create_ticket", ("c", "customer"), create_payload(), 0),
        ("add_comment", ("c", "customer"), {"body": "hello"}, 30),
        ("acknowledge", ("a", "agent"), {}, 31),
    ], start=1):
        client.send(type_, tenant="personalysispro", ticket_id="KT-1", actor=actor,
                    payload=payload, message_id=f"a-{n}",
                    occurred_at=T0 + timedelta(minutes=minutes))
    client.flush()
    with build_app(settings) as app:
        wait_for(lambda: outcome(app, "a-3", tenant="personalysispro"), "tenant A's commands")
        assert [outcome(app, f"a-{n}", tenant="personalysispro").status  # type: ignore[union-attr]
                for n in (1, 2, 3)] == ["accepted"] * 3
        history = [e["type"] for e in app.event_log.ticket_events("KT-1", tenant="personalysispro")]
        assert history == ["TicketCreated", "CommentAdded", "TicketAcknowledged"]
        assert app.load_ticket("KT-1", tenant="growgrebuddy").version == 1
    letters = read_topic(settings.kafka or "", topics.dead_letter, expected=2)
    assert sorted(r["headers"]["error_code"].decode() for r in letters) == \
        ["forbidden", "invalid_message"]


@dataclass(frozen=True)
class World:
    """A running pipeline whose store holds GIVEN, shared by the attacks (each checks
    what changed from just before it), and a raw producer."""

    settings: Settings
    topics: Topics
    producer: KafkaProducer

    def send(self, *values: bytes) -> None:
        for value in values:  # all on the victim's partition, in order
            self.producer.send(self.topics.commands, key=VICTIM.encode(), value=value)
        self.producer.flush()

    def letters_keeping(self, line: bytes, timeout: float = 60.0) -> Records:
        """support.dead-letter's records keeping `line` (whole, or its head), once one is
        there."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in read_topic(self.settings.kafka or "",
                                                     self.topics.dead_letter, expected=1,
                                                     timeout=5)
                     if record["value"] == line[:KEEP_BYTES]]
            if found or time.monotonic() > deadline:
                return found


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = Settings(db=f"sqlite:///{tmp_path_factory.mktemp('attacks') / 'store.db'}",
                        kafka=kafka_bootstrap, topic_prefix=prefix,
                        clock=SystemClock.starting_at(NOW))
    topics = Topics.named(prefix)
    ensure_topics(kafka_client_config(settings.kafka), topics, partitions=3)
    running = Pipeline(settings).start()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        sent = [json.loads(line) for line in GIVEN]
        for line, document in zip(GIVEN, sent, strict=True):
            producer.send(topics.commands, key=document["ticket_id"].encode(), value=line)
        producer.flush()
        with build_app(settings) as app:

            def handled() -> list[str] | None:
                found = [outcome(app, d["message_id"], tenant=d["tenant"]) for d in sent]
                return [o.status for o in found if o] if all(found) else None

            assert wait_for(handled, "the given world") == ["accepted"] * len(GIVEN)
        yield World(settings, topics, producer)
    finally:
        producer.close()
        running.stop()


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: f"{attack.item}-{attack.name}")
def test_an_attack_on_the_commands_topic_is_refused_kept_bounded_and_costs_nothing(
    attack: Attack, world: World,
) -> None:
    engine = engine_for(world.settings.db)
    try:
        with build_app(world.settings) as app:
            before = history(app)
            world.send(attack.line, attack.then)
            then = wait_for(lambda: outcome(app, attack.then_id, tenant=PP),
                            "the victim's next command, behind the attack")
            assert then.status == "accepted"  # not stalled, blocked or taken
            dead_letter(app, attack)
            assert only_the_victims_next_event(before, history(app), attack)
            assert verify_store(app, read_models=engine) == []
    finally:
        engine.dispose()
    letters = world.letters_keeping(attack.line)
    assert len({record["headers"]["source"] for record in letters}) == 1, letters
    headers = letters[0]["headers"]
    assert headers["error_code"] == attack.code.encode()
    cut = len(attack.line) > KEEP_BYTES
    assert (headers.get("original_length"), headers.get("original_sha256")) == (
        (str(len(attack.line)).encode(), hashlib.sha256(attack.line).hexdigest().encode())
        if cut else (None, None))
