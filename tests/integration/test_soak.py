"""A short soak of the whole pipeline, as CI runs it: `python -m ticketflow.tools.soak` with
every role a worker process, at a steady rate, on the session's broker. (Long soaks
run outside CI: docs/reliability.md.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from itertools import islice
from pathlib import Path

from ticketflow.tools.soak import Stories


def test_a_short_soak_loses_nothing_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ticketflow.tools.soak", "--minutes", "0.25", "--rate", "8",
         "--kafka", kafka_bootstrap, "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["published"] == 120  # 15 s at 8 a second
    stories = islice(Stories.at_rate(summary["seed"], "any", summary["rate"]), 120)
    assert summary["statuses"] == dict(Counter(expected for _, expected in stories))
    assert (summary["lost"], summary["duplicated"]) == (0, 0)
    assert summary["kafka"]["missing"] == 0 and summary["chain_breaks"] == 0
    assert summary["read_model_differences"] == {} and summary["workers_exited"] == []
    assert summary["timer_events"] > 0  # the overdue tickets' breaches, fired by the timers
    assert set(summary["latency_ms"]) == {"p50", "p99", "max"}
