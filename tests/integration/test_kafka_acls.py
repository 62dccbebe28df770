"""Who may write support.commands is the broker's business (SPEC §8), on a real broker
with SASL/PLAIN and the KRaft authorizer denying whatever no ACL allows: a service
granted Write on the commands topic publishes, one without is refused
TopicAuthorizationFailed; the engine runs the whole pipeline with only the ACLs
`ticketflow.producers.acls` gives it (the set docs/security.md shows), and never logs
its password."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from tests.support.builders import T0, create_payload
from tests.support.kafka import SASL_USERS
from tests.support.pipeline import STORY_CLOCK, Pipeline, read_topic
from tests.support.waiting import wait_for
from ticketflow.bootstrap import build_app
from ticketflow.clock import SystemClock
from ticketflow.producers.acls import acls, grant
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.settings import KafkaLogin, Settings
from ticketflow.tools.kafka_broker import LocalKafka

SEND_TIMEOUT = 30


@pytest.fixture
def prefix() -> str:
    return f"a{uuid.uuid4().hex[:8]}."


def test_a_service_with_write_on_the_commands_topic_publishes_and_one_without_is_refused(
    sasl_kafka: LocalKafka, prefix: str,
) -> None:
    topics = Topics.named(prefix)
    admin = {"bootstrap_servers": sasl_kafka.bootstrap, **sasl_kafka.client_options()}
    ensure_topics(admin, topics, partitions=1)
    grant(admin, acls("sender", "User:email-gateway", topics))

    with CommandClient(sasl_kafka.bootstrap, topics,
                       **sasl_kafka.client_options("email-gateway")) as gateway:
        gateway.send("create_ticket", tenant="personalysispro", ticket_id="AC-1",
                     actor=("c", "customer"), payload=create_payload(), message_id="gw-1",
                     occurred_at=T0)
    written = read_topic(sasl_kafka.bootstrap, topics.commands, expected=1,
                         **sasl_kafka.client_options())
    assert [r["key"] for r in written] == [b"AC-1"]

    intruder = KafkaProducer(bootstrap_servers=sasl_kafka.bootstrap, max_block_ms=15_000,
                             **sasl_kafka.client_options("intruder"))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            intruder.send(topics.commands, key=b"AC-1", value=b"{}").get(SEND_TIMEOUT)
    finally:
        intruder.close(timeout=5)
    # Write on the commands is all the gateway has: the other topics are hidden from it
    assert _visible(sasl_kafka, "email-gateway", topics) == {topics.commands}
    assert _visible(sasl_kafka, "intruder", topics) == set()
    assert _visible(sasl_kafka, "admin", topics) == {
        topics.commands, topics.ticket_events, topics.dead_letter}
    assert len(read_topic(sasl_kafka.bootstrap, topics.commands, expected=2, timeout=5,
                          **sasl_kafka.client_options())) == 1


def _visible(broker: LocalKafka, user: str, topics: Topics) -> set[str]:
    """The test's topics `user` can see (Describe, implied by Read and Write)."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             **broker.client_options(user))
    try:
        return {name for name in consumer.topics() if name.startswith(topics.commands[:10])}
    finally:
        consumer.close()


def test_a_wrong_password_does_not_connect(sasl_kafka: LocalKafka) -> None:
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=sasl_kafka.bootstrap, bootstrap_timeout_ms=5_000,
                         **{**sasl_kafka.client_options("email-gateway"),
                            "sasl_plain_password": "guess"}).list_topics()


def test_the_engine_runs_with_only_its_acls_and_never_logs_its_password(
    sasl_kafka: LocalKafka, prefix: str, sqlite_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ticketflow")
    caplog.set_level(logging.DEBUG, logger="kafka.admin.client")  # last: the handler's level
    topics = Topics.named(prefix)
    admin = {"bootstrap_servers": sasl_kafka.bootstrap, **sasl_kafka.client_options()}
    for role, user in (("engine", "ticketflow"), ("sender", "email-gateway"),
                       ("reader", "reporting")):
        grant(admin, acls(role, f"User:{user}", topics))
    settings = Settings(db=sqlite_url, kafka=sasl_kafka.bootstrap, topic_prefix=prefix,
                        clock=SystemClock.starting_at(STORY_CLOCK),
                        kafka_login=KafkaLogin("ticketflow", SASL_USERS["ticketflow"]))
    pipeline = Pipeline(settings).start()  # the engine creates its topics itself
    try:
        wait_for(lambda: _topics_exist(admin, topics), "the engine's topics")
        with CommandClient(sasl_kafka.bootstrap, topics,
                           **sasl_kafka.client_options("email-gateway")) as gateway:
            gateway.send("create_ticket", tenant="personalysispro", ticket_id="AC-2",
                          actor=("c", "customer"), payload=create_payload(),
                          message_id="gw-2", occurred_at=T0)
            gateway.send("resolve", tenant="personalysispro", ticket_id="AC-2",
                          actor=("c", "customer"), payload={"resolution": "done"},
                          message_id="gw-3", occurred_at=T0 + timedelta(minutes=1))
        events = read_topic(sasl_kafka.bootstrap, topics.ticket_events, expected=1,
                            **sasl_kafka.client_options("reporting"))
        assert [(r["key"], r["headers"]["type"]) for r in events] == \
            [(b"AC-2", b"TicketCreated")]
        letters = read_topic(sasl_kafka.bootstrap, topics.dead_letter, expected=1,
                             **sasl_kafka.client_options())
        assert [(r["headers"]["message_id"], r["headers"]["error_code"]) for r in letters] \
            == [(b"gw-3", b"forbidden")]
        with build_app(settings) as app:
            wait_for(lambda: app.event_log.outcome("gw-2"), "the command's outcome")
    finally:
        pipeline.stop()
    logged = caplog.text
    assert "'sasl_plain_username': 'ticketflow'" in logged  # kafka-python logs its options
    assert "batch_applied" in logged
    assert SASL_USERS["ticketflow"] not in logged
    assert SASL_USERS["ticketflow"] not in repr(settings)


def _topics_exist(admin: dict[str, object], topics: Topics) -> bool:
    client = KafkaAdminClient(**admin)
    try:
        return {topics.commands, topics.ticket_events, topics.dead_letter} <= \
            set(client.list_topics())
    finally:
        client.close()
