"""One place reads the wall clock (issue #12): `ticketflow/clock.py`. Everything else that
needs "now" takes the engine's injectable clock, so TICKETFLOW_CLOCK moves it, and a
test's outcome never depends on the date it runs. Checked on the source (ast), with
import aliases followed: `from datetime import datetime as dt; dt.now()` counts, and so
does a reference that is not called (`default_factory=datetime.now`).

Durations are not dates: `time.perf_counter` and `time.monotonic` are fine."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: First-party source: the engine's folders (installed under `ticketflow.`) and bench/.
FOLDERS = ("ticketflow", "domain", "schemas", "producers", "consumers", "projections",
           "bench")
#: What reads the wall clock, by its qualified name.
WALL_CLOCK = frozenset({
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today", "time.time", "time.time_ns",
})
#: The clock itself.
THE_CLOCK = "ticketflow/clock.py"
#: Readers that decide no outcome, each checked by hand, with how many reads it has.
#: (ticketflow/logs.py needs no entry: a log line's timestamp is `record.created`,
#: which the logging module stamps; nothing here reads it for a decision.)
ALLOWED = Counter({
    # The rate limiter's windows are kept by the `limits` library in its own time base,
    # time.time(); Retry-After is its reset instant minus that same base. Which request
    # is refused is the library's count, not this read; it changes only the hint.
    ("ticketflow/http/rates.py", "time.time"): 1,
    # The rebalance benchmark measures gaps between the workers' log lines, stamped in
    # wall time by `logging`; the instants it compares with them are read the same way.
    ("bench/rebalance.py", "time.time"): 1,
})


def aliases(tree: ast.Module) -> dict[str, str]:
    """Each name the module binds by import → what it names (`dt` → `datetime.datetime`)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def qualified(node: ast.expr, names: dict[str, str]) -> str | None:
    """`a.b.c` with `a` read through the module's imports; None for anything else."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = qualified(node.value, names)
        return f"{base}.{node.attr}" if base else None
    return None


def wall_clock_reads(source: str) -> list[tuple[int, str]]:
    """(line, qualified name) of every wall-clock read in `source`, called or not."""
    tree = ast.parse(source)
    names = aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute) and isinstance(
                getattr(node, "ctx", None), ast.Load):
            name = qualified(node, names)
            if name in WALL_CLOCK:
                found.append((node.lineno, name))
    return sorted(found)


def sources() -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))


@pytest.fixture(scope="module")
def reads() -> dict[tuple[str, str], list[int]]:
    """Every wall-clock read outside the clock: (file, name) → lines."""
    found: dict[tuple[str, str], list[int]] = {}
    for path in sources():
        relative = path.relative_to(ROOT).as_posix()
        if relative == THE_CLOCK:
            continue
        for line, name in wall_clock_reads(path.read_text(encoding="utf-8")):
            found.setdefault((relative, name), []).append(line)
    return found


def test_nothing_but_the_clock_reads_the_wall_clock(
    reads: dict[tuple[str, str], list[int]],
) -> None:
    unexpected = {f"{path}:{','.join(map(str, lines))} {name}"
                  for (path, name), lines in reads.items()
                  if len(lines) > ALLOWED[(path, name)]}
    assert unexpected == set(), (f"{sorted(unexpected)}: use the engine's clock"
                                 " (ticketflow.clock: a `Clock` handed in, default_clock()"
                                 " or Settings.clock)")


def test_every_allowance_is_still_needed(reads: dict[tuple[str, str], list[int]]) -> None:
    assert {where: len(reads.get(where, [])) for where in ALLOWED} == dict(ALLOWED)


def test_the_scan_covers_the_engine_and_the_benchmarks() -> None:
    scanned = {path.relative_to(ROOT).as_posix() for path in sources()}
    assert {THE_CLOCK, "ticketflow/http/rates.py", "bench/http.py", "bench/latency.py",
            "domain/ticket.py", "consumers/commands.py"} <= scanned
    assert wall_clock_reads((ROOT / THE_CLOCK).read_text()) != []  # it sees the clock's own


@pytest.mark.parametrize("source", [
    "from datetime import UTC, datetime\nat = datetime.now(UTC)",
    "import datetime\nat = datetime.datetime.now(datetime.UTC)",
    "from datetime import datetime as dt\nat = dt.utcnow()",
    "from datetime import date\nday = date.today()",
    "import datetime as d\nday = d.date.today()",
    "import time\nstamp = time.time()",
    "from time import time\nstamp = time()",
    "from time import time_ns as ns\nstamp = ns()",
    "from datetime import datetime\nfrom dataclasses import field\n"
    "at = field(default_factory=datetime.now)",  # a read deferred is a read
    "from datetime import datetime\ndef f():\n    return datetime.today()",
])
def test_the_detector_finds_a_wall_clock_read(source: str) -> None:
    assert len(wall_clock_reads(source)) == 1


@pytest.mark.parametrize("source", [
    "import time\nstarted = time.perf_counter()\nmoved = time.monotonic()",
    "from datetime import UTC, datetime\nat = datetime.fromisoformat('2026-11-16T14:00Z')",
    "from datetime import datetime\nnow = clock()\nlater = now.replace(hour=1)",
    "def now():\n    return 1\nat = now()",  # a name of its own, not the wall clock
    "from ticketflow.clock import default_clock\nat = default_clock()()",
])
def test_the_detector_passes_what_does_not_read_the_wall_clock(source: str) -> None:
    assert wall_clock_reads(source) == []
