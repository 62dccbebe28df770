"""Structured logs: one event per line, JSON or readable, with role and process."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from ticketflow import logs
from ticketflow.consumers.group import membership, worker_id


def _line(kind: str, **fields: object) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(kind))
    logger = logging.getLogger("ticketflow.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        thread = threading.Thread(target=logs.event, name="commands",
                                  args=(logger, "batch_applied"), kwargs=fields)
        thread.start()
        thread.join()
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_a_json_line_carries_the_event_its_fields_the_role_and_the_process() -> None:
    line = json.loads(_line("json", size=3, partition=2, offsets={"t/2": [5, 8]},
                            ticket=None))
    assert line["event"] == "batch_applied" and line["role"] == "commands"
    assert line["size"] == 3 and line["partition"] == 2 and line["offsets"] == {"t/2": [5, 8]}
    assert isinstance(line["process"], int) and line["level"] == "INFO"
    assert "ticket" not in line  # None-valued fields are left out


def test_a_readable_line_is_one_line_of_key_values() -> None:
    text = _line("text", size=3, message_id="m 1", partitions=["t/0", "t/1"])
    assert text.count("\n") == 1
    assert " INFO commands[" in text and "batch_applied size=3" in text
    assert 'message_id="m 1"' in text and 'partitions=["t/0","t/1"]' in text


def test_the_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.FORMAT_ENV, "json")
    assert isinstance(logs.formatter(), logs.JsonFormatter)
    monkeypatch.setenv(logs.FORMAT_ENV, "")
    assert isinstance(logs.formatter(), logs.ReadableFormatter)


def test_a_worker_id_makes_the_consumer_a_static_cooperative_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETFLOW_WORKER_ID", "w-2")
    assert worker_id() == "w-2" and worker_id("w-9") == "w-9"
    options = membership("ticketflow-commands", "w-2")
    assert options["group_instance_id"] == "w-2:ticketflow-commands"
    assert [a.name for a in options["partition_assignment_strategy"]] == ["cooperative-sticky"]
    assert options["heartbeat_interval_ms"] < options["session_timeout_ms"]
    assert "group_instance_id" not in membership("ticketflow-commands", None)
