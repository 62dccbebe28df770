"""Customer accounts' dedicated managers (issue 19: PersonalysisPro Enterprise): a
stream of their own per account, by the account id tickets name (scoped by tenant).

`assign_account_manager` starts the account's stream the first time and acts on it
after; each `AccountManagerAssigned` carries the whole assignment (plan, manager or
None), so the account's state, and its read model row, is its latest event alone.
Only a plan whose policy entry offers a manager (`account_manager = true`) may have one;
a manager is removed (None) under any plan the policy knows (an account moved down).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.utils import get_topic

from ticketflow.domain.commands import (
    ASSIGN_ACCOUNT_MANAGER,
    AssignAccountManager,
    CommandType,
    P,
)
from ticketflow.domain.errors import PolicyViolation
from ticketflow.domain.policy import Policy
from ticketflow.domain.streams import Context, Stream


class Account(Stream):
    """One customer account of a tenant: its plan and its manager, if it has one."""

    KIND = "account"

    class AccountManagerAssigned(Stream.Created, Stream.Event):
        """Starts the account's stream, and records every later assignment too: one
        event type, as the command is one (a `Created` event that, given the account,
        folds into it like any other event)."""

        def mutate(self, aggregate: Any) -> Any:
            if aggregate is None:
                return super().mutate(None)
            return Stream.Event.mutate(self, aggregate)

    def __init__(
        self, tenant: str, ticket_id: str, occurred_at: datetime, data: dict[str, Any],
        hash: str,
    ) -> None:
        self.tenant = tenant
        self.stream_id = ticket_id
        self.last_hash = hash
        self.last_occurred_at = occurred_at
        self.plan: str = data["plan"]
        self.manager_id: str | None = data["manager_id"]

    def note_event(self, event: Stream.Event) -> None:
        super().note_event(event)
        self.plan, self.manager_id = event.data["plan"], event.data["manager_id"]

    @property
    def account_id(self) -> str:
        return self.stream_id

    @classmethod
    def create(cls, ctx: Context, policy: Policy, account_id: str,
               payload: AssignAccountManager) -> Account:
        """The account an assign_account_manager command starts."""
        ASSIGN_ACCOUNT_MANAGER.check_role(ctx.role)
        if payload.manager_id is None:
            raise PolicyViolation(f"account {account_id} has no manager to remove")
        return cls._start(cls.AccountManagerAssigned, account_id, ctx,
                          {**_assignment(policy, account_id, payload), "from_manager_id": None})

    def handle(self, command: CommandType[P], ctx: Context, policy: Policy, payload: P) -> None:
        """assign_account_manager on an account that has its stream already."""
        if command is not ASSIGN_ACCOUNT_MANAGER or not isinstance(payload, AssignAccountManager):
            raise TypeError(f"an account takes assign_account_manager, not {command.name}")
        self._guard_common(ctx)
        command.check_role(ctx.role)
        data = _assignment(policy, self.stream_id, payload)
        if (data["plan"], data["manager_id"]) == (self.plan, self.manager_id):
            raise PolicyViolation(f"account {self.stream_id} already has that manager and plan")
        self._emit(self.AccountManagerAssigned, ctx,
                   {**data, "from_manager_id": self.manager_id})

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        if issubclass(event_class, Stream.Created):  # the topic a Created event carries
            kwargs.setdefault("originator_topic", get_topic(type(self)))
        super().trigger_event(event_class, **kwargs)


def _assignment(policy: Policy, account_id: str, p: AssignAccountManager) -> dict[str, Any]:
    """The event's data, once the policy allows the plan a manager."""
    if p.plan not in policy.plans:
        raise PolicyViolation(f"unknown plan {p.plan!r}; allowed: {', '.join(policy.plans)}")
    if not policy.plans[p.plan].account_manager and p.manager_id is not None:
        raise PolicyViolation(f"plan {p.plan!r} has no dedicated account manager; the"
                              " plans that have: " + (", ".join(
                                  name for name, plan in policy.plans.items()
                                  if plan.account_manager) or "none"))
    return {"account_id": account_id, "plan": p.plan, "manager_id": p.manager_id}
