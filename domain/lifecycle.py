"""The ticket lifecycle of SPEC §3 as data: states, transitions and who may do what.

Every command is checked here and only here; the aggregate asks `check()` before it
emits anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ticketflow.domain.errors import Forbidden, InvalidTransition


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

C, A, M, S = Role.CUSTOMER, Role.AGENT, Role.MANAGER, Role.SYSTEM


@dataclass(frozen=True)
class Rule:
    """One row of the SPEC §3 table. `target` None means the state is unchanged."""

    allowed_from: frozenset[Status]
    target: Status | None
    roles: frozenset[Role]


def _rule(allowed: frozenset[Status], target: Status | None, *roles: Role) -> Rule:
    return Rule(allowed, target, frozenset(roles))


TABLE: dict[str, Rule] = {
    "acknowledge": _rule(frozenset({Status.CREATED}), Status.ACKNOWLEDGED, A),
    "start_work": _rule(frozenset({Status.ACKNOWLEDGED}), Status.IN_PROGRESS, A),
    "request_user_input": _rule(
        frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS}), Status.PENDING_USER_INPUT, A
    ),
    "receive_user_input": _rule(
        frozenset({Status.PENDING_USER_INPUT}), Status.IN_PROGRESS, C
    ),
    "resolve": _rule(OPEN, Status.RESOLVED, A),
    "reopen": _rule(frozenset({Status.RESOLVED}), Status.IN_PROGRESS, C, A),
    "close": _rule(frozenset({Status.RESOLVED}), Status.CLOSED, C, A, S),
    "escalate": _rule(OPEN, None, A, M, S),
    "change_priority": _rule(OPEN, None, A, M),
    "assign": _rule(OPEN, None, A, M, S),
    "add_comment": _rule(ALL - {Status.CLOSED}, None, C, A),
    "link_article": _rule(ALL, None, A),
    "record_satisfaction": _rule(DONE, None, C),
    "consent_to_publish": _rule(DONE, None, C),
    "publish_as_article": _rule(DONE, None, A),
    "record_sla_breach": _rule(OPEN, None, S),
}

#: Commands that do not act on an existing ticket, with the roles allowed to send them.
CREATION_ROLES: dict[str, frozenset[Role]] = {
    "create_ticket": frozenset({C, A, S}),
    "record_self_service": frozenset({C, S}),
}

COMMAND_TYPES: frozenset[str] = frozenset(TABLE) | frozenset(CREATION_ROLES)


def check(command: str, status: Status, role: Role) -> Status:
    """Return the state after `command`, or raise Forbidden / InvalidTransition."""
    rule = TABLE[command]
    if role not in rule.roles:
        allowed = ", ".join(sorted(rule.roles))
        raise Forbidden(f"role {role.value!r} may not {command}; allowed: {allowed}")
    if status not in rule.allowed_from:
        allowed = ", ".join(sorted(rule.allowed_from))
        raise InvalidTransition(
            f"cannot {command} a ticket that is {status.value}; allowed from: {allowed}"
        )
    return rule.target or status


def check_creation(command: str, role: Role) -> None:
    if role not in CREATION_ROLES[command]:
        allowed = ", ".join(sorted(CREATION_ROLES[command]))
        raise Forbidden(f"role {role.value!r} may not {command}; allowed: {allowed}")
