"""Structured logs for the long-running processes: one event per line.

`event(log, "batch_applied", partition=3, size=120)` logs the event name with its
fields. `configure()` sets the output: JSON lines when `TICKETFLOW_LOG_FORMAT=json`
(`{"ts", "level", "logger", "event", "role", "process", …fields}`), else a readable
line (`2026-11-23T09:00:00.123Z INFO commands[4711] batch_applied partition=3 size=120`).
The role is the thread's name (`ticketflow serve` runs each role in a thread named
after it) unless the event names it (a `role` field); the process is the OS process
id, and the worker id when one is given.

Fields are ids, counts, offsets and codes: never a subject, a body or a comment (the
callers pass no such thing; see docs/operations.md for each event's fields).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

FORMAT_ENV = "TICKETFLOW_LOG_FORMAT"
LEVEL_ENV = "TICKETFLOW_LOG_LEVEL"
#: The `extra` key that carries an event's name and fields through `logging`.
FIELDS = "ticketflow_fields"
EVENT = "ticketflow_event"
#: Set once per process by the worker (`--worker-id` / TICKETFLOW_WORKER_ID).
_identity: dict[str, Any] = {}


def event(logger: logging.Logger, name: str, level: int = logging.INFO, *,
          exc_info: bool = False, **fields: Any) -> None:
    """Log one event with its fields (None-valued fields are left out)."""
    if logger.isEnabledFor(level):
        kept = {key: value for key, value in fields.items() if value is not None}
        logger.log(level, "%s", name, exc_info=exc_info,
                   extra={EVENT: name, FIELDS: kept})


def set_worker(worker_id: str | None) -> None:
    """Name this process in every line (the static-membership id)."""
    if worker_id:
        _identity["worker"] = worker_id


def _base(record: logging.LogRecord) -> dict[str, Any]:
    role = record.threadName if record.threadName not in (None, "MainThread") else "main"
    return {"role": role, "process": record.process, **_identity}


def _timestamp(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname,
                                "logger": record.name,
                                "event": getattr(record, EVENT, None) or record.getMessage()}
        line.update(_base(record))
        line.update(getattr(record, FIELDS, {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = _base(record)
        fields = dict(getattr(record, FIELDS, {}))
        who = f"{fields.pop('role', base['role'])}[{base.get('worker', base['process'])}]"
        text = " ".join([_timestamp(record), record.levelname, who, record.getMessage(),
                         *(f"{key}={_value(value)}" for key, value in fields.items())])
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _value(value: Any) -> str:
    """A bare word as is; text with spaces or quotes quoted; anything else compact JSON."""
    if isinstance(value, str):
        plain = value and not any(c in value for c in ' "=\n')
        return value if plain else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


def formatter(kind: str | None = None) -> logging.Formatter:
    kind = (kind or os.environ.get(FORMAT_ENV, "")).strip().lower()
    return JsonFormatter() if kind == "json" else ReadableFormatter()


_configured = threading.Lock()


def configure(kind: str | None = None, stream: Any = None) -> None:
    """Root logging for a worker: one handler on stderr, INFO (TICKETFLOW_LOG_LEVEL)."""
    with _configured:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "ticketflow", False):
                root.removeHandler(handler)
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(formatter(kind))
        handler.ticketflow = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(os.environ.get(LEVEL_ENV, "INFO").upper())
        # kafka-python's INFO is per-partition chatter; its warnings stay.
        logging.getLogger("kafka").setLevel(logging.WARNING)
