"""Fixtures for a real single-node Kafka broker (KRaft), started without Docker.

The broker runs from the jar cache of ``ticketflow.tools.kafka_broker`` (fetched once with Maven,
see ticketflow/tools/broker/pom.xml) on free loopback ports, with a throw-away data dir, for the
whole session.
Registered for every test tier by tests/conftest.py.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ticketflow.tools.kafka_broker import KafkaBrokerError, LocalKafka


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_local_kafka(data_dir: Path, timeout: float = 180.0,
                      sasl_users: dict[str, str] | None = None) -> LocalKafka:
    """Start a LocalKafka on free ports; fail the test (never skip) if it cannot start."""
    port, controller_port = free_ports(2)
    broker = LocalKafka(port=port, controller_port=controller_port, data_dir=data_dir,
                        sasl_users=sasl_users)
    try:
        broker.start(timeout=timeout)
    except KafkaBrokerError as exc:
        pytest.fail(f"could not start the local Kafka broker: {exc}", pytrace=False)
    return broker


@pytest.fixture(scope="session")
def local_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """The session's LocalKafka broker (started once, stopped at the end)."""
    broker = start_local_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.stop()


#: The users of the SASL broker: its super user, the engine, a service that may send
#: commands, one that may read events, and one that may do nothing.
SASL_USERS = {"admin": "admin-secret", "ticketflow": "engine-secret",
              "email-gateway": "gateway-secret", "reporting": "reporting-secret",
              "intruder": "intruder-secret"}


@pytest.fixture(scope="session")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A second session broker: SASL_PLAINTEXT (PLAIN, `SASL_USERS`) with ACLs enforced
    (StandardAuthorizer, nothing allowed without an ACL; `admin` is the super user)."""
    broker = start_local_kafka(tmp_path_factory.mktemp("kafka-sasl"), sasl_users=SASL_USERS)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka: LocalKafka) -> str:
    """``"127.0.0.1:PORT"`` of a running single-node Kafka broker for this test session."""
    return local_kafka.bootstrap


@pytest.fixture
def start_extra_kafka(tmp_path: Path) -> Iterator[Callable[[], LocalKafka]]:
    """Start further brokers (each costs a JVM start); each is stopped after the test."""
    started: list[LocalKafka] = []

    def start() -> LocalKafka:
        broker = start_local_kafka(tmp_path / f"kafka-{len(started)}")
        started.append(broker)
        return broker

    try:
        yield start
    finally:
        for broker in started:
            broker.stop()


@pytest.fixture
def free_port() -> int:
    """A loopback port that is free right now."""
    return free_ports(1)[0]
