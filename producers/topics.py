"""The topic contract of SPEC §5 and its creation on a cluster.

support.ticket-events is kept forever and never compacted: it is the canonical,
ordered history for everyone else. Partition count is configurable (default 6);
per-ticket order holds because the key is the ticket id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kafka import errors as Errors
from kafka.admin import KafkaAdminClient, NewTopic

COMMANDS = "support.commands"
TICKET_EVENTS = "support.ticket-events"
DEAD_LETTER = "support.dead-letter"
NOTIFICATIONS = "support.notifications"
DEFAULT_PARTITIONS = 6
READY_TIMEOUT_MS = 60_000

RETAIN_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


@dataclass(frozen=True)
class Topics:
    """The topic names, optionally behind a prefix (e.g. 'staging.') so that
    several environments can share one cluster."""

    commands: str = COMMANDS
    ticket_events: str = TICKET_EVENTS
    dead_letter: str = DEAD_LETTER
    notifications: str = NOTIFICATIONS

    @classmethod
    def named(cls, prefix: str = "") -> Topics:
        return cls(prefix + COMMANDS, prefix + TICKET_EVENTS, prefix + DEAD_LETTER,
                   prefix + NOTIFICATIONS)

    def specs(self) -> dict[str, dict[str, str]]:
        return {self.commands: {"cleanup.policy": "delete"},
                self.ticket_events: dict(RETAIN_FOREVER),
                self.dead_letter: dict(RETAIN_FOREVER),
                self.notifications: {"cleanup.policy": "delete"}}


def ensure_topics(
    client_config: dict[str, Any], topics: Topics | None = None,
    partitions: int = DEFAULT_PARTITIONS, replication: int = 1,
) -> list[str]:
    """Create the topics that are missing, then wait until every partition of every
    topic has a leader; returns the names this call created (not those another
    process created meanwhile).

    Waiting matters: a consumer group that assigns partitions before a new topic's
    metadata has propagated gets an empty assignment and (kafka-python 3.0) does not
    rebalance when the partitions appear, so it would sit idle.
    """
    specs = (topics or Topics()).specs()
    admin = KafkaAdminClient(**client_config)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in specs if name not in existing]
        created: list[str] = []
        if missing:
            new = [NewTopic(name, partitions, replication, topic_configs=specs[name])
                   for name in missing]
            response = admin.create_topics(new, raise_errors=False)
            for topic in response.get("topics", []):
                error = Errors.for_code(topic["error_code"])
                if error is Errors.NoError:
                    created.append(topic["name"])
                elif error is not Errors.TopicAlreadyExistsError:  # another process won
                    raise error(topic.get("error_message") or topic["name"])
        admin.wait_for_topics(list(specs), timeout_ms=READY_TIMEOUT_MS)
        return sorted(created)
    finally:
        admin.close()
