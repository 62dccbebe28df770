"""Recovery of a consumer group when one of two workers is killed (SIGKILL) and
started again, or stopped (SIGTERM): how long each partition gets no records.

Six partitions get a record each every 20 ms. Two consumer processes share them, with
ours — the membership `ticketflow worker` uses (`consumers/group.py`: static members
under a worker id, cooperative-sticky assignment, 1 s heartbeats, 10 s session) — or
the baseline: what ticketflow used before (dynamic members, range/round-robin eager
assignment, 3 s heartbeats, 10 s session). Worker B is killed and started again 1 s
later (a crashed process restarted by its supervisor), or stopped gracefully and not
restarted (a drain). The figure is the longest gap between two records of a partition
in the window around it: for the *untouched* partitions (those A owned all along) and
for B's partitions.

    python -m bench.rebalance            # starts a private broker; or TICKETFLOW_KAFKA=…
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from itertools import pairwise
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.producer import KafkaProducer

from bench.common import Figures, emit, kafka, machine, say
from ticketflow.consumers.group import close_and_leave, membership

PARTITIONS = 6
EVERY = 0.02
RESTART_AFTER = 1.0
OBSERVE = 16.0
BASELINE: dict[str, Any] = {"session_timeout_ms": 10_000, "heartbeat_interval_ms": 3_000}


class _Say(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked: Any) -> None:
        print("revoked", *sorted(tp.partition for tp in revoked), flush=True)

    def on_partitions_assigned(self, assigned: Any) -> None:
        print("assigned", *sorted(tp.partition for tp in assigned), flush=True)


def consume(bootstrap: str, topic: str, group: str, mode: str, worker: str) -> None:
    """The consumer process: prints `rec PARTITION` per partition per poll with records."""
    options = membership(group, worker) if mode == "ours" else dict(BASELINE)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="latest", enable_auto_commit=True,
                             **options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer.subscribe([topic], listener=_Say())
    while not stop.is_set():
        for tp in consumer.poll(timeout_ms=100):
            print("rec", tp.partition, flush=True)
    admin = {"bootstrap_servers": bootstrap}
    close_and_leave(consumer, admin, leave=True)


class Worker:
    def __init__(self, bootstrap: str, topic: str, group: str, mode: str, name: str,
                 seen: dict[int, list[float]]) -> None:
        self.args = [sys.executable, "-m", "bench.rebalance", "consume", bootstrap, topic,
                     group, mode, name]
        self.seen, self.owned = seen, set[int]()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True,
                                        stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            word, *numbers = line.split()
            if word == "rec":
                self.seen[int(numbers[0])].append(time.monotonic())
            elif word == "assigned":
                self.owned |= {int(n) for n in numbers}
            elif word == "revoked":
                self.owned -= {int(n) for n in numbers}

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)
        self.process.wait(timeout=60)


def _produce(bootstrap: str, topic: str, stop: threading.Event) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    while not stop.is_set():
        for partition in range(PARTITIONS):
            producer.send(topic, b"x", partition=partition)
        stop.wait(EVERY)
    producer.close()


def _longest_gap(times: list[float], start: float, end: float) -> float:
    inside = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in pairwise(inside))


def scenario(bootstrap: str, mode: str, crash: bool, run: int) -> Figures:
    topic = f"bench.rebalance.{mode}.{'kill' if crash else 'stop'}.{run}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    seen: dict[int, list[float]] = defaultdict(list)
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(bootstrap, topic, stop), daemon=True)
    producer.start()
    a = Worker(bootstrap, topic, f"g-{topic}", mode, "worker-a", seen)
    b = Worker(bootstrap, topic, f"g-{topic}", mode, "worker-b", seen)
    try:
        a.start()
        time.sleep(2)
        b.start()
        deadline = time.monotonic() + 60
        while not (a.owned and b.owned and len(a.owned | b.owned) == PARTITIONS
                   and all(seen[p] and seen[p][-1] > time.monotonic() - 0.5
                           for p in range(PARTITIONS))):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{mode}: the group never settled ({a.owned}, {b.owned})")
            time.sleep(0.1)
        time.sleep(2)
        untouched, moved = sorted(a.owned), sorted(b.owned)
        started = time.monotonic()
        b.signal(signal.SIGKILL if crash else signal.SIGTERM)
        if crash:
            time.sleep(RESTART_AFTER)
            b.start()
        time.sleep(OBSERVE)
        end = time.monotonic()
        b.signal(signal.SIGTERM)
        a.signal(signal.SIGTERM)
    finally:
        stop.set()
        for worker in (a, b):
            if worker.process and worker.process.poll() is None:
                worker.process.kill()
    window = (started - 0.5, end)
    figures: Figures = {
        "untouched_partitions_longest_gap_s": round(max(
            _longest_gap(seen[p], *window) for p in untouched), 2),
        "moved_partitions_longest_gap_s": round(max(
            _longest_gap(seen[p], *window) for p in moved), 2),
        "untouched": untouched, "of_the_stopped_worker": moved,
    }
    say(f"{mode} {'kill -9 + restart' if crash else 'SIGTERM'}: {figures}")
    return figures


def run(bootstrap: str) -> Figures:
    results: Figures = {}
    for crash in (True, False):
        name = "kill_and_restart" if crash else "graceful_stop"
        ours = scenario(bootstrap, "ours", crash, 1)
        baseline = scenario(bootstrap, "baseline", crash, 1)
        results[name] = {"ours": ours, "baseline": baseline,
                         "goal_untouched_s": 1.0,
                         "goal_met": ours["untouched_partitions_longest_gap_s"] <= 1.0}
    return results


def main() -> int:
    with ExitStack() as services:
        bootstrap = os.environ.get("TICKETFLOW_KAFKA") or services.enter_context(kafka())
        emit({"machine": machine(), "results": {"rebalance": run(bootstrap)}})
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["consume"]:
        consume(*sys.argv[2:7])
    else:
        raise SystemExit(main())
