"""Readable tables for people; the CLI prints JSON instead when asked with --json.

Everything shown here is data, never markup: a comment body `[/bold]`, a ticket id
`[/]` or an emoji code `:smile:` prints as written, and a character that could act on
the terminal or reorder what it shows (ESC, carriage return, C1 controls, bidi
overrides) prints as an escape such as `\\x1b` or `\\u202e`, in reverse video where
the output is a terminal. The only styling is this module's own fixed labels.
The JSON printed (`json_text`) is exact: the same characters escape JSON's way.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ticketflow.schemas.characters import escape, shown_hidden

# Piped output gets a width that fits the report tables instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)
errors = Console(stderr=True)
ESCAPE_STYLE = "reverse"


def literal(value: Any) -> Text:
    """A value as text to show exactly: no markup, emoji codes or highlighting, and
    hidden characters as visible escapes."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():
        return Text(text)
    shown = Text()
    end = 0
    for match in shown_hidden().finditer(text):
        shown.append(text[end:match.start()])
        shown.append(escape(match.group()), style=ESCAPE_STYLE)
        end = match.end()
    shown.append(text[end:])
    return shown


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON of `value` with non-ASCII kept readable, except the hidden characters,
    which are written as JSON escapes: the document decodes to exactly `value`, and
    printing it cannot act on a terminal."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    if text.isascii() and "\x7f" not in text:
        return text  # json.dumps escaped every C0 control inside strings already
    return shown_hidden().sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    """A hidden character as a JSON escape (DEL too, which json.dumps leaves as it is);
    a newline between values is the indent's."""
    char = match.group()
    if char == "\n":
        return char
    return "".join(f"\\u{unit:04x}" for unit in _utf16(char))


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    view = Table(title=literal(title), title_justify="left", header_style="bold")
    for column in columns:
        view.add_column(literal(column))
    for row in rows:
        view.add_row(*(literal(cell) for cell in row))
    console.print(view)


def pairs(title: str, values: dict[str, Any]) -> None:
    table(title, ("field", "value"), values.items())


def say(text: str) -> None:
    """One line for the reader on standard output, shown literally."""
    console.print(literal(text))


def note(text: str) -> None:
    """One line about the run on standard error, shown literally."""
    errors.print(literal(text))


def error(label: str, message: str) -> None:
    """`label: message` on standard error, the label in red."""
    errors.print(Text.assemble((f"{label}:", "red"), " ", literal(message)))


def warning(message: str) -> None:
    errors.print(Text.assemble(("warning:", "yellow"), " ", literal(message)))


def local(instant: str | None, zone: str) -> str | None:
    """An ISO instant shown in the account's time zone."""
    if instant is None:
        return None
    return datetime.fromisoformat(instant).astimezone(ZoneInfo(zone)).isoformat()


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def progress_bar(enabled: bool) -> Progress:
    """A progress bar on standard error (`enabled` False: none, as with --json)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeRemainingColumn(), console=errors, disable=not enabled,
    )
