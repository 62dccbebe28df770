"""Recovery of the command consumers' group when one of two `ticketflow worker commands`
processes is killed (SIGKILL) and started again 1 s later, or stopped (SIGTERM): how
long each partition's commands wait.

Real workers on a private PostgreSQL cluster and Kafka broker: worker A starts, then
B, while a publisher sends 200 commands/s (tickets created, then comments on them,
`occurred_at` = now) over the six partitions of support.commands. Once the group has
settled, B is killed and started again 1 s later (a crashed process restarted by its
supervisor), or stopped with SIGTERM and not restarted (a drain). Each worker logs
JSON (TICKETFLOW_LOG_FORMAT=json); the figures come from its lines alone:
`batch_applied` (when, and which partitions' commands it applied) and
`partitions_assigned` / `revoked` / `lost` (which worker owns what). Three ways of
joining the group:

- ours: `--worker-id` (consumers/group.py): static members, cooperative-sticky
  assignment, 1 s heartbeats, 10 s session;
- dynamic: the same worker without an id: cooperative, but a restart is a new member;
- former: the same worker with the membership before issue 20 (bench/rebalance_former.py:
  dynamic, eager range / round-robin, 3 s heartbeats, 10 s session), the baseline.

Per run, from 0.5 s before B's stop until 16 s after its restart (or exit), longer
(≤ 60 s) until every partition flows again:

- the longest time without a batch of the *untouched* partitions (A's all along), and
  of B's;
- how long after B's restart (the new process spawned) or its exit (after the SIGTERM:
  its last batch done, the group left) every one of B's partitions had a batch again;
- when the restarted process logged `serving` and got its partitions, or how long the
  stopped one took to exit;
- the noise floor: the longest gap of any partition in the 3 s before the stop (once B
  has warmed up), and the publisher's own;
- how many batches collided (`batch_collided`: re-applied one message at a time), and
  how many commands were answered `duplicate` (redelivered).

Goals (issue 20): untouched ≤ 1 s; B's back ≤ 2 s after its restart — counted from
the spawn, so the new process's start-up is inside the 2 s.

    python -m bench.rebalance [--runs 3] [--modes ours,dynamic,former]
                              [--scenarios kill,stop] [--rate 200]

Progress goes to stderr, the JSON document (docs/bench-results-rebalance.json) to stdout.
TICKETFLOW_KAFKA=host:port uses a running broker instead of starting one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from bench.common import Figures, emit, kafka, machine, postgres, say
from bench.latency import command
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics, ensure_topics
from ticketflow.settings import Settings
from ticketflow.tools.workers import WorkerProcess

PARTITIONS = 6
TICKETS = 600  # cycled through in order: each partition gets its share all the time
RESTART_AFTER = 1.0
OBSERVE = 16.0  # after the restart (or the SIGTERM): past a 10 s session timeout
#: … and longer, up to this, until every partition flows again (the baseline's may not)
OBSERVE_AT_MOST = 60.0
STEADY = 3.0  # of settled group before the stop, the noise floor's window
CALM, CALM_AT_MOST = 0.5, 60.0  # … waited for: no gap above 0.5 s in it (a minute at most)
GOAL_UNTOUCHED = 1.0
GOAL_BACK = 2.0
MODES = ("ours", "dynamic", "former")
SCENARIOS = {"kill": "kill_and_restart", "stop": "graceful_stop"}


class FormerWorker(WorkerProcess):
    """The same worker, joining its group as before issue 20 (bench/rebalance_former.py)."""

    def argv(self) -> list[str]:
        plain = super().argv()
        return [plain[0], "-m", "bench.rebalance_former", *plain[3:]]


class Followed:
    """A worker's JSON log, read as it grows: its batches' times per partition (shared
    with the other worker's), the partitions it owns, its outcomes, its assignments."""

    def __init__(self, worker: WorkerProcess, batches: dict[int, list[float]]) -> None:
        self.worker, self.batches = worker, batches
        self.position = 0
        self.owned: set[int] = set()
        self.assigned_at: list[float] = []
        self.serving_at: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.collided = 0

    def read(self) -> None:
        path = self.worker.log_path
        if not path.exists():
            return
        with path.open("rb") as log:
            log.seek(self.position)
            chunk = log.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.position += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self._take(line)

    def _take(self, line: str) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            return  # not an event (a traceback's lines)
        at = datetime.fromisoformat(entry.get("ts", "")).timestamp() if "ts" in entry else 0
        name = entry.get("event")
        if name == "batch_applied":
            for where in entry.get("offsets", {}):
                self.batches[_partition(where)].append(at)
            self.outcomes.update(entry.get("outcomes", {}))
        elif name == "partitions_assigned":
            self.owned |= {_partition(where) for where in entry["partitions"]}
            self.assigned_at.append(at)
        elif name in ("partitions_revoked", "partitions_lost"):
            self.owned -= {_partition(where) for where in entry["partitions"]}
        elif name == "serving":
            self.serving_at.append(at)
        elif name == "batch_collided":
            self.collided += 1


def wall_time() -> float:
    """Seconds since the epoch: the workers' log lines are stamped in it (their `ts`),
    so the instants compared with them are read the same way, here and only here."""
    return time.time()


def _partition(where: str) -> int:
    return int(where.rsplit("/", 1)[1])


class Publisher:
    """`rate` commands a second, on a fixed schedule, until stopped (in a thread)."""

    def __init__(self, bootstrap: str, topics: Topics, rate: int) -> None:
        self.client = CommandClient(bootstrap, topics)
        self.rate, self.sent_at = rate, list[float]()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._publish, daemon=True)
        self.tickets = [f"RB-{uuid.uuid4().hex[:10]}" for _ in range(TICKETS)]

    def _publish(self) -> None:
        start, n = time.monotonic(), 0
        while not self.stop.wait(max(0.0, start + n / self.rate - time.monotonic())):
            ticket = self.tickets[n % TICKETS]
            kind = "create_ticket" if n < TICKETS else "add_comment"
            self.client.send_document(command(n, ticket, kind))
            self.sent_at.append(wall_time())
            n += 1
        self.client.flush()

    def __enter__(self) -> Publisher:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self.client.close()


