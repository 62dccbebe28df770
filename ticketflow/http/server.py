"""Serving the API: `ticketflow http` in the foreground, `ticketflow serve --http PORT`
in a thread beside the Kafka roles (a uvicorn `Server`; off the main thread it leaves
signals to `serve`, which stops it after the roles)."""

from __future__ import annotations

import logging
import signal
import threading

import uvicorn

from ticketflow.application import TicketingApp
from ticketflow.http.app import create_app
from ticketflow.logs import event
from ticketflow.settings import Settings

log = logging.getLogger("ticketflow.http")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


def server(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
           app: TicketingApp | None = None) -> uvicorn.Server:
    """A uvicorn server of the API on the settings' store (not started); `app`: a write
    service already open, to use (and leave open)."""
    config = uvicorn.Config(create_app(settings, app=app), host=host, port=port,
                            log_level="warning", access_log=False, server_header=False,
                            lifespan="on")
    return uvicorn.Server(config)


def run(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        app: TicketingApp | None = None) -> int:
    """Serve until SIGINT / SIGTERM, then exit 0 (uvicorn catches the signal, drains,
    and raises it again when it is done: it then finds these handlers, not the default
    ones that would end the process by the signal)."""
    stopped_by: list[str] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _: stopped_by.append(signal.Signals(number).name))
    event(log, "http_serving", host=host, port=port, console=f"http://{host}:{port}/ui/")
    server(settings, host, port, app).run()
    event(log, "http_stopped", host=host, port=port, signal=stopped_by[-1] if stopped_by else None)
    return 0


class Background:
    """The API in a thread of its own, stopped by `stop()`."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.server = server(settings, host, port)  # off the main thread: no signals
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self.host, self.port = host, port

    def start(self) -> None:
        self.thread.start()
        event(log, "http_serving", host=self.host, port=self.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
