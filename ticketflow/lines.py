"""JSON Lines input in bounded memory: a line over the message limit is not read
whole, only its head (for the dead letter), its length and its SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO

from ticketflow.domain.receipt import KEEP_BYTES, Oversized
from ticketflow.schemas.commands import MAX_MESSAGE_BYTES

CHUNK = 1 << 20


def bounded_lines(stream: IO[bytes], limit: int = MAX_MESSAGE_BYTES) -> Iterator[bytes | Oversized]:
    """Non-blank lines without their line ending (blank lines are not commands); a line
    longer than `limit` as an `Oversized`, read on to its end in `CHUNK`s."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            yield _rest_of(stream, line)
            continue
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            yield stripped


def _rest_of(stream: IO[bytes], start: bytes) -> Oversized:
    digest = hashlib.sha256()
    head, length = start[:KEEP_BYTES], 0
    chunk = start
    while chunk:
        ended = chunk.endswith(b"\n")
        body = chunk.rstrip(b"\r\n") if ended else chunk
        digest.update(body)
        length += len(body)
        if ended:
            break
        chunk = stream.readline(CHUNK)
    return Oversized(head, length, digest.hexdigest())