def _longest_gap(times: list[float], start: float, end: float) -> float:
    inside = [start, *(t for t in sorted(times) if start < t < end), end]
    return max(b - a for a, b in pairwise(inside))


def _back_after(times: list[float], since: float) -> float | None:
    """Seconds from `since` to the partition's first batch after it (None: none)."""
    later = [t for t in times if t > since]
    return min(later) - since if later else None


class Run:
    """One scenario once: two workers, a publisher, B stopped (and maybe restarted)."""

    def __init__(self, bootstrap: str, database: str, mode: str, crash: bool,
                 rate: int) -> None:
        self.mode, self.crash, self.rate = mode, crash, rate
        prefix = f"rb{uuid.uuid4().hex[:8]}."
        self.settings = Settings(db=database, kafka=bootstrap, topic_prefix=prefix)
        self.topics = Topics.named(prefix)
        ensure_topics({"bootstrap_servers": bootstrap}, self.topics, PARTITIONS)
        self.logs = Path(tempfile.mkdtemp(prefix="ticketflow-bench-rebalance-"))
        self.batches: dict[int, list[float]] = defaultdict(list)
        self.a, self.b = (Followed(self._worker(name), self.batches) for name in "ab")

    def _worker(self, name: str) -> WorkerProcess:
        env = {"TICKETFLOW_LOG_FORMAT": "json"}
        if self.mode == "ours":
            env["TICKETFLOW_WORKER_ID"] = f"bench-{name}"
        kind = FormerWorker if self.mode == "former" else WorkerProcess
        return kind("commands", self.settings, self.logs / f"worker-{name}.log",
                    partitions=PARTITIONS, env=env)

    def _read(self) -> None:
        for followed in (self.a, self.b):
            followed.read()

    def _wait(self, what: str, done: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.mode}: {what} not within {timeout:.0f} s; logs in"
                                   f" {self.logs}")
            for followed in (self.a, self.b):
                if followed.worker.process is not None and not followed.worker.running \
                        and followed.worker.process.returncode not in (-9, 0):
                    raise RuntimeError(f"worker exited: {followed.worker.output()[-3000:]}")
            time.sleep(0.1)
            self._read()

    def _wait_softly(self, done: Callable[[], bool], until: float) -> None:
        """Until `done` or the wall-clock instant `until`, whichever comes first."""
        while not done() and wall_time() < until:
            time.sleep(0.1)
            self._read()

    def _flowing(self) -> bool:
        recent = wall_time() - 1.0
        return all(self.batches[p] and self.batches[p][-1] > recent
                   for p in range(PARTITIONS))

    def _calm(self) -> bool:
        """No partition went `CALM` s without a batch in the last `STEADY` s."""
        now = wall_time()
        return all(_longest_gap(self.batches[p], now - STEADY, now) <= CALM
                   for p in range(PARTITIONS))

    def _settled(self) -> bool:
        a, b = self.a.owned, self.b.owned
        return bool(a and b and not a & b and len(a | b) == PARTITIONS and self._flowing())

    def measure(self) -> Figures:
        """The run's figures; its workers' logs are deleted after, kept if it failed."""
        with Publisher(self.settings.kafka or "", self.topics, self.rate) as publisher:
            try:
                figures = self._scenario(publisher)
            finally:
                for followed in (self.a, self.b):
                    followed.worker.stop()
        shutil.rmtree(self.logs, ignore_errors=True)
        return figures

    def _scenario(self, publisher: Publisher) -> Figures:
        self.a.worker.start()
        self._wait("worker A owning every partition",
                   lambda: len(self.a.owned) == PARTITIONS and self._flowing())
        self.b.worker.start()
        self._wait("the group settled over A and B", self._settled)
        time.sleep(STEADY)  # B warms up (its tickets read once), then steady, or a minute
        self._wait_softly(self._calm, wall_time() + CALM_AT_MOST)
        untouched, moved = sorted(self.a.owned), sorted(self.b.owned)
        load = os.getloadavg()[0]
        stopped = wall_time()
        if self.crash:
            self.b.worker.kill()
            time.sleep(RESTART_AFTER)
            back_from = wall_time()
            self.b.worker.start()
        else:
            self.b.worker.stop()  # it finishes its batch (after the SIGTERM) and leaves
            back_from = wall_time()
        time.sleep(OBSERVE)
        self._read()
        self._wait_softly(lambda: self._flowing() and all(
            _back_after(self.batches[p], back_from) is not None for p in moved),
            back_from + OBSERVE_AT_MOST)
        end = wall_time()
        return self._figures(untouched, moved, stopped, back_from, end, publisher) | {
            "load_average_1min": round(load, 2)}

    def _figures(self, untouched: list[int], moved: list[int], stopped: float,
                 back_from: float, end: float, publisher: Publisher) -> Figures:
        window = (stopped - 0.5, end)
        back = [_back_after(self.batches[p], back_from) for p in moved]
        assigned = [t - back_from for t in self.b.assigned_at if t > back_from]
        serving = [t - back_from for t in self.b.serving_at if t > back_from]
        figures: Figures = {
            "untouched_longest_gap_s": _rounded(max(
                _longest_gap(self.batches[p], *window) for p in untouched)),
            "stopped_workers_longest_gap_s": _rounded(max(
                _longest_gap(self.batches[p], *window) for p in moved)),
            "stopped_workers_back_s": None if None in back else _rounded(max(
                b for b in back if b is not None)),
            "steady_longest_gap_s": _rounded(max(
                _longest_gap(self.batches[p], stopped - STEADY, stopped)
                for p in range(PARTITIONS))),
            "publisher_longest_gap_s": _rounded(_longest_gap(publisher.sent_at, *window)),
            "untouched": untouched, "of_the_stopped_worker": moved,
            "observed_s": _rounded(end - back_from),
            "outcomes": dict(self.a.outcomes + self.b.outcomes),
            "batches_collided": self.a.collided + self.b.collided,
        }
        if not self.crash:
            figures["stopped_worker_exited_s"] = _rounded(back_from - stopped)
        else:
            figures["restarted_worker_serving_s"] = _rounded(min(serving, default=None))
            figures["restarted_worker_assigned_s"] = _rounded(min(assigned, default=None))
        return figures


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def spread(values: list[float | None]) -> Figures:
    """min / median / max of a figure over the runs (None: some run never got there)."""
    if not values or None in values:
        return {"min": None, "median": None, "max": None, "missing": values.count(None)}
    known = [v for v in values if v is not None]
    return {"min": min(known), "median": round(statistics.median(known), 2),
            "max": max(known)}


