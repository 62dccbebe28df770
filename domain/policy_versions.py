"""Every policy version a ticket was created under, kept in the event store.

A ticket records its policy's id, version and content hash; replay and every later
command use that version, even after the policy file has moved on. The first ticket
created under a version stores the whole validated policy document beside it.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from ticketflow.domain.policy import Policy, policy_from_data
from ticketflow.domain.streams import unscoped_uuid


def policy_version_uuid(policy_id: str, version: str) -> Any:
    return unscoped_uuid("policy", f"{policy_id}@{version}")


class PolicyVersion(Aggregate):
    class Published(Aggregate.Created):
        policy_id: str
        version: str
        content_hash: str
        document: dict[str, Any]

    def __init__(
        self, policy_id: str, version: str, content_hash: str, document: dict[str, Any]
    ) -> None:
        self.policy_id = policy_id
        self.policy_version = version
        self.content_hash = content_hash
        self.document = document

    @classmethod
    def publish(cls, policy: Policy) -> PolicyVersion:
        return cls._create(
            cls.Published, id=policy_version_uuid(policy.id, policy.version),
            policy_id=policy.id, version=policy.version, content_hash=policy.content_hash,
            document=policy.model_dump(mode="json"),
        )

    def policy(self) -> Policy:
        source = f"stored policy {self.policy_id}@{self.policy_version}"
        return policy_from_data(self.document, source, stored=True)
