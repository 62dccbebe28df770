"""Policy versions: the tenants' current policy files, and every version a ticket was
created under, kept in the event store (SPEC §2).

A ticket records its policy's id, version and content hash at creation; later commands,
the timer, projections and reports evaluate it under that version, from the file if it
is still the current one, else from the copy stored when it was first used. Changing a
file without bumping its `version` is refused (`PolicyError`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper

from ticketflow.domain.errors import InvalidMessage
from ticketflow.domain.policy import Policy, PolicyError
from ticketflow.domain.policy_versions import PolicyVersion, policy_version_uuid
from ticketflow.domain.ticket import Ticket


class PolicyStore:
    def __init__(self, policies: dict[str, Policy], recorder: ApplicationRecorder,
                 mapper: Mapper[UUID],
                 first_save: Callable[[], AbstractContextManager[None]] = nullcontext) -> None:
        self.policies = policies  # the current files, by tenant (= policy id)
        self.recorder, self.mapper = recorder, mapper
        #: Serializes first saves across processes (ticketflow.store: `first_save`).
        self.first_save = first_save
        self._stored: dict[tuple[str, str], Policy] = {}
        self._checked: set[tuple[str, str]] = set()

    def tenant_policy(self, tenant: str) -> Policy:
        """The tenant's current policy; an unknown tenant is the message's fault."""
        try:
            return self.policies[tenant]
        except KeyError:
            known = ", ".join(sorted(self.policies))
            raise InvalidMessage(f"unknown tenant {tenant!r}; known: {known}") from None

    def policy_of(self, ticket: Ticket) -> Policy:
        """The policy version the ticket was created under."""
        ref = ticket.policy
        return self.policy_version(ref["id"], ref["version"], ref["hash"])

    def policy_version(self, policy_id: str, version: str, content_hash: str) -> Policy:
        """A policy version a ticket recorded: the file's, or the copy in the store."""
        current = self.policies.get(policy_id)
        if current and current.version == version and current.content_hash == content_hash:
            return current
        key = (policy_id, version)
        if key not in self._stored:
            stored = self._stored_copy(*key)
            if stored is None:
                raise PolicyError(f"policy {policy_id} version {version} is not in the store")
            self._stored[key] = stored.policy()
        return self._stored[key]

    def publish(self, policy: Policy) -> None:
        """Save a copy of `policy` unless the store has it (the same: else PolicyError),
        in a write of its own before the ticket that first uses it. Idempotent, also for
        processes doing it at once: they take turns (`first_save`), and one that still
        collides (SQLite) finds the copy saved."""
        key = (policy.id, policy.version)
        if key in self._checked:
            return
        stored = self._stored_copy(*key)
        if stored is None:
            with self.first_save():
                stored = self._stored_copy(*key)
                if stored is None:
                    copy = PolicyVersion.publish(policy)
                    try:
                        self.recorder.insert_events([self.mapper.to_stored_event(event)
                                                     for event in copy.collect_events()])
                    except IntegrityError:  # another process saved it first
                        stored = self._stored_copy(*key)
                    else:
                        stored = copy
        if stored is None:
            raise PolicyError(f"policy {policy.id} version {policy.version} could not be saved")
        _check_same(stored, policy)
        self._checked.add(key)

    def _stored_copy(self, policy_id: str, version: str) -> PolicyVersion | None:
        records = self.recorder.select_events(policy_version_uuid(policy_id, version), limit=1)
        if not records:
            return None
        return self.mapper.to_domain_event(records[0]).mutate(None)  # type: ignore[attr-defined]


def _check_same(stored: PolicyVersion, policy: Policy) -> None:
    if stored.content_hash != policy.content_hash:
        raise PolicyError(
            f"policy {policy.id} version {policy.version} differs from the copy stored when"
            f" it was first used (hash {stored.content_hash[:12]}… vs {policy.content_hash[:12]}…)."
            " Give the changed policy a new `version`."
        )
