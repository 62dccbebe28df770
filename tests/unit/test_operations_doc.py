"""The runbook (docs/operations.md) names every log event the engine logs and every
metric it exports, so an operator can look up any line or sample they see."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from ticketflow import metrics

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ("ticketflow", "domain", "schemas", "projections", "consumers", "producers")
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()


def _table_names(section: str) -> set[str]:
    """The names in the first column of the section's table (`a` / `b` rows give both)."""
    body = RUNBOOK.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in body.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`([a-z_]+)`", cell)}


def _logged_events() -> set[str]:
    """Every event name passed as a literal to `event(...)` / `logs.event(...)`."""
    found: set[str] = set()
    for folder in ENGINE:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and len(node.args) >= 2):
                    continue
                called = node.func
                name = called.attr if isinstance(called, ast.Attribute) else getattr(
                    called, "id", None)
                if name == "event" and isinstance(node.args[1], ast.Constant):
                    found.add(str(node.args[1].value))
    return found


def test_every_logged_event_is_in_the_runbooks_log_table() -> None:
    logged = _logged_events()
    assert {"event_parked", "webhook_delivery", "batch_applied"} <= logged
    assert sorted(logged - _table_names("Logs")) == []


def test_every_metric_is_in_the_runbooks_metrics_table() -> None:
    exported = {family.name for value in vars(metrics).values()
                if isinstance(value, MetricWrapperBase) for family in value.describe()}
    assert {"ticketflow_parked_events", "ticketflow_webhook_backlog"} <= exported
    documented = _table_names("Metrics")
    # a counter is exported as NAME_total; prometheus-client keeps NAME without it
    assert sorted(name for name in exported
                  if name not in documented and f"{name}_total" not in documented) == []