FIGURES = ("untouched_longest_gap_s", "stopped_workers_longest_gap_s",
           "stopped_workers_back_s", "steady_longest_gap_s", "publisher_longest_gap_s",
           "restarted_worker_serving_s", "restarted_worker_assigned_s",
           "stopped_worker_exited_s")


def summary(runs: list[Figures]) -> Figures:
    """Each figure's spread over the runs, then every run, and each goal: how many runs
    met it (met: all of them)."""
    out: Figures = {name: spread([run[name] for run in runs])
                    for name in FIGURES if name in runs[0]}
    untouched = sum(run["untouched_longest_gap_s"] <= GOAL_UNTOUCHED for run in runs)
    out["goal_untouched"] = {"at_most_s": GOAL_UNTOUCHED, "runs_met": untouched,
                             "runs": len(runs), "met": untouched == len(runs)}
    if "restarted_worker_serving_s" in runs[0]:  # killed and restarted
        back = sum(run["stopped_workers_back_s"] is not None
                   and run["stopped_workers_back_s"] <= GOAL_BACK for run in runs)
        out["goal_back"] = {"at_most_s_after_restart": GOAL_BACK, "runs_met": back,
                            "runs": len(runs), "met": back == len(runs)}
    return {**out, "runs": runs}


def run(bootstrap: str, database: Callable[[], str], modes: list[str],
        scenarios: list[str], runs: int, rate: int) -> Figures:
    """Each scenario `runs` times per mode, the modes taking turns within each round."""
    measured: dict[tuple[str, str], list[Figures]] = defaultdict(list)
    total, done = len(modes) * len(scenarios) * runs, 0
    for scenario in scenarios:
        for round_ in range(1, runs + 1):
            for mode in modes:
                done += 1
                say(f"[{done}/{total}] {mode}, {SCENARIOS[scenario]}, run {round_}/{runs}")
                figures = Run(bootstrap, database(), mode, scenario == "kill", rate).measure()
                say(f"    untouched {figures['untouched_longest_gap_s']} s, the stopped"
                    f" worker's {figures['stopped_workers_longest_gap_s']} s, back after"
                    f" {figures['stopped_workers_back_s']} s; batches collided"
                    f" {figures['batches_collided']}, duplicates"
                    f" {figures['outcomes'].get('duplicate', 0)} (load"
                    f" {figures['load_average_1min']})")
                measured[(scenario, mode)].append(figures)
    return {SCENARIOS[scenario]: {mode: summary(measured[(scenario, mode)])
                                  for mode in modes} for scenario in scenarios}


