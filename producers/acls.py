"""Who may do what on ticketflow's topics: the Kafka ACLs of each kind of principal.

SPEC §8: who may write support.commands is the broker's business. On a broker with an
authorizer and `allow.everyone.if.no.acl.found=false` (docs/security.md), a principal may
do only what these grant:

- `engine` (`ticketflow serve` / `worker`): read the commands, write the events and dead
  letters, read the events (projections), create the three topics if missing, and
  commit offsets in its consumer groups (every group named `ticketflow-…`);
- `sender` (a service that publishes commands): write support.commands, nothing else;
- `reader` (a service trusted with every tenant's events): read support.ticket-events
  in its own consumer groups (named by `group_prefix`);
- `checkpointer` (`ticketflow checkpoint --kafka`): create and write support.checkpoints.

Read and Write imply Describe on a topic; Write on any topic allows the idempotent
producer's InitProducerId (Kafka 2.8+, KIP-679), so no cluster permission is needed.
`kafka_acls_commands` renders the same set as `kafka-acls.sh` command lines, and
`grant` creates it with the admin client.
"""

from __future__ import annotations

import time
from typing import Any

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from ticketflow.producers.checkpoints import CHECKPOINTS
from ticketflow.producers.topics import Topics
from ticketflow.settings import options_for

ENGINE_GROUPS = "ticketflow-"
ROLES = ("engine", "sender", "reader", "checkpointer")
GRANT_TIMEOUT = 30.0

Grant = tuple[ResourceType, str, ACLResourcePatternType, ACLOperation]
LITERAL = ACLResourcePatternType.LITERAL
PREFIXED = ACLResourcePatternType.PREFIXED


def grants(role: str, topics: Topics | None = None, prefix: str = "",
           group_prefix: str = ENGINE_GROUPS) -> list[Grant]:
    """What a principal of `role` may do: (resource type, name, pattern, operation).
    `prefix` is the topic prefix (TICKETFLOW_TOPIC_PREFIX) of `checkpointer`'s topic."""
    named = topics or Topics()
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    read, write, create = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.CREATE
    if role == "engine":
        return [(topic, named.commands, LITERAL, read),
                (topic, named.ticket_events, LITERAL, read),
                (topic, named.ticket_events, LITERAL, write),
                (topic, named.dead_letter, LITERAL, write),
                *[(topic, name, LITERAL, create)
                  for name in (named.commands, named.ticket_events, named.dead_letter)],
                (group, group_prefix, PREFIXED, read)]
    if role == "sender":
        return [(topic, named.commands, LITERAL, write)]
    if role == "reader":
        return [(topic, named.ticket_events, LITERAL, read),
                (group, group_prefix, PREFIXED, read)]
    if role == "checkpointer":
        return [(topic, prefix + CHECKPOINTS, LITERAL, create),
                (topic, prefix + CHECKPOINTS, LITERAL, write)]
    raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")


def acls(role: str, principal: str, topics: Topics | None = None, prefix: str = "",
         group_prefix: str = ENGINE_GROUPS) -> list[ACL]:
    """`grants` as allow-ACLs for `principal` (e.g. ``User:email-gateway``), any host."""
    return [ACL(principal, "*", operation, ACLPermissionType.ALLOW,
                ResourcePattern(kind, name, pattern))
            for kind, name, pattern, operation in grants(role, topics, prefix, group_prefix)]


def grant(admin_config: dict[str, Any], granted: list[ACL],
          timeout: float = GRANT_TIMEOUT) -> None:
    """Create the ACLs (idempotent on the broker), raising the first failure, and wait
    until the broker's authorizer applies them (they travel through the metadata log:
    a client right after `create_acls` may still be refused)."""
    admin = KafkaAdminClient(**options_for(KafkaAdminClient, admin_config))
    try:
        failed = admin.create_acls(granted)["failed"]
        if failed:
            raise failed[0]
        deadline = time.monotonic() + timeout
        while not _applied(admin, granted):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not apply {len(granted)} ACLs in"
                                   f" {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        admin.close()


def _applied(admin: KafkaAdminClient, granted: list[ACL]) -> bool:
    """Every ACL is in the authorizer's answer (describe_acls reads the same state)."""
    for acl in granted:
        found, _ = admin.describe_acls(ACLFilter(
            acl.principal, acl.host, acl.operation, acl.permission_type,
            ResourcePatternFilter(acl.resource_pattern.resource_type,
                                  acl.resource_pattern.resource_name,
                                  acl.resource_pattern.pattern_type)))
        if not found:
            return False
    return True


def kafka_acls_commands(role: str, principal: str, topics: Topics | None = None,
                        prefix: str = "", group_prefix: str = ENGINE_GROUPS,
                        bootstrap: str = "kafka:9093",
                        config: str = "admin.properties") -> list[str]:
    """The same grants as `kafka-acls.sh` command lines, one per resource."""
    by_resource: dict[tuple[ResourceType, str, ACLResourcePatternType], list[str]] = {}
    for kind, name, pattern, operation in grants(role, topics, prefix, group_prefix):
        by_resource.setdefault((kind, name, pattern), []).append(operation.name.title())
    lines = []
    for (kind, name, pattern), operations in by_resource.items():
        pattern_flag = " --resource-pattern-type prefixed" if pattern is PREFIXED else ""
        lines.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {config} --add"
            f" --allow-principal {principal}"
            + "".join(f" --operation {op}" for op in operations)
            + f" --{kind.name.lower()} {name}{pattern_flag}")
    return lines
