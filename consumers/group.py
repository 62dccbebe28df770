"""What the two consumer groups (commands, projections) share in joining their topic."""

from __future__ import annotations

import time

from kafka.consumer import KafkaConsumer


def subscribe_when_known(consumer: KafkaConsumer, topic: str, timeout: float = 60.0) -> None:
    """Subscribe once this consumer's own metadata knows the topic's partitions.

    A group leader assigns partitions from its metadata cache; if the topic is not in
    it yet (just created), the assignment is empty, and kafka-python 3.0 does not
    rejoin when the partitions show up later: the consumer would idle forever.
    """
    deadline = time.monotonic() + timeout
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no partitions after {timeout:.0f} s;"
                               " create it (ticketflow serve does) and check the broker")
        time.sleep(0.2)
    consumer.subscribe([topic])
