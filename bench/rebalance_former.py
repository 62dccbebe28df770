"""`ticketflow worker …` as it joined its consumer groups before issue 20: the baseline
of bench.rebalance, run as the same worker process with only its membership changed.

    python -m bench.rebalance_former worker commands --db … --kafka …

Dynamic members (no `group_instance_id`, whatever the worker id), eager assignment
(kafka-python's default range / round-robin: every member gives up all its partitions
at each rebalance), 3 s heartbeats, 10 s session. Kept apart from bench.rebalance so
that the process starts as fast as `python -m ticketflow.cli`.
"""

from __future__ import annotations

import sys
from typing import Any

from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from ticketflow import cli, serve

FORMER: dict[str, Any] = {
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 3_000,
    "partition_assignment_strategy": [RangePartitionAssignor, RoundRobinPartitionAssignor],
}


def former_membership(group: str, worker: str | None) -> dict[str, Any]:
    """consumers/group.py's `membership` before issue 20: the same for every group."""
    return dict(FORMER)


if __name__ == "__main__":
    serve.membership = former_membership  # type: ignore[assignment]  # the one change
    raise SystemExit(cli.main(sys.argv[1:]))
