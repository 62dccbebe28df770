"""The same benchmark on several commits of this repository, in alternating rounds, so a
change is told from the machine: which commit made a same-run ratio move.

    python -m bench.commits 5031249 281c21a 1a62ce6 HEAD        # write, per command
    python -m bench.commits --batch 100 --rounds 3 281c21a HEAD  # write, batches of 100
    python -m bench.commits --replay 281c21a HEAD                # replay into read models

Each commit gets a worktree and a virtualenv of its own under
~/.cache/ticketflow/bench/commits (made once; about a minute each). Rounds alternate
the commits, one process per measurement, so a busy minute falls on all of them.

- **write**: what `bench.write` measures (the demo workload's commands applied through
  the application service, one transaction per command or `--batch` per transaction,
  in a fresh SQLite store) beside the plain eventsourcing saves of the same number of
  events, in the same process: events/s and their ratio.
- **replay** (`--replay`): `ticketflow replay --from-start` over one store per commit,
  each made by that commit's `ticketflow apply` of the same commands (written by the
  newest commit's workload), less the commit's start-up (`ticketflow --help`).

The medians over the rounds are printed as JSON on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import say

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "ticketflow" / "bench" / "commits"
TICKETS = 300  # the write rounds' workload: ~2,000 commands
REPLAY_TICKETS = 4_000  # the replay's store: ~28,000 commands, ~60,000 events

#: Run in a commit's tree with its own interpreter: one write measurement as JSON.
WRITE = """
import json, sys, tempfile
sys.path.insert(0, ".")
from bench.write import commands, ours, baseline
batch = int(sys.argv[1])
raws = commands({tickets})
payload = sum(map(len, raws)) // len(raws)
folder = tempfile.mkdtemp()
events, seconds = ours(f"sqlite:///{{folder}}/ours.db", raws, batch)
plain = baseline(f"sqlite:///{{folder}}/plain.db", events, batch, payload)
print(json.dumps({{"ours": events / seconds, "baseline": plain}}))
"""


def tree(revision: str) -> Path:
    """A worktree of `revision` with its virtualenv (made once, kept in CACHE)."""
    sha = _git("rev-parse", "--short=10", f"{revision}^{{commit}}")
    path = CACHE / sha
    if not (path / ".venv" / "bin" / "ticketflow").exists():
        say(f"commits: a worktree and virtualenv for {revision} ({sha}) …")
        if not path.exists():
            _git("worktree", "add", "--detach", "-f", str(path), sha)
        subprocess.run([sys.executable, "-m", "venv", str(path / ".venv")], check=True)
        subprocess.run([str(path / ".venv/bin/pip"), "install", "-q", "-c", "constraints.txt",
                        "-e", ".[dev]"], cwd=path, check=True)
    return path


def write_round(path: Path, batch: int) -> dict[str, float]:
    out = subprocess.run([str(path / ".venv/bin/python"), "-c",
                          WRITE.format(tickets=TICKETS), str(batch)],
                         cwd=path, check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.splitlines()[-1])
    return {**figures, "ratio": figures["ours"] / figures["baseline"]}


def replay_store(path: Path, commands: Path, folder: Path) -> str:
    url = f"sqlite:///{folder / (path.name + '.db')}"
    subprocess.run([str(path / ".venv/bin/ticketflow"), "apply", str(commands), "--db", url],
                   cwd=path, capture_output=True, check=False)  # exit 1: some refused
    return url


def replay_round(path: Path, url: str) -> dict[str, float]:
    ticketflow = str(path / ".venv/bin/ticketflow")
    replay = _seconds([ticketflow, "replay", "--from-start", "--db", url], path)
    start_up = _seconds([ticketflow, "--help"], path)
    return {"seconds": replay - start_up, "start_up": start_up}


def _seconds(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def _git(*argv: str) -> str:
    return subprocess.run(["git", *argv], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs="+", help="commits to compare (oldest first)")
    parser.add_argument("--batch", type=int, default=1, help="commands per transaction")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--replay", action="store_true", help="the replay, not the write")
    args = parser.parse_args()
    paths = {revision: tree(revision) for revision in args.revisions}
    rounds: dict[str, list[dict[str, float]]] = {revision: [] for revision in paths}
    with tempfile.TemporaryDirectory(prefix="ticketflow-bench-commits-") as scratch:
        folder = Path(scratch)
        if args.replay:
            commands = folder / "commands.jsonl"
            sys.path.insert(0, str(ROOT))
            from bench.write import commands as workload  # noqa: PLC0415 - this tree's
            commands.write_bytes(b"\n".join(workload(REPLAY_TICKETS)) + b"\n")
            say("commits: a store per commit (ticketflow apply) …")
            urls = {revision: replay_store(path, commands, folder)
                    for revision, path in paths.items()}
        for number in range(1, args.rounds + 1):
            for revision, path in paths.items():
                say(f"commits: round {number} of {args.rounds}, {revision}")
                rounds[revision].append(replay_round(path, urls[revision]) if args.replay
                                        else write_round(path, args.batch))
    medians = {revision: {name: round(statistics.median(r[name] for r in measured), 3)
                          for name in measured[0]}
               for revision, measured in rounds.items()}
    json.dump({"measure": "replay" if args.replay else f"write, batch {args.batch}",
               "medians": medians,
               "rounds": {revision: [{k: round(v, 3) for k, v in r.items()} for r in measured]
                          for revision, measured in rounds.items()}},
              sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
