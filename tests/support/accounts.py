"""A story of account managers and quality reviews (issue 19), for the read-model,
report and HTTP tests: commands as the bytes a service sends.

PersonalysisPro: account "acme" (enterprise) gets manager am-dana; T-1 (acme, assigned
agent-7) is resolved and reviewed twice by the manager "boss" (2 on day 1, then 4 on
day 2); T-2 (acme, escalated to first_level, agent-8) is reviewed 5 by am-dana, who
sends as an agent and acts as the account's manager; T-3 (account "beta", professional,
agent-7) is reviewed 3. GrowgrEbuddy: its own "acme" ticket T-1, reviewed 1.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from tests.support.builders import T0, command_line, create_payload

PP, GB = "personalysispro", "growgrebuddy"
PP_RUBRIC = ("accurate", "complete", "empathetic")
GB_RUBRIC = ("accurate", "complete", "empathetic", "followed_process")
DAY = timedelta(days=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def assign_manager(message_id: str, account_id: str, manager_id: str | None,
                   when: datetime, tenant: str = PP, plan: str = "enterprise") -> bytes:
    document = json.loads(command_line(message_id, "assign_account_manager", "x", when,
                                       "manager", {"plan": plan, "manager_id": manager_id},
                                       tenant=tenant, actor="boss"))
    del document["ticket_id"]
    document["account_id"] = account_id
    return json.dumps(document).encode()


def review(message_id: str, ticket_id: str, when: datetime, score: int,
           passed: tuple[str, ...], *, tenant: str = PP, actor: str = "boss",
           role: str = "manager") -> bytes:
    items = PP_RUBRIC if tenant == PP else GB_RUBRIC
    return command_line(message_id, "review_ticket", ticket_id, when, role,
                        {"score": score, "rubric": {item: item in passed for item in items}},
                        tenant=tenant, actor=actor)


def _handled(ticket_id: str, tenant: str, agent: str, *, escalate: bool = False,
             **create: Any) -> list[bytes]:
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("create_ticket", "customer", create_payload(tenant, **create)),
        ("assign", "agent", {"agent_id": agent})]
    if escalate:
        steps.append(("escalate", "agent", {"level": "first_level", "reason": "senior"}))
    steps.append(("resolve", "agent", {"resolution": "fixed"}))
    return [command_line(f"{tenant}-{ticket_id}-{n}", kind, ticket_id, at(n), role, body,
                         tenant=tenant) for n, (kind, role, body) in enumerate(steps)]


def story() -> list[bytes]:
    """Every command of the story, in order; each is accepted."""
    return [
        assign_manager("a-1", "acme", "am-dana", at(-60)),
        *_handled("T-1", PP, "agent-7", account_id="acme", plan="enterprise"),
        *_handled("T-2", PP, "agent-8", escalate=True, account_id="acme", plan="enterprise"),
        *_handled("T-3", PP, "agent-7", account_id="beta"),
        *_handled("T-1", GB, "agent-g"),
        review("r-1", "T-1", at(60), 2, ("accurate",)),
        review("r-2", "T-1", at(60) + DAY, 4, ("accurate", "complete")),
        review("r-3", "T-2", at(70), 5, PP_RUBRIC, actor="am-dana", role="agent"),
        review("r-4", "T-3", at(80), 3, ("accurate", "empathetic")),
        review("r-5", "T-1", at(90), 1, (), tenant=GB),
    ]
