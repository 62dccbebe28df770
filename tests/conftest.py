"""Shared fixtures. PostgreSQL tests run against a real server started here; the Kafka
broker and the in-process pipeline fixtures live in tests/support/ and are registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.http import http_api  # noqa: F401 - a fixture, registered here
from tests.support.kafka import (  # noqa: F401 - fixtures, registered here for every tier
    free_port,
    kafka_bootstrap,
    local_kafka,
    sasl_kafka,
    start_extra_kafka,
)
from tests.support.pipeline import (  # noqa: F401 - fixtures, registered here for every tier
    client,
    pipeline,
    settings,
    topics,
)
from tests.support.postgres import PostgresCluster, create_database

# No test is timed (README, "Tests"): a property's examples take as long as the shared
# machine makes them; hypothesis' default 200 ms deadline per example would turn load
# into failures.
hypothesis_settings.register_profile("ticketflow", deadline=None)
hypothesis_settings.load_profile("ticketflow")

#: A test that asks for any of these talks to a real Kafka broker (marker `kafka`).
KAFKA_FIXTURES = frozenset({"kafka_bootstrap", "local_kafka", "sasl_kafka",
                            "start_extra_kafka"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    existing = os.environ.get("TICKETFLOW_TEST_POSTGRES")
    if existing:
        yield existing.rstrip("/")
        return
    cluster = PostgresCluster()
    cluster.start()
    _CLUSTERS.append(cluster)
    try:
        yield cluster.server_url
    finally:
        _CLUSTERS.remove(cluster)
        cluster.stop()


#: The cluster this session started (none when TICKETFLOW_TEST_POSTGRES names a server).
_CLUSTERS: list[PostgresCluster] = []


@pytest.fixture
def postgres_log(postgres_server: str) -> Path:
    """The server's log file (tests read what it logged meanwhile): only known for the
    cluster the tests start, so with TICKETFLOW_TEST_POSTGRES such a test fails, saying so."""
    if not _CLUSTERS:
        pytest.fail("this test reads the PostgreSQL server's log, known only for the cluster"
                    " the tests start: unset TICKETFLOW_TEST_POSTGRES", pytrace=False)
    return _CLUSTERS[0].log_file


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database for one test."""
    return create_database(postgres_server)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ticketflow.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once per event-store backend (contract tests)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))
