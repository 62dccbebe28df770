"""Signed commands on a real broker (SPEC §8, TICKETFLOW_REQUIRE_KEYS=1): a command signed
with an active key is applied inside the key's bounds; an unsigned or badly signed one,
or one signed with an unknown, revoked or expired key, is dead-lettered
`unauthenticated`; one outside its key's tenant or roles `forbidden`, using up no id of
the tenant it names. And the shell example of docs/kafka.md (openssl + kcat) signs
exactly as the SDK does."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import murmur2
from kafka.producer import KafkaProducer

from tests.support.builders import T0, create_payload
from tests.support.cli import run
from tests.support.pipeline import STORY_CLOCK, Pipeline, read_topic
from tests.support.waiting import wait_for
from ticketflow.bootstrap import build_app
from ticketflow.domain.errors import NotFound
from ticketflow.keys import Keys, private_key_pem, sign
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
PRO, GROW = "personalysispro", "growgrebuddy"
#: A secret of the right shape whose key the store never issued.
UNKNOWN = "tfk_k00000000000000ff_" + base64.urlsafe_b64encode(bytes(range(32))).decode()[:43]


@pytest.fixture
def signed(settings: Settings, topics: Topics) -> Iterator[Settings]:
    """The engine with keys required, serving."""
    required = dataclasses.replace(settings, require_keys=True)
    running = Pipeline(required).start()
    yield required
    running.stop()


@pytest.fixture
def keys(settings: Settings) -> Iterator[Keys]:
    engine = engine_for(settings.db)
    yield Keys(engine, settings.clock)
    engine.dispose()


def document(message_id: str, type_: str, minutes: int, role: str, payload: dict[str, Any],
             tenant: str = PRO, ticket: str = "SG-1") -> bytes:
    return json.dumps({
        "message_id": message_id, "type": type_, "tenant": tenant, "ticket_id": ticket,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "actor": {"id": f"{role}-1", "role": role}, "payload": payload}).encode()


def test_only_commands_signed_with_an_active_key_and_inside_it_are_applied(
    signed: Settings, topics: Topics, keys: Keys,
) -> None:
    customer = keys.create(PRO, ["customer"])[1]
    agent = keys.create(PRO, ["agent"])[1]
    revoked = keys.create(PRO, ["customer", "agent"])[1]
    keys.revoke(revoked.split("_")[1])
    issued_before = Keys(keys.engine, lambda: STORY_CLOCK - timedelta(days=2))
    expired = issued_before.create(PRO, ["customer"],
                                   expires_at=STORY_CLOCK - timedelta(days=1))[1]
    other_tenant = keys.create(GROW, ["customer", "agent"])[1]

    with CommandClient(signed.kafka or "", topics, key=customer) as sdk:
        sdk.send("create_ticket", tenant=PRO, ticket_id="SG-1", actor=("customer-1", "customer"),
                 payload=create_payload(), message_id="s-1", occurred_at=T0)
    with build_app(signed) as app:
        wait_for(lambda: app.event_log.outcome("s-1", PRO), "the SDK's signed command")

    comment = {"body": "still broken", "visibility": "public"}
    sent = [
        (document("s-2", "acknowledge", 2, "agent", {}), []),  # unsigned
        (document("s-3", "acknowledge", 3, "agent", {}),  # signed over other bytes
         sign(agent, document("s-3", "acknowledge", 3, "agent", {"note": "x"}))),
        (document("s-4", "add_comment", 4, "customer", comment), revoked),
        (document("s-5", "add_comment", 5, "customer", comment), expired),
        (document("s-6", "add_comment", 6, "customer", comment), UNKNOWN),
        (document("s-7", "resolve", 7, "agent", {"resolution": "done"}), customer),
        (document("s-8", "add_comment", 8, "customer", comment, tenant=PRO), other_tenant),
        (document("s-8", "acknowledge", 9, "agent", {}), agent),  # A's s-8: still free
        (document("s-2", "add_comment", 10, "customer", comment), customer),  # and s-2
    ]
    producer = KafkaProducer(bootstrap_servers=signed.kafka)
    for value, signer in sent:
        headers = sign(signer, value) if isinstance(signer, str) else signer
        producer.send(topics.commands, key=b"SG-1", value=value, headers=headers)
    producer.flush()
    producer.close()

    letters = read_topic(signed.kafka or "", topics.dead_letter, expected=7)
    assert [(r["headers"]["message_id"].decode(), r["headers"]["error_code"].decode())
            for r in letters] == [("s-2", "unauthenticated"), ("s-3", "unauthenticated"),
                                  ("s-4", "unauthenticated"), ("s-5", "unauthenticated"),
                                  ("s-6", "unauthenticated"), ("s-7", "forbidden"),
                                  ("s-8", "forbidden")]
    assert [r["value"] for r in letters] == [value for value, _ in sent[:7]]
    reasons = [r["headers"]["error_message"].decode() for r in letters]
    assert "unsigned" in reasons[0] and "badly signed" in reasons[1]
    assert "revoked" in reasons[2] and "expired" in reasons[3] and "unknown key" in reasons[4]
    with build_app(signed) as app:
        wait_for(lambda: len(app.event_log.ticket_events("SG-1", PRO)) == 3, "A's commands")
        assert [(e["type"], e["causation_id"])
                for e in app.event_log.ticket_events("SG-1", PRO)] == [
            ("TicketCreated", "s-1"), ("TicketAcknowledged", "s-8"), ("CommentAdded", "s-2")]
        with pytest.raises(NotFound):  # tenant B's key opened nothing of its own either
            app.event_log.ticket_events("SG-1", GROW)


def test_the_shell_example_signs_as_the_sdk_does_and_is_accepted(
    signed: Settings, topics: Topics, keys: Keys, tmp_path: Path,
) -> None:
    secret = keys.create(PRO, ["customer"])[1]
    value = document("sh-1", "create_ticket", 0, "customer",
                     create_payload(subject="Café ☕ “exports”"), ticket="SG-2")
    (tmp_path / "command.json").write_bytes(value)
    script = re.search(r"<!-- sign-with-kcat:begin -->\n```sh\n(.*?)```",
                       (DOCS / "kafka.md").read_text(encoding="utf-8"), re.S)
    assert script is not None
    subprocess.run(["bash", "-euo", "pipefail", "-c", script.group(1)], cwd=tmp_path,
                   check=True, timeout=60,
                   env={"PATH": "/usr/local/bin:/usr/bin:/bin", "SECRET": secret,
                        "BOOTSTRAP": signed.kafka or "", "TOPIC": topics.commands,
                        "KEY": "SG-2"})
    assert (tmp_path / "key.pem").read_bytes() == private_key_pem(secret)

    [record] = read_topic(signed.kafka or "", topics.commands, expected=1)
    assert record["value"] == value
    assert record["headers"] == dict(sign(secret, value))  # Ed25519 is deterministic
    assert record["partition"] == (murmur2(b"SG-2") & 0x7FFFFFFF) % 3  # as Java/Python pick
    with build_app(signed) as app:
        found = wait_for(lambda: app.event_log.outcome("sh-1", PRO), "the kcat command")
        assert found.status == "accepted"


def test_publish_signs_with_its_key_and_refuses_a_key_that_is_not_one(
    signed: Settings, topics: Topics, keys: Keys, tmp_path: Path,
) -> None:
    (tmp_path / "secret").write_text(keys.create(PRO, ["customer"])[1] + "\n")
    (tmp_path / "commands.jsonl").write_bytes(document(
        "pub-1", "create_ticket", 0, "customer", create_payload(), ticket="SG-3") + b"\n")
    published = run("publish", str(tmp_path / "commands.jsonl"), "--key",
                    str(tmp_path / "secret"), "--kafka", signed.kafka or "", db=signed.db,
                    env={"TICKETFLOW_TOPIC_PREFIX": signed.topic_prefix})
    assert published.returncode == 0, published.stderr
    with build_app(signed) as app:
        found = wait_for(lambda: app.event_log.outcome("pub-1", PRO), "the published command")
        assert found.status == "accepted"
    refused = run("publish", str(tmp_path / "commands.jsonl"), "--key", "tfk_nonsense",
                  "--kafka", signed.kafka or "", db=signed.db)
    assert refused.returncode == 2 and "--key: not a ticketflow key secret" in refused.stderr


def test_an_sdk_client_refuses_a_key_that_is_not_a_secret(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("not a key\n")
    with pytest.raises(ValueError, match="not a ticketflow key secret"):
        CommandClient("127.0.0.1:1", key=str(tmp_path / "key"), api_version=(3, 6))
