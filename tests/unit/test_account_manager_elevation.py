"""An account's recorded manager acts as `manager` on its tickets (issue 19), on the real
application service over the in-memory recorder: an agent whose id the store records as
the manager of the ticket's account may send `review_ticket`; every other way to get
there is refused (`forbidden`), whatever the message claims."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.support.builders import POLICIES, T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.keys import Key

NOW = T0 + timedelta(days=30)
PP, GB = "personalysispro", "growgrebuddy"
RUBRIC = {"accurate": True, "complete": True, "empathetic": False}


def app() -> TicketingApp:
    return TicketingApp(POLICIES, {"PERSISTENCE_MODULE": "eventsourcing.popo"},
                        clock=lambda: NOW)


def at(minutes: int) -> Any:
    return T0 + timedelta(minutes=minutes)


def account_command(message_id: str, account_id: str, manager_id: str | None, minutes: int,
                    *, tenant: str = PP, plan: str = "enterprise", role: str = "manager",
                    actor: str = "boss") -> bytes:
    document = json.loads(command_line(message_id, "assign_account_manager", "x", at(minutes),
                                       role, {"plan": plan, "manager_id": manager_id},
                                       tenant=tenant, actor=actor))
    del document["ticket_id"]
    document["account_id"] = account_id
    return json.dumps(document).encode()


def resolved_ticket(service: TicketingApp, ticket_id: str, account_id: str,
                    tenant: str = PP) -> None:
    payload = create_payload(tenant, account_id=account_id)
    for n, (kind, role, body) in enumerate([
            ("create_ticket", "customer", payload),
            ("assign", "agent", {"agent_id": "agent-7"}),
            ("resolve", "agent", {"resolution": "fixed"})]):
        outcome = service.apply(command_line(f"{tenant}-{ticket_id}-{n}", kind, ticket_id,
                                             at(n), role, body, tenant=tenant))
        assert outcome.status == "accepted", outcome


def review(message_id: str, ticket_id: str, actor: str, role: str = "agent",
           tenant: str = PP, minutes: int = 60) -> bytes:
    rubric = (RUBRIC if tenant == PP
              else {"accurate": True, "complete": True, "empathetic": True,
                    "followed_process": False})
    return command_line(message_id, "review_ticket", ticket_id, at(minutes), role,
                        {"score": 4, "rubric": rubric}, tenant=tenant, actor=actor)


def answer(service: TicketingApp, raw: bytes, key: Key | None = None) -> str:
    outcome = service.apply(raw, key)
    return outcome.status if outcome.error is None else outcome.error["code"]


def agent_key(tenant: str = PP, actor: str | None = None) -> Key:
    return Key("k1", tenant, ("agent",), actor, "agents", T0, None, None, b"")


def test_the_recorded_manager_reviews_its_accounts_ticket_as_manager() -> None:
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme")
    outcome = service.apply(review("r-1", "T-1", "am-dana"))
    assert (outcome.status, outcome.events) == ("accepted", ["TicketReviewed"])
    ticket_events = list(service.events.get(service.load_ticket("T-1", tenant=PP).id))
    reviewed = ticket_events[-1]
    assert reviewed.actor == {"id": "am-dana", "role": "manager"}  # type: ignore[attr-defined]
    assert reviewed.data["as_account_manager"] is True  # type: ignore[attr-defined]


def test_a_key_bound_to_the_agent_role_carries_the_managers_review() -> None:
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme")
    assert answer(service, review("r-1", "T-1", "am-dana"), agent_key(actor="am-dana")) \
        == "accepted"


def test_an_agent_with_no_account_to_manage_is_not_elevated() -> None:
    service = app()
    resolved_ticket(service, "T-1", "acme")
    assert answer(service, review("r-1", "T-1", "agent-7")) == "forbidden"


def test_the_manager_of_another_account_is_not_elevated_on_this_one() -> None:
    service = app()
    assert answer(service, account_command("a-1", "beta", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme")
    assert answer(service, review("r-1", "T-1", "am-dana")) == "forbidden"


def test_another_tenants_account_with_the_same_id_elevates_nobody_here() -> None:
    """GrowgrEbuddy has no plan with a manager: the PersonalysisPro account "acme" is
    recorded, and GrowgrEbuddy's ticket for its own "acme" is not that account's."""
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme", tenant=GB)
    assert answer(service, review("r-1", "T-1", "am-dana", tenant=GB)) == "forbidden"


def test_a_removed_manager_is_no_longer_elevated() -> None:
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme")
    assert answer(service, review("r-1", "T-1", "am-dana")) == "accepted"
    assert answer(service, account_command("a-2", "acme", None, 70)) == "accepted"
    assert answer(service, review("r-2", "T-1", "am-dana", minutes=80)) == "forbidden"


def test_a_replaced_manager_is_not_and_the_new_one_is() -> None:
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme")
    assert answer(service, account_command("a-2", "acme", "am-eli", 70)) == "accepted"
    assert answer(service, review("r-1", "T-1", "am-dana", minutes=80)) == "forbidden"
    assert answer(service, review("r-2", "T-1", "am-eli", minutes=81)) == "accepted"


def test_only_the_agent_role_is_elevated_and_only_for_a_managers_command() -> None:
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme")
    assert answer(service, review("r-1", "T-1", "am-dana", role="customer")) == "forbidden"
    # a command an agent may send is sent as agent: no elevation to bypass its rules
    comment = command_line("c-1", "add_comment", "T-1", at(61), "agent",
                           {"body": "hello", "visibility": "internal"}, actor="am-dana")
    assert answer(service, comment) == "accepted"
    events = list(service.events.get(service.load_ticket("T-1", tenant=PP).id))
    assert events[-1].actor == {"id": "am-dana", "role": "agent"}  # type: ignore[attr-defined]
    # and the manager may not assign the account's manager: that stays a manager's
    assert answer(service, account_command("a-2", "acme", "am-dana", 62, role="agent",
                                           actor="am-dana")) == "forbidden"


def test_a_key_speaking_for_another_agent_cannot_borrow_the_managers_id() -> None:
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0)) == "accepted"
    resolved_ticket(service, "T-1", "acme")
    assert answer(service, review("r-1", "T-1", "am-dana"), agent_key(actor="agent-7")) \
        == "forbidden"
    assert answer(service, review("r-2", "T-1", "am-dana"), agent_key(tenant=GB)) \
        == "forbidden"


def test_an_assignment_earlier_in_the_same_batch_counts() -> None:
    service = app()
    resolved_ticket(service, "T-1", "acme")
    outcomes = service.apply_batch([account_command("a-1", "acme", "am-dana", 50),
                                    review("r-1", "T-1", "am-dana")])
    assert [o.status for o in outcomes] == ["accepted", "accepted"]


def test_assigning_outside_the_enterprise_plan_is_a_policy_violation() -> None:
    service = app()
    assert answer(service, account_command("a-1", "acme", "am-dana", 0, plan="standard")) \
        == "policy_violation"
    assert answer(service, account_command("a-2", "acme", "am-dana", 0, plan="gold")) \
        == "policy_violation"
    create = command_line("c-1", "create_ticket", "T-1", at(0), "customer",
                          create_payload(PP, plan="gold"))
    assert answer(service, create) == "policy_violation"  # the same code for the same fault


def test_an_account_command_names_its_account_id_and_no_ticket() -> None:
    service = app()
    raw = command_line("a-1", "assign_account_manager", "acme", at(0), "manager",
                       {"plan": "enterprise", "manager_id": "am-dana"})
    outcome = service.apply(raw)
    assert outcome.error is not None and outcome.error["code"] == "invalid_message"
    assert "names a account_id" in outcome.error["message"]
