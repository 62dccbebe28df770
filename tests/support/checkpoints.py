"""A signed store for the audit-checkpoint tests (SPEC §13): two tickets, checkpointed
with a fresh Ed25519 key, and the CLI calls that check it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.builders import T0, command_line, create_payload
from tests.support.store_rows import StoreRows
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.settings import Settings

PP = "personalysispro"
STORY = [("m-2", "add_comment", "customer", {"body": "original words"}),
         ("m-3", "acknowledge", "agent", {}),
         ("m-4", "start_work", "agent", {})]


def keys(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


class Signed:
    """A store of two tickets (T-1: four events in three transactions and a batch, T-2:
    one), checkpointed with the key `a`."""

    def __init__(self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url, self.tmp, self.monkeypatch = url, tmp_path, monkeypatch
        self.rows = StoreRows(url)
        with build_app(Settings(db=url)) as app:
            for ticket in ("T-1", "T-2"):
                app.apply(command_line(f"{ticket}-c", "create_ticket", ticket, T0, "customer",
                                       create_payload()))
            lines = [command_line(message_id, type_, "T-1", T0 + timedelta(minutes=minute),
                                  role, payload)
                     for minute, (message_id, type_, role, payload) in enumerate(STORY, 1)]
            assert [o.status for o in app.apply_batch(lines)] == ["accepted"] * 3
        self.private, self.public = keys(tmp_path, "a")
        self.checkpoint = self.sign(self.private, "first.checkpoint")

    def sign(self, private: Path, name: str) -> Path:
        self.monkeypatch.setenv("TICKETFLOW_SIGNING_KEY", str(private))
        out = self.tmp / name
        assert main(["checkpoint", "-o", str(out), "--db", self.url]) == 0
        return out

    def verify(self, capsys: pytest.CaptureFixture[str], checkpoint: Path | None = None,
               public: Path | None = None) -> tuple[int, list[dict[str, Any]]]:
        capsys.readouterr()
        code = main(["verify", "--json", "--db", self.url,
                     "--checkpoint", str(checkpoint or self.checkpoint),
                     "--public-key", str(public or self.public)])
        return code, json.loads(capsys.readouterr().out)["log"]
