"""The SDK other services use to publish support commands to Kafka.

    client = CommandClient("127.0.0.1:9092")
    message_id = client.send("acknowledge", tenant="personalysispro", ticket_id="T-1001",
                             actor=("agent-7", "agent"), payload={})
    client.flush()

Commands are validated with the same pydantic models the engine uses before they are
sent (a bad command raises InvalidMessage here, not later in a dead letter), keyed by
ticket id (session id for self-service) so one ticket's commands stay in order.
`outcome()` answers what became of a message: its events or its rejection.

A client made for one tenant (`CommandClient(..., tenant="growgrebuddy")`) refuses to
send a command naming another (Forbidden), and its `outcome` sees only that tenant's
messages. On the broker, what a service may write and read is up to Kafka ACLs
(docs/security.md).

A client given a key (`CommandClient(..., key="tfk_…")`, or the path of a file holding
the secret) signs every message it sends: the headers `ticketflow-key-id` and
`ticketflow-signature` (Ed25519 over the exact value bytes; docs/kafka.md, "Signed
commands"), which an engine run with TICKETFLOW_REQUIRE_KEYS=1 requires.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from kafka.producer import KafkaProducer

from ticketflow.clock import Clock, default_clock
from ticketflow.domain.errors import Forbidden
from ticketflow.event_log import CommandOutcome, Store
from ticketflow.keys import parse_secret, read_secret, sign
from ticketflow.producers.relay import producer_config
from ticketflow.producers.topics import Topics
from ticketflow.schemas.commands import CommandBase, parse_document
from ticketflow.settings import options_for


class CommandClient:
    """Publishes validated commands to support.commands (for one tenant, if given)."""

    def __init__(
        self, bootstrap: str | list[str], topics: Topics | None = None, *,
        tenant: str | None = None, clock: Clock | None = None, key: str | None = None,
        **client_options: Any,
    ) -> None:
        servers = bootstrap.split(",") if isinstance(bootstrap, str) else bootstrap
        self.topic = (topics or Topics()).commands
        self.tenant = tenant
        self._secret = read_secret(key) if key else None
        if self._secret is not None:
            parse_secret(self._secret)  # ValueError now, not at the first send
        self.clock = clock or default_clock()  # occurred_at of commands sent without one
        options = options_for(KafkaProducer, client_options)  # consumer-only ones dropped
        self.producer = KafkaProducer(**producer_config(
            {**options, "bootstrap_servers": servers}))

    def send(
        self, type_: str, *, tenant: str, actor: tuple[str, str], payload: dict[str, Any],
        ticket_id: str | None = None, session_id: str | None = None,
        message_id: str | None = None, occurred_at: datetime | None = None,
        article_id: str | None = None,
    ) -> str:
        """Validate and publish one command (naming its ticket, its self-service session
        or its knowledge-base article); returns its message_id."""
        document: dict[str, Any] = {
            "message_id": message_id or f"sdk-{uuid.uuid4()}", "type": type_,
            "tenant": tenant, "occurred_at": (occurred_at or self.clock()).isoformat(),
            "actor": {"id": actor[0], "role": actor[1]}, "payload": payload,
        }
        if ticket_id is not None:
            document["ticket_id"] = ticket_id
        if session_id is not None:
            document["session_id"] = session_id
        if article_id is not None:
            document["article_id"] = article_id
        return self.send_document(document)

    def send_document(self, document: dict[str, Any]) -> str:
        """Publish a command given as a SPEC §5 JSON object (validated first)."""
        command: CommandBase = parse_document(document)
        if self.tenant is not None and command.tenant != self.tenant:
            raise Forbidden(f"this client sends commands for tenant {self.tenant!r} only;"
                            f" the command names {command.tenant!r}")
        value = json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
        headers = sign(self._secret, value) if self._secret is not None else None
        self.producer.send(self.topic, key=command.stream_id.encode("utf-8"), value=value,
                           headers=headers)
        return command.message_id

    def outcome(self, app: Store, message_id: str) -> CommandOutcome | None:
        """What became of a message this client's tenant sent (another's: None)."""
        return outcome(app, message_id, tenant=self.tenant)

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(timeout=timeout)

    def close(self) -> None:
        self.producer.close()

    def __enter__(self) -> CommandClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.flush()
        self.close()


def outcome(
    app: Store, message_id: str, tenant: str | None = None
) -> CommandOutcome | None:
    """What became of a message (see `EventLog.outcome`)."""
    return app.event_log.outcome(message_id, tenant)
