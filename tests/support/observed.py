"""What a worker told its operator during a test: the structured log events `caplog`
caught (ticketflow.logs), and samples of the process' Prometheus registry. Counters
only grow, across tests too: compare a sample before and after."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from prometheus_client import REGISTRY

from ticketflow.logs import EVENT, FIELDS


class Said(NamedTuple):
    level: str
    fields: dict[str, Any]


def said(caplog: pytest.LogCaptureFixture, name: str) -> list[Said]:
    """Every `name` event logged, in order: its level and its fields."""
    return [Said(record.levelname, dict(getattr(record, FIELDS, {})))
            for record in caplog.records if getattr(record, EVENT, None) == name]


def fields(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The fields of every `name` event logged, in order."""
    return [entry.fields for entry in said(caplog, name)]


def sample(name: str, **labels: str) -> float:
    """A sample's value now; 0 when it has none yet (a label set never used)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def exported(name: str, **labels: str) -> bool:
    """Whether the registry holds that sample at all (a gauge never set has none)."""
    return REGISTRY.get_sample_value(name, labels) is not None
