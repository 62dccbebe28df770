"""`GET /v1/events`: the analysts' export (`ticketflow.export`) streamed to the client.

`export_events` writes to a file; here it writes, in a thread of its own, into a
bounded queue of 64 KiB chunks that the response sends as they come. Memory stays
bounded by the queue (the export itself is bounded: one batch of records, one Parquet
row group); a slow client slows the export down; a client that goes away stops it at
its next write.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO, cast

from starlette.concurrency import run_in_threadpool

from ticketflow.logs import event

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CHUNKS_AHEAD = 8
_POLL = 0.5  # seconds between looks at whether the other side has gone
_END = object()


class Gone(Exception):
    """The client went away: stop writing."""


class _Sink(io.RawIOBase):
    """A write-only file whose writes go into the queue (waiting while it is full)."""

    def __init__(self, chunks: queue.Queue[object], stopped: threading.Event) -> None:
        self.chunks, self.stopped, self.written = chunks, stopped, 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        while not self.stopped.is_set():
            try:
                self.chunks.put(chunk, timeout=_POLL)
                self.written += len(chunk)
                return len(chunk)
            except queue.Full:
                continue
        raise Gone

    def tell(self) -> int:
        return self.written


def streamed(write: Callable[[BinaryIO], object]) -> AsyncIterator[bytes]:
    """The bytes `write(file)` writes, as an async iterator for a StreamingResponse.
    `write` runs at once in its own thread; an error in it ends the stream early (the
    client sees a cut response, and the log says why)."""
    chunks: queue.Queue[object] = queue.Queue(maxsize=CHUNKS_AHEAD)
    stopped = threading.Event()

    def run() -> None:
        try:
            sink: Any = _Sink(chunks, stopped)  # a raw binary file, as BufferedWriter takes
            with io.BufferedWriter(sink, CHUNK) as out:
                write(out)
        except Gone:
            return
        except Exception as exc:
            event(log, "export_failed", logging.ERROR, exc_info=True, cause=type(exc).__name__)
            _put(chunks, exc, stopped)
            return
        _put(chunks, _END, stopped)

    threading.Thread(target=run, name="http-export", daemon=True).start()
    return _sent(chunks, stopped)


async def _sent(chunks: queue.Queue[object], stopped: threading.Event) -> AsyncIterator[bytes]:
    try:
        while True:
            item = await run_in_threadpool(_next, chunks, stopped)
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(bytes, item)
    finally:
        stopped.set()


def _next(chunks: queue.Queue[object], stopped: threading.Event) -> object:
    while not stopped.is_set():
        try:
            return chunks.get(timeout=_POLL)
        except queue.Empty:
            continue
    return _END


def _put(chunks: queue.Queue[object], item: object, stopped: threading.Event) -> None:
    while not stopped.is_set():
        try:
            chunks.put(item, timeout=_POLL)
            return
        except queue.Full:
            continue
