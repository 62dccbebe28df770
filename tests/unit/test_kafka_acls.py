"""The broker side of SPEC §8, without a broker: the local broker's SASL configuration
(authorizer on, nothing allowed without an ACL, no anonymous listener), its users file,
each principal's grants, and docs/security.md showing exactly those grants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kafka.admin import ACLOperation, ResourceType

from ticketflow.producers.acls import acls, grants, kafka_acls_commands
from ticketflow.producers.topics import Topics
from ticketflow.tools.kafka_broker import KafkaBrokerError, LocalKafka, read_users

DOCS = Path(__file__).resolve().parents[2] / "docs"
USERS = {"admin": "a", "ticketflow": "t"}


def test_the_sasl_broker_authorizes_every_request_and_has_no_anonymous_listener(
    tmp_path: Path,
) -> None:
    broker = LocalKafka(19092, data_dir=tmp_path, sasl_users=USERS, echo=None)
    config = broker.server_properties()
    assert config["authorizer.class.name"].endswith("StandardAuthorizer")
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:admin"
    assert "PLAINTEXT://" not in config["listeners"].replace("SASL_PLAINTEXT://", "")
    assert config["listener.security.protocol.map"] == \
        "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    jaas = config["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert 'username="admin" password="a"' in jaas and 'user_ticketflow="t"' in jaas
    assert broker.client_options("ticketflow")["sasl_plain_username"] == "ticketflow"
    assert "authorizer.class.name" not in LocalKafka(19092, echo=None).server_properties()


@pytest.mark.parametrize("users, super_user, fragment", [
    ({"admin": 'x" user_evil="y'}, "admin", "without"),
    ({"admin": "x;"}, "admin", "without"),
    ({"ad min": "x"}, "ad min", "letters, digits"),
    ({"ticketflow": "t"}, "admin", "super user 'admin' is not among"),
])
def test_users_that_could_break_the_jaas_line_are_refused(
    users: dict[str, str], super_user: str, fragment: str,
) -> None:
    with pytest.raises(KafkaBrokerError) as refused:
        LocalKafka(19092, sasl_users=users, super_user=super_user, echo=None)
    assert fragment in str(refused.value)


def test_the_users_file_is_name_equals_password_lines(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("# the broker's users\nadmin = a\n\nticketflow=t=2\n")
    assert read_users(tmp_path / "users") == {"admin": "a", "ticketflow": "t=2"}
    (tmp_path / "bad").write_text("admin\n")
    with pytest.raises(KafkaBrokerError, match="bad:1: write each user as name=password"):
        read_users(tmp_path / "bad")


def test_a_sender_may_only_write_the_commands_and_the_engine_never_writes_them() -> None:
    topics = Topics.named("staging.")
    assert grants("sender", topics) == [
        (ResourceType.TOPIC, "staging.support.commands", grants("sender")[0][2],
         ACLOperation.WRITE)]
    engine = {(name, op) for _, name, _, op in grants("engine", topics)}
    assert ("staging.support.commands", ACLOperation.WRITE) not in engine
    assert ("staging.support.commands", ACLOperation.READ) in engine
    assert {acl.principal for acl in acls("reader", "User:reporting")} == {"User:reporting"}
    with pytest.raises(ValueError, match="unknown role"):
        grants("admin")


def test_docs_security_shows_exactly_the_grants_in_code() -> None:
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- acls:begin -->\n```\n(.*?)```\n<!-- acls:end -->", text, re.S)
    assert block is not None
    expected = [*kafka_acls_commands("engine", "User:ticketflow"),
                *kafka_acls_commands("sender", "User:email-gateway"),
                *kafka_acls_commands("reader", "User:reporting", group_prefix="reporting-")]
    assert block.group(1).splitlines() == expected
