"""What the two consumer groups (commands, projections) share in joining their topic:
membership settings, the rebalance listener (logs and metrics), lag, and leaving.

Recovery (docs/operations.md): with a worker id (`--worker-id` or TICKETFLOW_WORKER_ID)
a consumer is a *static member* (KIP-345, `group_instance_id`): a restart within the
session timeout gets its partitions back without any rebalance. Assignment is
cooperative (KIP-429, kafka-python's `CooperativeStickyAssignor`): a rebalance moves
only the partitions that change hands, the others keep flowing. A static member never
sends LeaveGroup on close, so a graceful stop removes it through the admin API
(`leave_group`), and its partitions move at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import suppress
from typing import Any

from kafka.admin import KafkaAdminClient, MemberToRemove
from kafka.consumer import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.structs import TopicPartition

from ticketflow import metrics
from ticketflow.logs import event

log = logging.getLogger(__name__)

WORKER_ID_ENV = "TICKETFLOW_WORKER_ID"
#: A killed member's partitions wait this long before moving (a restarted static member
#: takes them back sooner); heartbeats every second detect a dead member within it.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 1_000


def worker_id(given: str | None = None) -> str | None:
    """The worker's id: `--worker-id`, else TICKETFLOW_WORKER_ID, else none (dynamic)."""
    return given or os.environ.get(WORKER_ID_ENV) or None


def membership(group: str, worker: str | None) -> dict[str, Any]:
    """Consumer options for joining `group`: cooperative assignment, and static
    membership under `<worker>:<group role>` when the worker has an id."""
    options: dict[str, Any] = {
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        "partition_assignment_strategy": [CooperativeStickyAssignor],
    }
    if worker:
        options["group_instance_id"] = f"{worker}:{group.split(':', 1)[0]}"[:249]
    return options


class RebalanceLog(ConsumerRebalanceListener):
    """Logs and counts every assignment, revocation and loss of partitions."""

    def __init__(self, group: str) -> None:
        self.group = group
        #: kafka-python calls the listener on its own I/O thread: name the role that
        #: subscribed (the thread ticketflow serve runs it in) instead.
        self.role = threading.current_thread().name

    def _changed(self, change: str, partitions: Any) -> None:
        names = sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)
        if not names:
            return
        metrics.REBALANCES.labels(self.group, change).inc()
        level = logging.WARNING if change == "lost" else logging.INFO
        event(log, f"partitions_{change}", level, role=self.role, group=self.group,
              partitions=names)
        if change != "assigned":
            for tp in partitions:  # no longer this worker's to report
                with suppress(KeyError):
                    metrics.CONSUMER_LAG.remove(self.group, tp.topic, str(tp.partition))

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._changed("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._changed("assigned", assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        self._changed("lost", lost)


def record_lag(consumer: KafkaConsumer, group: str) -> dict[TopicPartition, int]:
    """Consumer lag per assigned partition (high watermark − position), from what the
    last fetches told (no request of its own); also set as the metric."""
    lags: dict[TopicPartition, int] = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            position = consumer.position(tp, timeout_ms=0)
        except Exception:  # not known yet (being reset): no figure this time
            continue
        if position is None:
            continue
        lags[tp] = max(high - position, 0)
        metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lags[tp])
    return lags


def subscribe_when_known(consumer: KafkaConsumer, topic: str, timeout: float = 60.0,
                         group: str | None = None) -> None:
    """Subscribe, then wait until a metadata answer fetched *after* subscribing holds
    the topic's partitions, so the group's first assignment is made from them.

    Two kafka-python 3.0.12 behaviours make the order matter:
    - a group leader assigns partitions from its metadata cache; if the topic is not in
      it yet (just created), the assignment is empty, and the consumer does not rejoin
      when the partitions show up later: it would idle forever;
    - the coordinator's view of the subscribed topics' partitions is only taken when
      metadata arrives after `subscribe`. Subscribing once the topic was already known
      (as this function used to) left that view empty at the first join, so the first
      metadata update after it forced a second rebalance, and a `poll` that returned
      before that rebalance finished (a short timeout) could leave the consumer joined
      with no partitions and fetching nothing, for good (a projection runner stopped
      after its first 9,637 of 298,848 events, spinning a core; docs/decisions.md).
    `topics()` asks the broker each time, so the wait ends on a fresh answer.
    """
    consumer.subscribe([topic], listener=RebalanceLog(group or topic))
    deadline = time.monotonic() + timeout
    while topic not in consumer.topics() or not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no partitions after {timeout:.0f} s;"
                               " create it (ticketflow serve does) and check the broker")
        time.sleep(0.2)


def close_and_leave(consumer: KafkaConsumer, admin_config: dict[str, Any] | None,
                    leave: bool) -> None:
    """Close the consumer (a dynamic member's close sends LeaveGroup); a static member
    that is stopping for good (`leave`) is removed from its group through the admin
    API, so its partitions move now rather than after the session timeout."""
    group = consumer.config.get("group_id")
    instance = consumer.config.get("group_instance_id")
    consumer.close()
    if not (leave and instance and group and admin_config):
        return
    admin = KafkaAdminClient(**admin_config)
    try:
        results = admin.remove_group_members(group, [MemberToRemove(
            group_instance_id=instance, reason="ticketflow worker stopping")])
        event(log, "left_group", group=group, instance=instance,
              result=sorted(getattr(error, "__name__", str(error))
                            for error in results.values()))
    except Exception as exc:  # the session timeout removes it anyway
        event(log, "leave_group_failed", logging.WARNING, group=group, instance=instance,
              error=type(exc).__name__)
    finally:
        admin.close()
