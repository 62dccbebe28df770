"""Notifications on the real broker (SPEC §10): the outbox relay publishes them to
support.notifications, keyed by ticket id, beside the events, exactly as recorded and
as a replay of the history gives them."""

from __future__ import annotations

import json
from dataclasses import replace

from kafka.producer import KafkaProducer

from tests.support.notifications import END, EXPECTED, done_when_story, listed
from tests.support.pipeline import read_topic
from ticketflow.bootstrap import build_app
from ticketflow.clock import SystemClock
from ticketflow.notifications import recorded, replayed
from ticketflow.producers.relay import OutboxRelay, producer_config
from ticketflow.producers.topics import Topics
from ticketflow.settings import Settings, kafka_client_config


def test_the_relay_publishes_the_done_when_notifications_to_their_topic(
    settings: Settings, topics: Topics,
) -> None:
    settings = replace(settings, clock=SystemClock.frozen(END))
    with build_app(settings) as app:
        done_when_story(app, live=True)
        producer = KafkaProducer(**producer_config(kafka_client_config(settings.kafka)))
        try:
            relay = OutboxRelay(app, producer, topic=topics.ticket_events,
                                notifications_topic=topics.notifications)
            while relay.run_once():
                pass
        finally:
            producer.close()
        stored = list(recorded(app.event_log))
        replay = replayed(app.event_log, app.policy_store, "personalysispro", "T-1", END)
        events = len(app.event_log.ticket_events("T-1"))
    published = read_topic(settings.kafka or "", topics.notifications, len(EXPECTED))
    documents = [json.loads(record["value"]) for record in published]
    assert {record["key"] for record in published} == {b"T-1"}  # one partition, in order
    assert listed(documents) == EXPECTED
    assert documents == stored == replay
    assert [record["headers"]["notification_id"].decode() for record in published] == \
        [d["notification_id"] for d in stored]
    # the events went their own way, none of them to the notifications topic
    assert len(read_topic(settings.kafka or "", topics.ticket_events, events)) == events
