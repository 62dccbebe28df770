"""Group commit at the HTTP door: requests that wait while a batch is written go
together in the next one, each answered as if applied alone, each inside its key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.http.service import GroupCommit
from ticketflow.keys import Keys
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings


@pytest.fixture
def app() -> Iterator[TicketingApp]:
    with build_app(Settings(db="sqlite:///:memory:"), clock=lambda: T0) as store:
        yield store


class Recording:
    """apply_batch, recording each call's size; the first call waits for a signal."""

    def __init__(self, app: TicketingApp) -> None:
        self.app, self.sizes = app, []  # type: ignore[var-annotated]
        self.entered, self.release = threading.Event(), threading.Event()

    def apply_batch(self, raws: Any, bounds: Any = None) -> Any:
        self.sizes.append(len(raws))
        if len(self.sizes) == 1:
            self.entered.set()
            self.release.wait(10)
        return self.app.apply_batch(raws, bounds=bounds)


def test_waiting_requests_are_written_together_each_inside_its_own_key(
    app: TicketingApp,
) -> None:
    keys = Keys(engine_for("sqlite://"), lambda: T0)
    customer, _ = keys.create("personalysispro", ["customer"])
    agent, _ = keys.create("personalysispro", ["agent"])
    recording = Recording(app)
    group = GroupCommit(recording, limit=500)  # type: ignore[arg-type]
    answers: dict[str, Any] = {}

    def send(name: str, raws: list[bytes], key: Any) -> None:
        answers[name] = group.apply(raws, key)

    first = threading.Thread(target=send, args=("create", [command_line(
        "c", "create_ticket", "T-1", T0, "customer", create_payload())], customer))
    first.start()
    assert recording.entered.wait(10)
    resolve = command_line("r", "resolve", "T-1", T0, "agent", {"resolution": "x"})
    waiting = [threading.Thread(target=send, args=("as customer", [resolve], customer)),
               threading.Thread(target=send, args=("as agent", [resolve], agent))]
    for thread in waiting:
        thread.start()
    while len(group._waiting) < 2:  # both queued behind the first batch
        threading.Event().wait(0.01)
    recording.release.set()
    for thread in (first, *waiting):
        thread.join(10)
    assert recording.sizes == [1, 2]  # the two waiting requests went in one batch
    assert answers["create"][0].status == "accepted"
    customer_answer, agent_answer = answers["as customer"][0], answers["as agent"][0]
    assert customer_answer.error["code"] == "forbidden"
    assert agent_answer.status == "accepted"


def test_a_failed_batch_is_answered_to_each_of_its_requests_only(app: TicketingApp) -> None:
    keys = Keys(engine_for("sqlite://"), lambda: T0)
    key, _ = keys.create("personalysispro", ["customer"])

    class Failing:
        def apply_batch(self, raws: Any, bounds: Any = None) -> Any:
            raise RuntimeError("the store went away")

    group = GroupCommit(Failing())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="went away"):
        group.apply([b"{}"], key)
    assert group._waiting == []


def test_a_request_larger_than_the_limit_is_still_written_whole(
    app: TicketingApp,
) -> None:
    keys = Keys(engine_for("sqlite://"), lambda: T0)
    key, _ = keys.create("personalysispro", ["customer"])
    group = GroupCommit(app, limit=2)
    big = [command_line(f"c{n}", "create_ticket", f"T-{n}", T0, "customer", create_payload())
           for n in range(3)]
    assert [o.status for o in group.apply(big, key)] == ["accepted"] * 3
