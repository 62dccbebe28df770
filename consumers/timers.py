"""The timer: keeps every open ticket's next due instant from the event stream and
fires what falls due, in due order, through the normal command path.

`ticketflow tick --until T` fires everything due up to T (tests, backfills, replays);
`ticketflow worker timers` (and `serve`) does the same continuously against the wall
clock. Firing is idempotent (the message id is derived from ticket, rule and due
instant), so a restart or a second timer process never doubles an event, and a
timer made moot by a later change fires nothing (dues are recomputed before firing).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from ticketflow.application import TICKET_TOPIC, Outcome, TicketingApp
from ticketflow.domain.errors import Rejected

Progress = Callable[[int], None]


class Timers:
    """Fires every tenant's due commands, or with `tenant` only that tenant's."""

    def __init__(self, app: TicketingApp, batch_size: int = 1000,
                 tenant: str | None = None) -> None:
        self.app = app
        self.batch_size = batch_size
        self.tenant = tenant
        self.position = 0
        self.next_due: dict[str, datetime] = {}
        self.heap: list[tuple[datetime, str]] = []

    def follow(self) -> int:
        """Read the log since last time; reschedule every ticket that changed."""
        changed: set[str] = set()
        while True:
            records = self.app.recorder.select_notifications(self.position + 1, self.batch_size)
            if not records:
                break
            for record in records:
                if record.topic.startswith(TICKET_TOPIC):
                    envelope = self.app.envelope_of(record)
                    if self.tenant in (None, envelope["tenant"]):
                        changed.add(envelope["ticket_id"])
            self.position = records[-1].id
        for ticket_id in sorted(changed):
            self._schedule(ticket_id)
        return len(changed)

    def fire_until(self, until: datetime, progress: Progress | None = None) -> list[Outcome]:
        """Fire every command due at or before `until`, earliest first, across tickets."""
        self.follow()
        fired: list[Outcome] = []
        while self.heap and self.heap[0][0] <= until:
            at, ticket_id = heapq.heappop(self.heap)
            if self.next_due.get(ticket_id) != at:
                continue  # superseded by a later schedule of the same ticket
            del self.next_due[ticket_id]
            try:
                fired += self.app.fire_due(ticket_id, until=until, limit=1)
            except Rejected as refused:  # its command cannot be sent (an id stored before
                # the id rule): say so, and go on with the others instead of stopping them
                fired.append(Outcome(None, "rejected", error=refused.as_dict(),
                                     ticket_id=ticket_id))
            except Exception:  # the store is away: keep the due for the next round
                self.next_due[ticket_id] = at
                heapq.heappush(self.heap, (at, ticket_id))
                raise
            self.follow()
            if progress:
                progress(len(fired))
        return fired

    def _schedule(self, ticket_id: str) -> None:
        at = self.app.next_due_at(ticket_id)
        if at is None:
            self.next_due.pop(ticket_id, None)
            return
        self.next_due[ticket_id] = at
        heapq.heappush(self.heap, (at, ticket_id))

    def run_once(self) -> int:
        """Fire what is due by now (the worker's step); returns how many fired."""
        return len(self.fire_until(datetime.now(UTC)))

    def run(self, stop: threading.Event, period: float = 1.0) -> None:
        while not stop.is_set():
            self.run_once()
            stop.wait(period)

