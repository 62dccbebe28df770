"""The local Kafka broker tooling (ticketflow.tools.kafka_broker) against a real broker, no
mocks.

kafka-python is imported from its submodules (kafka.admin, kafka.consumer, ...): with the
repository's kafka/ folder (the broker pom) at the root, ruff's isort and mypy take a bare
`from kafka import X` for this repository's first-party namespace package.
"""

from __future__ import annotations

import argparse
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer import KafkaConsumer
from kafka.producer import KafkaProducer
from kafka.structs import TopicPartition

from tests.support.waiting import wait_for
from ticketflow.tools.kafka_broker import LocalKafka, add_kafka_commands


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ticketflow-test")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ticketflow")
    add_kafka_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_broker_answers_metadata(kafka_bootstrap: str) -> None:
    admin = _admin(kafka_bootstrap)
    try:
        cluster = admin.describe_cluster()
        admin.list_topics()
    finally:
        admin.close()
    brokers = cluster["brokers"]
    assert len(brokers) == 1
    assert brokers[0]["broker_id"] == 1
    assert f"{brokers[0]['host']}:{brokers[0]['port']}" == kafka_bootstrap
    assert cluster["cluster_id"]


def test_create_topic_produce_and_consume(kafka_bootstrap: str) -> None:
    topic = f"test.local-kafka.{uuid.uuid4().hex[:8]}"
    admin = _admin(kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        # the controller created it; the broker's metadata cache learns it a moment later
        wait_for(lambda: topic in admin.list_topics(), f"topic {topic} in the metadata")
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        sent = [
            producer.send(topic, key=b"T-1001", value=f"event-{i}".encode()).get(timeout=30)
            for i in range(3)
        ]
    finally:
        producer.close()
    assert len({meta.partition for meta in sent}) == 1  # same key, same partition
    assert [meta.offset for meta in sent] == [0, 1, 2]

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < 3 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                received.extend((r.key, r.value) for r in records)
        consumer.commit()
        partition = TopicPartition(topic, sent[0].partition)
        assert consumer.committed(partition) == 3
    finally:
        consumer.close()
    assert received == [(b"T-1001", b"event-0"), (b"T-1001", b"event-1"), (b"T-1001", b"event-2")]


def test_broker_default_partitions(kafka_bootstrap: str) -> None:
    topic = f"test.defaults.{uuid.uuid4().hex[:8]}"
    admin = _admin(kafka_bootstrap)
    try:
        # -1 asks the broker for its defaults: num.partitions=6, replication factor 1.
        admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1)])
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(described["partitions"]) == 6
    assert all(p["replica_nodes"] == [1] for p in described["partitions"])


def test_start_when_running_returns_the_running_broker(local_kafka: LocalKafka) -> None:
    pid = local_kafka.pid()
    assert pid is not None
    again = LocalKafka(
        port=local_kafka.port,
        controller_port=local_kafka.controller_port,
        data_dir=local_kafka.data_dir,
        echo=None,
    )
    assert again.start(timeout=30) == pid  # the running broker, not a second one
    assert again.status()


def test_cli_status(local_kafka: LocalKafka, tmp_path: Path, free_port: int) -> None:
    running = ["kafka", "status", "--port", str(local_kafka.port)]
    running += ["--controller-port", str(local_kafka.controller_port)]
    running += ["--data-dir", str(local_kafka.data_dir)]
    assert _cli(running) == 0
    assert _cli(["kafka", "status", "--port", str(free_port), "--data-dir", str(tmp_path)]) == 1
    assert _cli(["kafka", "stop", "--port", str(free_port), "--data-dir", str(tmp_path)]) == 0


def test_stop_then_status_and_restart_keeps_data(
    start_extra_kafka: Callable[[], LocalKafka],
) -> None:
    """A second, separate broker: stop() ends it, status() says so, a restart keeps the data."""
    broker = start_extra_kafka()
    assert broker.status()
    meta = (broker.log_dir / "meta.properties").read_text()
    topic = "test.survives-restart"
    admin = _admin(broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()

    assert broker.stop() is True
    assert not broker.status()
    assert broker.pid() is None
    assert not broker.pid_file.exists()
    assert not _port_open(broker.port)
    assert broker.stop() is False  # stopping a stopped broker is a no-op

    broker.start(timeout=180)  # same data dir: no reformat, same cluster
    assert broker.status()
    assert (broker.log_dir / "meta.properties").read_text() == meta
    admin = _admin(broker.bootstrap)
    try:
        assert topic in admin.list_topics()
    finally:
        admin.close()
    broker.stop()
    assert not broker.status()
