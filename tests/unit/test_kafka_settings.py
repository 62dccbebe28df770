"""SASL/TLS pass-through: every TICKETFLOW_KAFKA_OPT_<NAME> reaches every kafka-python
client ticketflow builds, typed as kafka-python expects; a name no client knows is
refused. The clients are real kafka-python objects, built without a broker (a given
api_version means nothing connects until first use)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from ticketflow.consumers.commands import consumer_config
from ticketflow.domain.errors import Forbidden
from ticketflow.producers.relay import producer_config
from ticketflow.producers.sdk import CommandClient
from ticketflow.settings import (
    KAFKA_OPTION_PREFIX,
    KafkaLogin,
    Settings,
    SettingsError,
    kafka_client_config,
    kafka_login_from_env,
    options_for,
)

SASL_SSL = {
    "SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-512",
    "SASL_PLAIN_USERNAME": "ticketflow", "SASL_PLAIN_PASSWORD": "s3cret",
    "SSL_CAFILE": "/etc/ssl/kafka-ca.pem", "SSL_CHECK_HOSTNAME": "false",
    "REQUEST_TIMEOUT_MS": "45000", "API_VERSION": "3.6", "MAX_POLL_RECORDS": "100",
}
EXPECTED = {
    "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "ticketflow", "sasl_plain_password": "s3cret",
    "ssl_cafile": "/etc/ssl/kafka-ca.pem", "ssl_check_hostname": False,
    "request_timeout_ms": 45000, "api_version": (3, 6),
}
UNREACHABLE = "127.0.0.1:1"


@pytest.fixture
def sasl_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in SASL_SSL.items():
        monkeypatch.setenv(KAFKA_OPTION_PREFIX + name, value)
    yield kafka_client_config(UNREACHABLE)


def carries_every_option(config: dict[str, Any]) -> bool:
    return all(config.get(key) == value for key, value in EXPECTED.items())


def test_options_are_typed_as_kafka_python_expects(sasl_env: dict[str, Any]) -> None:
    assert carries_every_option(sasl_env)
    assert sasl_env["max_poll_records"] == 100
    assert sasl_env["bootstrap_servers"] == [UNREACHABLE]


def test_every_client_kind_accepts_its_share_and_keeps_the_security_options(
    sasl_env: dict[str, Any],
) -> None:
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        share = options_for(client, sasl_env)
        assert carries_every_option(share), client.__name__
        assert set(share) <= set(client.DEFAULT_CONFIG)
    assert "max_poll_records" not in options_for(KafkaProducer, sasl_env)


def test_the_relay_and_dead_letter_producer_is_built_with_them(sasl_env: dict[str, Any]) -> None:
    producer = KafkaProducer(**producer_config(options_for(KafkaProducer, sasl_env)))
    try:
        assert carries_every_option(producer.config)
        assert producer.config["enable_idempotence"] is True
    finally:
        producer.close(timeout=1)


def test_the_command_consumer_is_built_with_them(sasl_env: dict[str, Any]) -> None:
    consumer = KafkaConsumer(**consumer_config(options_for(KafkaConsumer, sasl_env)))
    try:
        assert carries_every_option(consumer.config)
    finally:
        consumer.close()


def test_the_sdk_producer_is_built_with_them_and_drops_consumer_only_options(
    sasl_env: dict[str, Any],
) -> None:
    options = {key: value for key, value in sasl_env.items() if key != "bootstrap_servers"}
    with CommandClient(UNREACHABLE, **options) as client:
        assert carries_every_option(client.producer.config)
        assert client.producer.config["bootstrap_servers"] == [UNREACHABLE]


@pytest.mark.parametrize("name, value, fragment", [
    ("SECURITY_PROTOCLO", "SASL_SSL", "kafka-python has no option 'security_protoclo'"),
    ("SSL_CHECK_HOSTNAME", "maybe", "ssl_check_hostname takes true or false"),
    ("REQUEST_TIMEOUT_MS", "30s", "request_timeout_ms takes a whole number"),
    ("API_VERSION", "latest", "api_version takes a version like 3.6"),
    ("SSL_CONTEXT", "default", "ssl_context takes a Python object"),
])
def test_an_unusable_option_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(KAFKA_OPTION_PREFIX + name, value)
    with pytest.raises(SettingsError) as refused:
        kafka_client_config(UNREACHABLE)
    assert fragment in str(refused.value)
    assert KAFKA_OPTION_PREFIX + name in str(refused.value)


def test_a_tenant_client_refuses_a_command_for_another_tenant() -> None:
    with CommandClient(UNREACHABLE, tenant="growgrebuddy", api_version=(3, 6)) as client:
        with pytest.raises(Forbidden) as refused:
            client.send("acknowledge", tenant="personalysispro", ticket_id="T-1",
                        actor=("agent-7", "agent"), payload={})
        assert refused.value.code == "forbidden"
        assert "tenant 'growgrebuddy' only" in refused.value.message


def test_the_sdk_sends_an_article_command_keyed_by_its_article_id() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    with CommandClient(UNREACHABLE, api_version=(3, 6)) as client:
        client.producer.send = lambda topic, key, value, headers: sent.append(  # type: ignore[method-assign]
            (topic, key, value))
        client.send("create_article", tenant="personalysispro", article_id="KB-1",
                    actor=("agent-7", "agent"), payload={"title": "Exports", "body": "Split"},
                    message_id="m-kb-1")
    (topic, key, value), = sent
    assert (topic, key) == ("support.commands", b"KB-1")
    assert json.loads(value)["article_id"] == "KB-1"


LOGIN = {"TICKETFLOW_KAFKA_SASL_USERNAME": "ticketflow",
         "TICKETFLOW_KAFKA_SASL_PASSWORD": "engine-secret"}


def test_a_sasl_login_from_the_environment_reaches_the_clients_and_hides_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in LOGIN.items():
        monkeypatch.setenv(name, value)
    settings = Settings(kafka=UNREACHABLE)
    config = settings.kafka_config()
    assert {key: config[key] for key in ("security_protocol", "sasl_mechanism",
                                         "sasl_plain_username", "sasl_plain_password")} == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "ticketflow", "sasl_plain_password": "engine-secret"}
    assert "engine-secret" not in repr(settings) and "engine-secret" not in str(config)
    assert config["sasl_plain_password"].encode() == b"engine-secret"  # what SASL sends
    with CommandClient(UNREACHABLE, api_version=(3, 6), **{
            k: v for k, v in config.items() if k != "bootstrap_servers"}) as client:
        assert client.producer.config["sasl_plain_username"] == "ticketflow"


def test_a_password_file_and_the_mechanism_and_protocol_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    (tmp_path / "password").write_text("from-a-file\n")
    monkeypatch.setenv("TICKETFLOW_KAFKA_SASL_USERNAME", "ticketflow")
    monkeypatch.setenv("TICKETFLOW_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("TICKETFLOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TICKETFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    assert kafka_login_from_env() == KafkaLogin("ticketflow", "from-a-file",
                                                "SCRAM-SHA-512", "SASL_SSL")


@pytest.mark.parametrize("env, fragment", [
    ({"TICKETFLOW_KAFKA_SASL_USERNAME": "ticketflow"}, "needs both"),
    ({"TICKETFLOW_KAFKA_SASL_PASSWORD": "x"}, "needs both"),
    ({**LOGIN, "TICKETFLOW_KAFKA_SASL_MECHANISM": "GSSAPI"}, "use one of PLAIN"),
    ({**LOGIN, "TICKETFLOW_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "needs SASL_PLAINTEXT"),
    ({**LOGIN, "TICKETFLOW_KAFKA_SASL_PASSWORD_FILE": "/nowhere"}, "not both"),
    ({**LOGIN, KAFKA_OPTION_PREFIX + "SASL_PLAIN_PASSWORD": "x"},
     "TICKETFLOW_KAFKA_OPT_SASL_PLAIN_PASSWORD: set by the SASL login"),
])
def test_an_incomplete_or_contradictory_login_is_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        kafka_client_config(UNREACHABLE)
    assert fragment in str(refused.value)
    assert "engine-secret" not in str(refused.value)


@pytest.mark.parametrize("text, required", [("1", True), ("yes", True), ("0", False),
                                            ("", False)])
def test_require_keys_is_a_flag(monkeypatch: pytest.MonkeyPatch, text: str,
                                required: bool) -> None:
    monkeypatch.setenv("TICKETFLOW_REQUIRE_KEYS", text)
    assert Settings.from_env().require_keys is required


def test_an_unreadable_require_keys_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_REQUIRE_KEYS", "always")
    with pytest.raises(SettingsError, match="TICKETFLOW_REQUIRE_KEYS='always'"):
        Settings.from_env()
