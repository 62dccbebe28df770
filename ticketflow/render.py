"""Readable tables for people; the CLI prints JSON instead when asked with --json."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

# Piped output gets a width that fits the report tables instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)
errors = Console(stderr=True)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    view = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(view)


def pairs(title: str, values: dict[str, Any]) -> None:
    table(title, ("field", "value"), values.items())


def local(instant: str | None, zone: str) -> str | None:
    """An ISO instant shown in the account's time zone."""
    if instant is None:
        return None
    return datetime.fromisoformat(instant).astimezone(ZoneInfo(zone)).isoformat()


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
