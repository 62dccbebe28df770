"""A real HTTP server for the console's browser tests: uvicorn on 127.0.0.1 and a free
port, in a thread, serving the HTTP API's own app (`create_app`, which serves the
console under `/ui/`) on the console's test store.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.console_data import CLOCK, ConsoleStore
from ticketflow.http.app import create_app
from ticketflow.settings import Settings


def console_app(store: ConsoleStore) -> FastAPI:
    """`ticketflow http`'s app on the store: its write service, keys and frozen clock."""
    return create_app(Settings(db=store.url, clock=CLOCK), app=store.app, clock=CLOCK,
                      keys=store.keys, rate="none")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn in a thread; yields its base URL until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="console-uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/ui/sign-in", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console's server did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
