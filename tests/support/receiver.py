"""A real webhook receiver on 127.0.0.1 (http.server in a thread): it checks every
delivery's signature as docs/notifications.md tells a receiver to, answers as told
(fail the first attempts of each notification, always fail, redirect elsewhere), and
keeps what it was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ticketflow.webhooks import NOTIFICATION_HEADER, SIGNATURE_HEADER, verify


@dataclass
class Receiver:
    """`fail_first`: answer 500 to each notification's first so many attempts;
    `status`: the answer after that (503 for an endpoint that is always down, 302 for
    one that redirects to another host)."""

    now: Callable[[], float]  # the receiver's clock (unix seconds), for the tolerance
    fail_first: int = 0
    status: int = 200
    secret: str = ""
    url: str = ""
    attempts: dict[str, int] = field(default_factory=dict)  # by notification id
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # deduped by id
    badly_signed: int = 0

    def answer(self, body: bytes, headers: Any) -> int:
        if not verify(self.secret, headers.get(SIGNATURE_HEADER, ""), body, self.now()):
            self.badly_signed += 1
            return 401
        notification = headers[NOTIFICATION_HEADER]
        self.attempts[notification] = self.attempts.get(notification, 0) + 1
        if self.attempts[notification] <= self.fail_first:
            return 500
        if 200 <= self.status < 300:
            self.accepted.setdefault(notification, json.loads(body))
        return self.status


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = receiver.answer(body, self.headers)
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://elsewhere.invalid/hook")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
