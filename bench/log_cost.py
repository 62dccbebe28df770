"""What the audit log costs a single-command save on SQLite, in two ways that stand up
to a noisy machine better than `bench.audit_log`'s best-of-five on disk
(docs/performance.md, "The write path's log cost, cut"):

    python -m bench.log_cost time [--rounds 10] [--dir /dev/shm]
        the bench workload with the log on and off, in alternating rounds (the order
        swapped each round), each round's ratio; the median ratio is the figure.

    python -m bench.log_cost run on|off N
        one run of the first N commands on /dev/shm under a stepping clock, for an
        instruction count: the log's share of a command is

        valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
            python -m bench.log_cost run on 350      (and on 50, off 350, off 50)

        ((on 350 - on 50) - (off 350 - off 50)) / 300, with PYTHONHASHSEED=0, so the
        start-up cancels out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from bench.audit_log import without_log
from bench.common import say
from bench.write import commands
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings

TICKETS = 300


class SteppingClock:
    """A clock a millisecond later at each reading: runs of the same commands do the
    same work (what is due does not depend on how slowly they ran)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def run(log: bool, raws: list[bytes], folder: str, clock: SteppingClock | None = None,
        ) -> float:
    """Seconds to apply `raws` to a fresh store in `folder`, the log on or off."""
    store = tempfile.mkdtemp(dir=folder)
    with build_app(Settings(db=f"sqlite:///{store}/store.db"), clock=clock) as app:
        adapted = app if log else without_log(app)
        started = time.perf_counter()
        for raw in raws:
            adapted.apply(raw)
        return time.perf_counter() - started


def timed(rounds: int, folder: str) -> None:
    raws = commands(TICKETS)
    ratios = []
    for n in range(rounds):
        order = (True, False) if n % 2 else (False, True)
        seconds = {log: run(log, raws, folder) for log in order}
        ratios.append(seconds[False] / seconds[True])
        say(f"round {n + 1}: log on {seconds[True] / len(raws) * 1e6:.0f} µs a command,"
            f" off {seconds[False] / len(raws) * 1e6:.0f}: {ratios[-1]:.3f}")
    print(f"median ratio (log on against off) over {rounds} rounds:"
          f" {statistics.median(ratios):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    time_parser = sub.add_parser("time")
    time_parser.add_argument("--rounds", type=int, default=10)
    time_parser.add_argument("--dir", default=tempfile.gettempdir())
    run_parser = sub.add_parser("run")
    run_parser.add_argument("mode", choices=["on", "off"])
    run_parser.add_argument("count", type=int)
    args = parser.parse_args()
    if args.what == "time":
        timed(args.rounds, args.dir)
    else:
        run(args.mode == "on", commands(TICKETS)[:args.count], "/dev/shm", SteppingClock())
    return 0


if __name__ == "__main__":
    sys.exit(main())
