"""Running the `ticketflow` command as a user does (a real process) in the e2e tests,
and the SPEC §5 example command they build on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SPEC_EXAMPLE = {
    "message_id": "m-0001", "type": "create_ticket", "tenant": "personalysispro",
    "ticket_id": "T-1001", "occurred_at": "2026-11-20T14:03:00-05:00",
    "actor": {"id": "user-42", "role": "customer"},
    "payload": {"account_id": "acme", "plan": "professional", "timezone": "America/New_York",
                "channel": "email", "category": "technical", "subcategory": "performance",
                "priority": "high", "subject": "Exports time out", "description": "…"},
}


def run(*args: str, db: str, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`ticketflow ARGS --db DB`; `env`: variables added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "ticketflow.cli", *args, "--db", db],
        input=stdin.decode() if stdin else None, capture_output=True, text=True, timeout=300,
        check=False, env={**os.environ, **env} if env else None,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def command(message_id: str, type_: str, at: str, role: str, **payload: Any) -> dict[str, Any]:
    return {**SPEC_EXAMPLE, "message_id": message_id, "type": type_, "occurred_at": at,
            "actor": {"id": f"{role}-1", "role": role}, "payload": payload}


def write_jsonl(path: Path, *documents: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    return path
