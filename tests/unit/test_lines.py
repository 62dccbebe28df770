"""`ticketflow apply` reads JSON Lines in bounded memory: a line over the limit is kept as
its head, length and digest, however long it is and whether or not it ends."""

from __future__ import annotations

import hashlib
import io

from ticketflow.domain.receipt import KEEP_BYTES, Oversized
from ticketflow.lines import CHUNK, bounded_lines
from ticketflow.schemas.commands import MAX_MESSAGE_BYTES


class Reads(io.BytesIO):
    """A stream that remembers the largest read asked of it."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        self.largest = max(self.largest, size if size and size > 0 else 1 << 62)
        return super().readline(size)


def test_a_huge_line_without_a_newline_is_read_in_pieces_and_kept_as_head_and_digest() -> None:
    huge = b'{"message_id": "big"' + b"x" * (5 * CHUNK)
    stream = Reads(huge)
    (line,) = list(bounded_lines(stream))  # the message limit: 256 KiB
    assert isinstance(line, Oversized)
    assert (line.head, line.length) == (huge[:KEEP_BYTES], len(huge))
    assert line.sha256 == hashlib.sha256(huge).hexdigest()
    assert stream.largest <= max(CHUNK, MAX_MESSAGE_BYTES + 1)  # never the whole line


def test_lines_around_an_oversized_one_come_through_whole_and_blank_lines_are_skipped() -> None:
    big = b"y" * 5000
    stream = io.BytesIO(b"a\n\n  \n" + big + b"\r\nb\r\n")
    lines = list(bounded_lines(stream, limit=1024))
    assert lines[0] == b"a" and lines[2] == b"b"
    assert isinstance(lines[1], Oversized)
    assert (lines[1].length, lines[1].sha256) == (5000, hashlib.sha256(big).hexdigest())
