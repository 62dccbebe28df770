"""Signed checkpoints out to Kafka (SPEC §13): `ticketflow checkpoint` publishes each
one to `support.checkpoints` when Kafka is configured, so that a copy leaves the
machine the moment it is signed. Kept forever, never compacted; the key is the signer's
key id, the value the checkpoint's text (docs/security.md), a header its tree size."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.producer import KafkaProducer

from ticketflow.checkpoints import Checkpoint
from ticketflow.producers.relay import producer_config
from ticketflow.producers.topics import RETAIN_FOREVER
from ticketflow.settings import options_for

CHECKPOINTS = "support.checkpoints"
#: The header holding the checkpoint's tree size (its number of leaves), in decimal.
SIZE_HEADER = "size"
SEND_TIMEOUT_SECONDS = 30.0


def publish_checkpoint(client_config: dict[str, Any], head: Checkpoint,
                       prefix: str = "") -> tuple[str, int, int]:
    """Send one checkpoint and wait for the broker's acknowledgement: (topic,
    partition, offset). The topic is made (one partition) if it is missing."""
    topic = prefix + CHECKPOINTS
    _ensure(client_config, topic)
    producer = KafkaProducer(**producer_config(options_for(KafkaProducer, client_config)))
    try:
        sent = producer.send(topic, key=head.key_id.encode("ascii"),
                             value=head.text().encode("ascii"),
                             headers=[(SIZE_HEADER, str(head.size).encode("ascii"))])
        metadata = sent.get(timeout=SEND_TIMEOUT_SECONDS)
    finally:
        producer.close()
    return topic, metadata.partition, metadata.offset


def _ensure(client_config: dict[str, Any], topic: str) -> None:
    admin = KafkaAdminClient(**options_for(KafkaAdminClient, client_config))
    try:
        if topic not in set(admin.list_topics()):
            with suppress(TopicAlreadyExistsError):  # another process made it first
                admin.create_topics([NewTopic(topic, 1, 1, topic_configs=dict(RETAIN_FOREVER))])
    finally:
        admin.close()
