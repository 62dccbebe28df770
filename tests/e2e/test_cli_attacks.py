"""The hostile senders' table (tests/support/attacks.py) through `ticketflow apply`, a
real process on a SQLite file: each attack, followed by the victim's next command, is
refused with its stable code, kept as one bounded dead letter of the sender's (or no
one's), and leaves every stream intact and unchanged but for the victim's command.
The engine's clock is frozen (TICKETFLOW_CLOCK), so no date makes anything due."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.attacks import (
    ATTACKS,
    GIVEN,
    NOW,
    Attack,
    dead_letter,
    history,
    only_the_victims_next_event,
)
from tests.support.cli import as_json, run
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.domain.receipt import KEEP_BYTES
from ticketflow.settings import Settings
from ticketflow.verification import verify_store

ENV = {"TICKETFLOW_CLOCK": "@" + NOW.isoformat(), "TICKETFLOW_MAX_CLOCK_SKEW": "5m",
       "TICKETFLOW_TENANT": ""}


def jsonl(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def given(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding GIVEN, made once; each test works on its own copy."""
    folder = tmp_path_factory.mktemp("given")
    result = run("apply", str(jsonl(folder / "given.jsonl", *GIVEN)),
                 db=f"sqlite:///{folder / 'given.db'}", env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "given.db"


def copy_of(given: Path, folder: Path) -> str:
    for path in given.parent.glob(given.name + "*"):  # with any -wal / -shm beside it
        shutil.copy(path, folder / path.name)
    return f"sqlite:///{folder / given.name}"


@contextmanager
def store(url: str) -> Iterator[TicketingApp]:
    with build_app(Settings(db=url)) as app:
        yield app


def answers(result: Any) -> list[tuple[str, str | None]]:
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [(line["status"], (line.get("error") or {}).get("code")) for line in lines]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: f"{attack.item}-{attack.name}")
def test_an_attack_through_apply_is_refused_kept_bounded_and_costs_nothing(
    attack: Attack, given: Path, tmp_path: Path,
) -> None:
    url = copy_of(given, tmp_path)
    with store(url) as app:
        before = history(app)
    result = run("apply", str(jsonl(tmp_path / "in.jsonl", attack.line, attack.then)),
                 db=url, env=ENV)
    assert result.returncode == 1, result.stderr
    assert answers(result) == [("rejected", attack.code), ("accepted", None)]
    with store(url) as app:
        dead_letter(app, attack)
        assert only_the_victims_next_event(before, history(app), attack)
        assert verify_store(app) == []


def original(letter: dict[str, Any]) -> bytes:
    text = letter["original"] or ""
    return base64.b64decode(text) if letter["original_encoding"] == "base64" else text.encode()


def keeps(letter: dict[str, Any], line: bytes) -> bool:
    """Whether a `dead-letters --json` entry keeps `line`: whole, or its first 64 KiB with
    its length and SHA-256."""
    whole = len(line) <= KEEP_BYTES
    return original(letter) == line[:KEEP_BYTES] and (
        letter["original_length"], letter["original_sha256"]) == (
        (None, None) if whole else (len(line), hashlib.sha256(line).hexdigest()))


def test_every_attack_at_once_leaves_verify_clean_and_each_dead_letter_listed_once(
    given: Path, tmp_path: Path,
) -> None:
    url = copy_of(given, tmp_path)
    result = run("apply", str(jsonl(tmp_path / "in.jsonl", *(a.line for a in ATTACKS))),
                 db=url, env=ENV)
    assert answers(result) == [("rejected", attack.code) for attack in ATTACKS]
    assert as_json(run("verify", "--json", db=url, env=ENV)) == {"ok": True, "breaks": []}
    letters = as_json(run("dead-letters", "--json", db=url, env=ENV))
    assert len(letters) == len(ATTACKS)
    for attack in ATTACKS:
        (letter,) = [letter for letter in letters if keeps(letter, attack.line)]
        assert letter["error"]["code"] == attack.code
        assert len(original(letter)) <= KEEP_BYTES
