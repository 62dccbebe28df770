"""Signed tree heads of the audit log (SPEC §13): make, read and check a checkpoint.

A checkpoint is five lines of text, then a blank line and the signature:

    ticketflow-checkpoint/1
    size 1234
    root <hex SHA-256 RFC 9162 tree head of the first `size` leaves>
    time 2026-11-16T14:00:00+00:00
    key <key id: hex SHA-256 of the raw 32-byte Ed25519 public key, first 16 digits>

    sig <base64 Ed25519 signature of the first five lines, each ending "\\n">

so that `openssl pkeyutl -verify -rawin` checks it (docs/security.md). Pure apart from
reading key files.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER = "ticketflow-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint or key that cannot be read or does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    time: str
    key_id: str
    signature: bytes = b""

    def body(self) -> bytes:
        return (f"{HEADER}\nsize {self.size}\nroot {self.root.hex()}\ntime {self.time}\n"
                f"key {self.key_id}\n").encode("ascii")

    def text(self) -> str:
        return self.body().decode("ascii") + f"\nsig {base64.b64encode(self.signature).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        try:
            if lines[0] != HEADER or lines[5] != "" or not lines[6].startswith("sig "):
                raise CheckpointError(f"not a checkpoint: it must start {HEADER!r}, then"
                                      " size, root, time, key, a blank line and sig")
            fields = dict(line.split(" ", 1) for line in lines[1:5])
            size, root = int(fields["size"]), bytes.fromhex(fields["root"])
            signature = base64.b64decode(lines[6][4:], validate=True)
            found = cls(size, root, fields["time"], fields["key"], signature)
        except (IndexError, KeyError, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"not a checkpoint: {exc}") from None
        if found.body().decode("ascii") != "\n".join(lines[:5]) + "\n" or len(root) != 32:
            raise CheckpointError("not a checkpoint: its lines are not in the canonical form")
        return found

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Raise CheckpointError unless this checkpoint was signed by `public_key`."""
        given = key_id(public_key)
        if given != self.key_id:
            raise CheckpointError(f"checkpoint signed by key {self.key_id}, not by the given"
                                  f" public key ({given})")
        try:
            public_key.verify(self.signature, self.body())
        except InvalidSignature:
            raise CheckpointError("checkpoint signature does not verify: its size, root or"
                                  " time was changed, or it was not signed by this key") from None


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(size: int, root: bytes, at: datetime, private_key: Ed25519PrivateKey) -> Checkpoint:
    unsigned = Checkpoint(size, root, at.isoformat(), key_id(private_key.public_key()))
    return Checkpoint(size, root, unsigned.time, unsigned.key_id,
                      private_key.sign(unsigned.body()))


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path}: not an Ed25519 key (openssl genpkey -algorithm ed25519)")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    try:
        data = Path(path).read_bytes()
        key = (serialization.load_pem_private_key(data, password=None).public_key()
               if b"PRIVATE KEY" in data else serialization.load_pem_public_key(data))
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path}: not an Ed25519 public key")
    return key
