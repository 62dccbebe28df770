"""The demo's notifications, delivered: a webhook receiver on 127.0.0.1 for the length
of the demo (it checks every signature, as a real receiver would), one webhook per
tenant pointing at it, the delivery worker run until nothing is pending, the webhooks
removed again; then `report notifications` over the window."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine

from ticketflow.application import TicketingApp
from ticketflow.consumers.webhooks import DeliveryWorker
from ticketflow.notifications import recorded
from ticketflow.webhooks import (
    NOTIFICATION_HEADER,
    SIGNATURE_HEADER,
    Webhooks,
    notification_report,
    verify,
)


class _Receiver:
    def __init__(self, app: TicketingApp) -> None:
        self.app = app
        self.secrets: list[str] = []
        self.received: set[str] = set()
        self.badly_signed = 0
        self.lock = threading.Lock()

    def answer(self, body: bytes, headers: Any) -> int:
        now = self.app.clock().timestamp()
        header = headers.get(SIGNATURE_HEADER, "")
        with self.lock:
            if not any(verify(secret, header, body, now) for secret in self.secrets):
                self.badly_signed += 1
                return 401
            self.received.add(headers[NOTIFICATION_HEADER])
        return 204


@contextmanager
def _serving(receiver: _Receiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status = receiver.answer(self.rfile.read(int(self.headers["Content-Length"])),
                                     self.headers)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/demo"
    finally:
        server.shutdown()
        server.server_close()


def deliver_notifications(app: TicketingApp, engine: Engine, since: datetime,
                          until: datetime) -> dict[str, Any]:
    """Deliver every notification of the store to a demo receiver; the report of the
    window, and what the receiver saw."""
    receiver = _Receiver(app)
    # its own receiver, on loopback: the one place private targets are allowed by default
    webhooks = Webhooks(engine, app.clock, app.event_log.mapper.cipher, private_targets=True)
    with _serving(receiver) as url:
        added = []
        for tenant in sorted(app.policies):
            webhook, secret = webhooks.add(tenant, url)
            receiver.secrets.append(secret)
            added.append(webhook)
        worker = DeliveryWorker(app, engine, app.clock, private_targets=True)
        try:
            while worker.run_once() + worker.drain():
                pass
        finally:
            worker.close()
            for webhook in added:
                webhooks.remove(webhook.webhook_id)
    rows = notification_report(recorded(app.event_log), webhooks.outcomes(), since, until)
    return {"rows": rows, "received": len(receiver.received),
            "badly_signed": receiver.badly_signed}
