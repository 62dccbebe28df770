"""Hypothesis: random histories applied through the application service and reloaded
by a fresh process (from stored events and snapshots) give the same ticket and the
same SLA result as the live aggregate."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.builders import PAYLOAD_OF, ROLE_OF, T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.policy import shipped_policies
from ticketflow.domain.ticket import Ticket
from ticketflow.settings import eventstore_env
from ticketflow.verification import verify_store

POLICIES = shipped_policies()


class SmallSnapshots(TicketingApp):
    snapshotting_intervals = {Ticket: 3}  # snapshot often, so reloads go through them


ON_A_TICKET = sorted(name for name, command in COMMANDS.items()
                     if not command.creates and command.stream == "ticket")
step = st.tuples(st.sampled_from(ON_A_TICKET), st.integers(min_value=0, max_value=3000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=20),
       priority=st.sampled_from(["critical", "high", "medium", "low"]))
def test_a_fresh_process_reloads_the_same_ticket_and_sla(
    steps: list[tuple[str, int]], priority: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        env = eventstore_env(f"sqlite:///{Path(folder) / 'store.db'}")
        at = T0
        with SmallSnapshots(POLICIES, env) as live:
            live.apply(command_line("m-0", "create_ticket", "T-1", at, "customer",
                                    create_payload(priority=priority)))
            for n, (command, minutes) in enumerate(steps, start=1):
                at += timedelta(minutes=minutes)
                payload: dict[str, Any] = {**PAYLOAD_OF[command]}
                if command == "record_sla_breach":
                    payload["due_at"] = at
                live.apply(command_line(f"m-{n}", command, "T-1", at,
                                        ROLE_OF[command].value, payload))
            ticket = live.load_ticket("T-1")
            expected_state = ticket.state()
            expected_sla = ticket.sla(live.policy_store.policy_of(ticket), at + timedelta(days=1))
        with TicketingApp(POLICIES, env) as fresh:
            reloaded = fresh.load_ticket("T-1")
            assert reloaded.state() == expected_state
            policy = fresh.policy_store.policy_of(reloaded)
            assert reloaded.sla(policy, at + timedelta(days=1)) == expected_sla
            assert verify_store(fresh) == []
