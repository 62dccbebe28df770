"""The body of `POST /v1/commands`: read in bounded memory, one command or a batch.

- A body whose `Content-Length` is over `MAX_BODY_BYTES` is refused (413) before any of
  it is read; a body sent without one is read until it passes the bound, then refused.
- A body whose first non-blank byte is `[` is a batch: a JSON array of at most
  `MAX_BATCH` commands. Each element is handed on as the exact bytes it was sent as,
  so its dead letter keeps what the caller wrote and a resend is a `duplicate`. A
  longer array is 400, as any body the OpenAPI document does not allow.
- Anything else is one command, handed on as received (an unreadable one is the
  write service's to reject and keep, as on every door).
- A command over SPEC §5's `MAX_MESSAGE_BYTES` goes on as what is kept of an oversized
  message (its head, length and SHA-256), as `ticketflow apply` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

from ticketflow.domain.receipt import Oversized
from ticketflow.http.problems import Problem
from ticketflow.schemas.commands import MAX_MESSAGE_BYTES

MAX_BATCH = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
_BLANK = re.compile(r"[ \t\n\r]*")
#: Numbers are not converted: a batch is only cut into commands here (a 5,000-digit
#: number is the write service's to refuse, in its command alone).
_DECODER = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)

Message = bytes | Oversized


def too_large(detail: str) -> Problem:
    return Problem(413, "invalid_message", detail)


def declared_length(header: str | None) -> None:
    """Refuse a body whose declared length is over the bound, before reading it."""
    if header is not None and header.strip().isdigit() and int(header) > MAX_BODY_BYTES:
        raise too_large(f"the body is {int(header)} bytes; a request carries at most"
                        f" {MAX_BODY_BYTES} bytes (one command at most {MAX_MESSAGE_BYTES})")


async def bounded(chunks: AsyncIterator[bytes]) -> bytes:
    """The body, read until it ends or passes `MAX_BODY_BYTES` (then 413)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large(f"the body is over {MAX_BODY_BYTES} bytes; a request carries"
                            f" at most {MAX_BODY_BYTES} bytes")
    return bytes(body)


def is_batch(body: bytes) -> bool:
    return body.lstrip(b" \t\r\n")[:1] == b"["


def message(raw: bytes) -> Message:
    return Oversized.of(raw) if len(raw) > MAX_MESSAGE_BYTES else raw


def batch(body: bytes) -> list[Message]:
    """Each element of a JSON array, as the bytes it was sent as (400 if the body is
    not a JSON array of at most `MAX_BATCH` elements)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unreadable(f"not UTF-8 at byte {exc.start}") from None
    at = _skip(text, text.index("[") + 1)
    found: list[Message] = []
    if text.startswith("]", at):
        return _end(text, at + 1, found)
    while True:
        if len(found) == MAX_BATCH:  # the document's maxItems: a malformed body, not a big one
            raise _unreadable(f"it holds more than {MAX_BATCH} commands")
        try:
            _, end = _DECODER.raw_decode(text, at)
        except (ValueError, RecursionError) as exc:
            raise _unreadable(_why(exc)) from None
        found.append(message(text[at:end].encode("utf-8")))
        at = _skip(text, end)
        if text.startswith("]", at):
            return _end(text, at + 1, found)
        if not text.startswith(",", at):
            raise _unreadable(f"expected ',' or ']' at character {at}")
        at = _skip(text, at + 1)


def _skip(text: str, at: int) -> int:
    """Where the JSON whitespace from `at` on ends."""
    blank = _BLANK.match(text, at)
    return blank.end() if blank else at


def _end(text: str, at: int, found: list[Message]) -> list[Message]:
    if _skip(text, at) != len(text):
        raise _unreadable(f"extra data after the array at character {at}")
    return found


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    return str(exc)[:200]


def _unreadable(why: str) -> Problem:
    return Problem(400, "invalid_message", f"a batch is a JSON array of commands; this body"
                   f" is not one: {why}")
