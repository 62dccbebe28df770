"""The ticket lifecycle of SPEC §3: its states and the roles that act on it.

Which command is allowed from which state, to which state and by whom is the registry
of commands (`ticketflow.domain.commands.COMMANDS`, one entry per command); the
aggregate asks its entry (`CommandType.check`) before it emits anything.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    CREATED = "created"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    PENDING_USER_INPUT = "pending_user_input"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    MANAGER = "manager"
    SYSTEM = "system"


OPEN: frozenset[Status] = frozenset(
    {Status.CREATED, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.PENDING_USER_INPUT}
)
ALL: frozenset[Status] = frozenset(Status)
DONE: frozenset[Status] = frozenset({Status.RESOLVED, Status.CLOSED})
