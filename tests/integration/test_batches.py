"""Batches of commands in one transaction (`TicketingApp.apply_batch`), on every
backend: the same outcomes and the same history as applying them one by one."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.support.builders import T0, command_line, create_payload
from tests.support.postgres import create_database
from ticketflow.application import Outcome, TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings
from ticketflow.tools.workload import generate_workload
from ticketflow.verification import verify_store

START = datetime(2026, 10, 5, tzinfo=UTC)
#: Wall-clock values that differ between two runs of the same history.
VOLATILE = ("recorded_at", "hash")


def second_database(db_url: str) -> str:
    """Another empty store on the same backend."""
    if db_url.startswith("sqlite"):
        return db_url + "-2"
    return create_database(db_url.rsplit("/", 1)[0])


def workload(seed: int, tickets: int = 12) -> list[bytes]:
    """A realistic mix, with rejections sprinkled in (garbage, a wrong transition)."""
    commands = generate_workload(seed, tickets=tickets, start=START, days=4)
    raws = [json.dumps(c).encode() for c in commands]
    for n, at in enumerate(range(len(raws) // 3, len(raws), len(raws) // 3)):
        victim = commands[at - 1]
        wrong = {**victim, "message_id": f"wrong-{n}", "type": "publish_as_article",
                 "payload": {"article_id": "KB-1"}}
        raws[at:at] = [b"{not json", json.dumps(wrong).encode()]
    return raws


def history(app: TicketingApp) -> list[dict[str, Any]]:
    """Every stream event in recording order, without the wall-clock fields
    (recorded_at, which feeds the hash)."""
    return [{k: v for k, v in app.event_log.envelope_of(r).items() if k not in VOLATILE}
            for r in app.event_log.stream_records()]


def applied(app: TicketingApp, raws: list[bytes], sizes: list[int]) -> list[Outcome]:
    outcomes, start, turn = [], 0, 0
    while start < len(raws):
        size = sizes[turn % len(sizes)]
        outcomes += app.apply_batch(raws[start:start + size])
        start, turn = start + size, turn + 1
    return outcomes


def test_a_batch_gives_the_outcomes_and_history_of_one_by_one(db_url: str) -> None:
    raws = workload(3)
    with build_app(Settings(db=db_url)) as alone:
        expected = [alone.apply(raw) for raw in raws]
        expected_history = history(alone)
    with build_app(Settings(db=second_database(db_url))) as batched:
        assert applied(batched, raws, [50, 7, 200]) == expected
        assert history(batched) == expected_history
        assert verify_store(batched) == []
    assert {o.status for o in expected} >= {"accepted", "rejected"}  # the mix has both


def test_a_message_twice_in_one_batch_is_a_duplicate_the_second_time(db_url: str) -> None:
    create = command_line("m-1", "create_ticket", "T-1", T0, "customer", create_payload())
    with build_app(Settings(db=db_url)) as app:
        outcomes = app.apply_batch([create, create, b"not json", b"not json"])
        assert [o.status for o in outcomes] == ["accepted", "duplicate", "rejected",
                                                "duplicate"]
        assert [e["version"] for e in app.event_log.ticket_events("T-1")] == [1]
        assert len(list(app.event_log.rejected())) == 1


def test_a_batch_holding_a_message_seen_before_falls_back_to_one_by_one(
    db_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    raws = workload(4, tickets=4)
    with build_app(Settings(db=second_database(db_url))) as reference:
        expected = [reference.apply(raw) for raw in raws]
    with build_app(Settings(db=db_url)) as app:
        assert app.apply_batch(raws[:10]) == expected[:10]
        fallbacks = _fallbacks()
        with caplog.at_level(logging.INFO, logger="ticketflow.application"):
            again = app.apply_batch(raws[5:])  # the first five were recorded already
        assert [o.status for o in again[:5]] == ["duplicate"] * 5
        assert again[5:] == expected[10:]
        assert verify_store(app) == []
    said = [(getattr(r, "ticketflow_event", None), getattr(r, "ticketflow_fields", None))
            for r in caplog.records]
    said = [entry for entry in said if entry[0] == "batch_collided"]
    assert said == [("batch_collided", {"size": len(raws) - 5,
                                        "note": "re-applying one message at a time"})]
    assert _fallbacks() == fallbacks + 1


def _fallbacks() -> float:
    found = REGISTRY.get_sample_value("ticketflow_conflicts_total", {"kind": "batch_fallback"})
    return found or 0.0


def test_a_batch_whose_ticket_another_process_moved_on_is_retried_from_fresh_state(
    db_url: str,
) -> None:
    create = command_line("m-1", "create_ticket", "T-1", T0, "customer", create_payload())
    comment = [command_line(f"c-{n}", "add_comment", "T-1", T0, "customer", {"body": str(n)})
               for n in range(4)]
    with build_app(Settings(db=db_url)) as mine, build_app(Settings(db=db_url)) as theirs:
        mine.apply_batch([create, comment[0]])  # `mine` now caches T-1 at version 2
        assert theirs.apply(comment[1]).status == "accepted"  # the store moves to v3
        outcomes = mine.apply_batch(comment[2:])
        assert [o.status for o in outcomes] == ["accepted", "accepted"]
        assert [e["causation_id"] for e in mine.event_log.ticket_events("T-1")] == [
            "m-1", "c-0", "c-1", "c-2", "c-3"]


@settings(max_examples=5, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 60), min_size=1,
                                                    max_size=4))
def test_random_workloads_in_random_batches_equal_one_by_one(
    tmp_path_factory: pytest.TempPathFactory, seed: int, sizes: list[int],
) -> None:
    raws = workload(seed, tickets=8)
    folder = tmp_path_factory.mktemp("batches")
    with build_app(Settings(db=f"sqlite:///{folder / 'alone.db'}")) as alone:
        expected = [alone.apply(raw) for raw in raws]
        expected_history = history(alone)
    with build_app(Settings(db=f"sqlite:///{folder / 'batched.db'}")) as batched:
        assert applied(batched, raws, sizes) == expected
        assert history(batched) == expected_history
