"""The audit log's stored-roots layouts side by side on the SQLite write path, one
transaction per command, in one run (docs/performance.md, "Stored roots by span"):

- `off`: the same engine with the log switched off (the baseline);
- `nodes`: the layout before spans — a row per node and a position index, entries with
  time-ordered ids — its recorder taken from git (`git show cfefdb9:ticketflow/log_tree.py`);
- `spans`: this tree's layout.

Rounds alternate (each on a fresh store), the best of each is kept and the median of the
ratios of paired rounds reported; also the WAL frames a single-command commit writes
(deterministic: the growth of the WAL over 120 commits with no checkpoint between).

    python -m bench.audit_log_layouts [--tickets 300] [--rounds 9] [--batch 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ticketflow.domain.audit_log as domain_log
from bench.audit_log import without_log
from bench.write import commands
from ticketflow import log_tree, store
from ticketflow.bootstrap import build_app
from ticketflow.settings import Settings

NODES_COMMIT = "cfefdb9"
KINDS = ("off", "nodes", "spans")
FRAME = 4096 + 24  # a WAL frame: a page and its header


def nodes_recorder() -> type:
    """The node-per-row recorder, as that commit had it."""
    source = subprocess.run(["git", "show", f"{NODES_COMMIT}:ticketflow/log_tree.py"],
                            check=True, capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout
    path = Path(tempfile.mkdtemp()) / "nodes_log_tree.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("nodes_log_tree", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nodes_log_tree"] = module
    spec.loader.exec_module(module)
    return module.LoggedSQLiteRecorder  # type: ignore[no-any-return]


class Layouts:
    def __init__(self) -> None:
        self.nodes, self.spans = nodes_recorder(), log_tree.LoggedSQLiteRecorder
        self.entry_id = domain_log.entry_id
        self.folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-layouts-"))
        self.count = 0

    def choose(self, kind: str) -> None:
        store.LoggedSQLiteRecorder = self.nodes if kind == "nodes" else self.spans  # type: ignore[misc]
        entry_id = self.entry_id
        domain_log.entry_id = (  # type: ignore[assignment]
            (lambda first, at, near=None: entry_id(first, at)) if kind == "nodes" else entry_id)

    def path(self) -> Path:
        self.count += 1
        return self.folder / f"store-{self.count}.db"

    def rate(self, kind: str, raws: list[bytes], batch: int) -> float:
        self.choose(kind)
        with build_app(Settings(db=f"sqlite:///{self.path()}")) as app:
            adapted = without_log(app) if kind == "off" else app
            started, events = time.perf_counter(), 0
            for start in range(0, len(raws), batch):
                if batch == 1:
                    events += len(adapted.apply(raws[start]).events)
                else:
                    events += sum(len(o.events)
                                  for o in adapted.apply_batch(raws[start:start + batch]))
            return events / (time.perf_counter() - started)

    def frames(self, kind: str, raws: list[bytes]) -> float:
        self.choose(kind)
        path = self.path()
        with build_app(Settings(db=f"sqlite:///{path}")) as app:
            adapted = without_log(app) if kind == "off" else app
            for raw in raws[:5]:
                adapted.apply(raw)
            wal = Path(f"{path}-wal")
            before = wal.stat().st_size
            for raw in raws[5:125]:
                adapted.apply(raw)
            return (wal.stat().st_size - before) / FRAME / 120


def run(tickets: int, rounds: int, batch: int) -> dict[str, Any]:
    raws = commands(tickets)
    layouts = Layouts()
    found: dict[str, Any] = {"load_average_start": os.getloadavg(), "commands": len(raws),
                             "batch": batch, "rounds": rounds}
    found["wal_frames_per_commit"] = {k: round(layouts.frames(k, raws), 2) for k in KINDS}
    per: dict[str, list[float]] = {k: [] for k in KINDS}
    for n in range(rounds):
        for kind in KINDS if n % 2 == 0 else KINDS[::-1]:
            per[kind].append(round(layouts.rate(kind, raws, batch), 1))
    found["events_per_second"] = per
    for kind in ("nodes", "spans"):
        found[f"{kind}_ratio_of_bests"] = round(max(per[kind]) / max(per["off"]), 3)
        found[f"{kind}_median_paired_ratio"] = round(statistics.median(
            a / b for a, b in zip(per[kind], per["off"], strict=True)), 3)
    found["load_average_end"] = os.getloadavg()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_log_layouts",
                                     description=__doc__)
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.tickets, args.rounds, args.batch), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
