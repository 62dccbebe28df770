"""What every benchmark shares: timing, same-run baselines as ratios, the services.

Each figure is measured beside a baseline taken in the same run on the same machine
(the raw library underneath), and reported with their ratio: the machine is shared
and noisy, so absolute times drift, ratios much less. `alternate` runs ours and the
baseline in turns and keeps each one's best round, so a burst of load from elsewhere
is unlikely to decide a ratio.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.kafka import free_ports
from tests.support.postgres import PostgresCluster, create_database
from ticketflow.tools.kafka_broker import LocalKafka

Figures = dict[str, Any]


def say(text: str) -> None:
    """Progress goes to stderr; stdout is the JSON document."""
    print(text, file=sys.stderr, flush=True)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def timed(work: Callable[[], int]) -> tuple[int, float]:
    """(what `work` returned — a count — and the seconds it took)."""
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def alternate(ours: Callable[[], float], baseline: Callable[[], float],
              rounds: int = 2) -> tuple[float, float]:
    """Each side's best rate over `rounds` turns (baseline first, then ours, …)."""
    best_ours = best_base = 0.0
    for _ in range(rounds):
        best_base = max(best_base, baseline())
        best_ours = max(best_ours, ours())
    return best_ours, best_base


def compared(ours: float, baseline: float, unit: str, goal: float | None = None,
             **extra: Any) -> Figures:
    """One figure beside its baseline: higher is better for both."""
    ratio = round(ours / baseline, 3) if baseline else None
    out: Figures = {"ours": ours, "baseline": baseline, "unit": unit, "ratio": ratio}
    if goal is not None:
        out["goal_ratio"] = goal
        out["goal_met"] = ratio is not None and ratio >= goal
    return {**out, **extra}


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB: VmHWM, which (unlike
    getrusage's maxrss) starts afresh in a child started by exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine() -> Figures:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "load_average": os.getloadavg()}


@contextmanager
def postgres() -> Iterator[Callable[[], str]]:
    """A private PostgreSQL server; yields a maker of fresh, empty database URLs."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield lambda: create_database(cluster.server_url)
    finally:
        cluster.stop()


@contextmanager
def kafka() -> Iterator[str]:
    """A private single-node Kafka broker on free loopback ports; yields its address."""
    port, controller = free_ports(2)
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-kafka-"))
    broker = LocalKafka(port=port, controller_port=controller, data_dir=folder, echo=None)
    broker.start(timeout=180)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def emit(document: Figures) -> None:
    print(json.dumps(document, indent=2), flush=True)
