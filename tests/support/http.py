"""A real HTTP API for tests: uvicorn on a free 127.0.0.1 port, in a thread of the
test process, over a store of the test's own; keys made in that store; httpx clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.support.builders import T0
from ticketflow.http.app import create_app
from ticketflow.http.service import Service
from ticketflow.settings import Settings

#: The engine's clock in these tests starts an hour after the stories begin (T0).
START = T0 + timedelta(hours=1)


@dataclass
class HandClock:
    """A clock the test moves by hand (the engine's: recorded_at, key expiry, as-of)."""

    at: datetime = START

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@dataclass
class Served:
    url: str
    api: FastAPI
    clock: HandClock
    db: str
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def service(self) -> Service:
        found: Service = self.api.state.service
        return found

    def key(self, tenant: str = "personalysispro", roles: tuple[str, ...] = ("customer",),
            actor: str | None = None, expires_at: datetime | None = None) -> str:
        """A new key's secret."""
        _, secret = self.service.keys.create(tenant, roles, actor=actor, name="test",
                                             expires_at=expires_at)
        return secret

    def client(self, secret: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client


@contextmanager
def serving(db: str, *, rate: str = "none", clock: HandClock | None = None) -> Iterator[Served]:
    """The API on `db`, served by uvicorn on 127.0.0.1 until the block ends."""
    clock = clock or HandClock()
    api = create_app(Settings(db=db, clock=clock), clock=clock, rate=rate)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", access_log=False,
                                           server_header=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the HTTP API did not start")
        time.sleep(0.02)
    served = Served(f"http://127.0.0.1:{port}", api, clock, db)
    try:
        yield served
    finally:
        for client in served.clients:
            client.close()
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def http_api(tmp_path: Path) -> Iterator[Served]:
    """The API on a fresh SQLite store, no rate limits, the engine's clock by hand."""
    with serving(f"sqlite:///{tmp_path / 'api.db'}") as served:
        yield served
