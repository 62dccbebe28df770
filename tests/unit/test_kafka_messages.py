"""The Kafka record shapes and settings, without a broker."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.support.builders import Story
from ticketflow.consumers.commands import dead_letter
from ticketflow.domain.chain import find_break
from ticketflow.producers.relay import event_message, producer_config
from ticketflow.producers.topics import RETAIN_FOREVER, Topics
from ticketflow.settings import SettingsError, kafka_client_config


def test_an_event_record_is_keyed_by_ticket_with_type_headers_and_the_stored_envelope() -> None:
    events = Story().do("acknowledge").ticket.pending_events
    envelopes = [event.envelope() for event in events]  # type: ignore[attr-defined]
    record = event_message(envelopes[-1])
    assert record["key"] == b"T-1"
    assert dict(record["headers"]) == {"type": b"TicketAcknowledged", "schema_version": b"1",
                                       "event_id": envelopes[-1]["event_id"].encode()}
    assert json.loads(record["value"]) == envelopes[-1]
    decoded = [json.loads(event_message(envelope)["value"]) for envelope in envelopes]
    assert find_break(decoded) is None  # what consumers receive still verifies


def test_a_dead_letter_keeps_the_original_bytes_and_carries_the_reason() -> None:
    record = SimpleNamespace(topic="support.commands", partition=2, offset=41, key=b"T-9",
                             value=b"\xff raw", headers=[])
    letter = dead_letter(record, {"code": "invalid_message", "message": "not UTF-8"}, None)  # type: ignore[arg-type]
    assert (letter["key"], letter["value"]) == (b"T-9", b"\xff raw")
    assert dict(letter["headers"]) == {"error_code": b"invalid_message",
                                       "error_message": b"not UTF-8", "message_id": b"",
                                       "source": b"support.commands/2/41"}


def test_the_relay_producer_is_idempotent_and_waits_for_all_replicas() -> None:
    config = producer_config({"bootstrap_servers": ["b:9092"]})
    assert config["enable_idempotence"] is True and config["acks"] == "all"
    assert config["max_in_flight_requests_per_connection"] <= 5


def test_user_options_tune_the_batching_but_never_weaken_the_delivery_guarantees() -> None:
    config = producer_config({"bootstrap_servers": ["b:9092"], "linger_ms": 50,
                              "acks": 1, "enable_idempotence": False})
    assert config["linger_ms"] == 50
    assert config["enable_idempotence"] is True and config["acks"] == "all"


def test_events_and_dead_letters_are_kept_forever_and_never_compacted() -> None:
    specs = Topics.named("staging.").specs()
    assert set(specs) == {"staging.support.commands", "staging.support.ticket-events",
                          "staging.support.dead-letter", "staging.support.notifications"}
    assert specs["staging.support.ticket-events"] == RETAIN_FOREVER
    assert RETAIN_FOREVER["retention.ms"] == "-1"
    assert RETAIN_FOREVER["cleanup.policy"] == "delete"


def test_security_settings_pass_through_to_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_KAFKA_OPT_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TICKETFLOW_KAFKA_OPT_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TICKETFLOW_KAFKA_OPT_REQUEST_TIMEOUT_MS", "15000")
    config = kafka_client_config("k1:9093,k2:9093")
    assert config == {"bootstrap_servers": ["k1:9093", "k2:9093"],
                      "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                      "request_timeout_ms": 15000}


def test_no_kafka_address_says_how_to_get_one() -> None:
    with pytest.raises(SettingsError, match="ticketflow kafka start"):
        kafka_client_config(None)
