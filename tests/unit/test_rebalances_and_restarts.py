"""What every worker tells its operator about its group and its roles, with fakes: each
rebalance (`partitions_assigned` / `_revoked` / `_lost`, counted by change, the lag of a
partition gone no longer reported), the consumer lag of each partition it holds, and each
restart of a failing role (`role_restarting`, counted by role and cause)."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack

import pytest
from kafka.structs import TopicPartition

from tests.support.observed import Said, exported, fields, said, sample
from ticketflow import metrics, serve
from ticketflow.consumers.group import RebalanceLog, record_lag
from ticketflow.serve import Loop, Role

GROUP = "ticketflow-commands:test.commands"
TOPIC = "test.commands"
P0, P1, P2, P3 = (TopicPartition(TOPIC, n) for n in range(4))


def changes() -> dict[str, float]:
    return {change: sample("ticketflow_rebalances_total", group=GROUP, change=change)
            for change in ("assigned", "revoked", "lost")}


def lag_of(partition: TopicPartition) -> dict[str, str]:
    return {"group": GROUP, "topic": TOPIC, "partition": str(partition.partition)}


def test_each_rebalance_is_logged_and_counted_and_a_partition_gone_drops_its_lag(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made: list[RebalanceLog] = []  # made in the role's thread, called on kafka's own
    subscriber = threading.Thread(target=lambda: made.append(RebalanceLog(GROUP)),
                                  name="commands")
    subscriber.start()
    subscriber.join()
    listener, before = made[0], changes()
    for partition in (P0, P1):
        metrics.CONSUMER_LAG.labels(*lag_of(partition).values()).set(5)
    with caplog.at_level(logging.INFO, logger="ticketflow"):
        listener.on_partitions_assigned([P1, P0])
        listener.on_partitions_revoked([P0])
        listener.on_partitions_lost([P1])
        listener.on_partitions_revoked([])  # nothing changed hands: no line, no count
    said_by = {"role": "commands", "group": GROUP}
    assert said(caplog, "partitions_assigned") == [
        Said("INFO", {**said_by, "partitions": [f"{TOPIC}/0", f"{TOPIC}/1"]})]
    assert said(caplog, "partitions_revoked") == [
        Said("INFO", {**said_by, "partitions": [f"{TOPIC}/0"]})]
    assert said(caplog, "partitions_lost") == [
        Said("WARNING", {**said_by, "partitions": [f"{TOPIC}/1"]})]
    assert {change: count - before[change] for change, count in changes().items()} == {
        "assigned": 1, "revoked": 1, "lost": 1}
    assert not exported("ticketflow_consumer_lag", **lag_of(P0))
    assert not exported("ticketflow_consumer_lag", **lag_of(P1))


class Assigned:
    """A consumer's view of its partitions: their ends and its positions."""

    def __init__(self) -> None:
        self.ends = {P0: 10, P1: 4, P2: None, P3: 8}
        self.positions = {P0: 7, P1: 6, P2: 0}  # P3's is being reset: not known

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.ends[partition]

    def position(self, partition: TopicPartition, timeout_ms: int = 0) -> int:
        return self.positions[partition]  # KeyError for P3, as a reset raises


def test_the_lag_of_each_partition_held_is_reported_where_it_is_known() -> None:
    assert record_lag(Assigned(), GROUP) == {P0: 3, P1: 0}  # type: ignore[arg-type]
    assert sample("ticketflow_consumer_lag", **lag_of(P0)) == 3
    assert sample("ticketflow_consumer_lag", **lag_of(P1)) == 0  # past the end known: 0
    assert not exported("ticketflow_consumer_lag", **lag_of(P2))
    assert not exported("ticketflow_consumer_lag", **lag_of(P3))


class Unhurried(threading.Event):
    """A stop event whose waits return at once: the role's backoff is asserted, not slept
    (a timed wait never returns under libfaketime, as in the suite's +400 d pass)."""

    def wait(self, timeout: float | None = None) -> bool:
        return self.is_set()


def test_a_failing_step_is_logged_and_counted_and_the_role_rebuilt_after_a_backoff(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serve, "FIRST_BACKOFF", 0.01)
    stop = Unhurried()
    built: list[int] = []
    closed: list[int] = []

    def build() -> Loop:
        n = len(built)  # the first loop's step fails, the second's stops the role
        built.append(n)

        def step() -> int:
            if n == 0:
                raise ConnectionError("broker away")
            stop.set()
            return 1

        opened = ExitStack()
        opened.callback(lambda: closed.append(n))
        return Loop(step, opened)

    restarts = sample("ticketflow_role_restarts_total", role="relay", cause="ConnectionError")
    with caplog.at_level(logging.INFO, logger="ticketflow.serve"):
        Role("relay", build).run(stop)
    assert said(caplog, "role_restarting") == [Said("ERROR", {
        "role": "relay", "cause": "ConnectionError", "in_seconds": 0.01})]
    assert fields(caplog, "role_started") == [{"role": "relay"}] * 2
    assert fields(caplog, "role_stopped") == [{"role": "relay"}]
    assert closed == [0, 1]  # the failed loop closed before it was built again
    assert sample("ticketflow_role_restarts_total", role="relay",
                  cause="ConnectionError") == restarts + 1
