"""The notifications story of issue 18's done-when: a PersonalysisPro ticket escalated
to first level, at management for a day, then resolved; and what the policy names."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.timers import Timers

H, M = timedelta(hours=1), timedelta(minutes=1)
#: Past every instant of the story (and its auto-close): the engine's clock in its tests.
END = T0 + timedelta(days=20)

#: (at, rule, audience, recipient): Mon 09:00 New York created; 09:30 first level;
#: 17:00 the resolution breach escalates to management; updates every 4 h on `extended`
#: (08-20): Tue 09:00, 13:00, 17:00; resolved Tue 17:30: the survey. The internal
#: comment: nothing.
EXPECTED = [
    ("2026-11-16T14:30:00+00:00", "escalated_first_level", "customer", "u-42"),
    ("2026-11-16T22:00:00+00:00", "escalated_management", "customer", "u-42"),
    ("2026-11-16T22:00:00+00:00", "escalated_management", "account_manager", "am-dana"),
    ("2026-11-17T14:00:00+00:00", "management_update", "customer", "u-42"),
    ("2026-11-17T14:00:00+00:00", "management_update", "account_manager", "am-dana"),
    ("2026-11-17T18:00:00+00:00", "management_update", "customer", "u-42"),
    ("2026-11-17T18:00:00+00:00", "management_update", "account_manager", "am-dana"),
    ("2026-11-17T22:00:00+00:00", "management_update", "customer", "u-42"),
    ("2026-11-17T22:00:00+00:00", "management_update", "account_manager", "am-dana"),
    ("2026-11-17T22:30:00+00:00", "satisfaction_survey", "customer", "u-42"),
]


def send(app: TicketingApp, n: int, type_: str, at: datetime, role: str,
         payload: dict[str, Any], actor: str = "actor-1") -> str:
    return app.apply(command_line(f"m-{n}", type_, "T-1", at, role, payload,
                                  actor=actor)).status


def done_when_story(app: TicketingApp, *, live: bool) -> None:
    """The story on `app` (its clock past END); `live`: the timer runs between
    commands, else only at the end (the resolve fires what fell due before it)."""
    send(app, 1, "create_ticket", T0, "customer", create_payload(), actor="u-42")
    send(app, 2, "acknowledge", T0 + 10 * M, "agent", {})
    send(app, 3, "escalate", T0 + 30 * M, "agent", {"level": "first_level",
                                                    "reason": "customer threatens to leave"})
    send(app, 4, "add_comment", T0 + 40 * M, "agent", {"body": "INTERNAL: refund?",
                                                       "visibility": "internal"})
    if live:
        Timers(app).fire_until(T0 + 31 * H)
    send(app, 5, "resolve", T0 + 32 * H + 30 * M, "agent", {"resolution": "Timeout raised"})
    Timers(app).fire_until(END)


def listed(documents: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(d["at"], d["rule"], d["audience"], d["recipient"]) for d in documents]