def _choices(text: str, allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    chosen = [word.strip() for word in text.split(",") if word.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        raise SystemExit(f"--{what}: choose from {', '.join(allowed)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rebalance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each scenario (3)")
    parser.add_argument("--modes", default=",".join(MODES), help="ours,dynamic,former")
    parser.add_argument("--scenarios", default="kill,stop", help="kill,stop")
    parser.add_argument("--rate", type=int, default=200, help="commands per second (200)")
    args = parser.parse_args(argv)
    modes = _choices(args.modes, MODES, "modes")
    scenarios = _choices(args.scenarios, list(SCENARIOS), "scenarios")
    started = time.monotonic()
    with ExitStack() as services:
        say("starting PostgreSQL and Kafka")
        database = services.enter_context(postgres())
        bootstrap = os.environ.get("TICKETFLOW_KAFKA") or services.enter_context(kafka())
        document: Figures = {"machine": machine(), "settings": {
            "modes": modes, "scenarios": [SCENARIOS[name] for name in scenarios],
            "rate_per_s": args.rate, "partitions": PARTITIONS, "runs": args.runs,
            "restart_after_s": RESTART_AFTER, "observed_at_least_s": OBSERVE,
            "observed_at_most_s": OBSERVE_AT_MOST}}
        results = run(bootstrap, database, modes, scenarios, args.runs, args.rate)
        document["results"] = {"rebalance": results}
        document["load_average_at_end"] = list(os.getloadavg())
        document["seconds"] = round(time.monotonic() - started)
        emit(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
