"""The timer: keeps every open ticket's next due instant from the event stream and
fires what falls due, in due order, through the normal command path.

`ticketflow tick --until T` fires everything due up to T (tests, backfills, replays);
`ticketflow worker timers` (and `serve`) does the same continuously against the
application's clock (the wall clock unless TICKETFLOW_CLOCK or a test says otherwise).
Firing is idempotent (the message id is derived from ticket, rule and due instant), so
a restart or a second timer process never doubles an event, and a timer made moot by a
later change fires nothing (dues are recomputed before firing).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from ticketflow import metrics
from ticketflow.application import Outcome, TicketingApp
from ticketflow.domain.errors import Rejected
from ticketflow.domain.sla import SlaError
from ticketflow.event_log import TICKET_TOPICS
from ticketflow.logs import event

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
#: A ticket, as the timer knows it: (tenant, ticket id) — ids are scoped by tenant.
Key = tuple[str, str]


class Timers:
    """Fires every tenant's due commands, or with `tenant` only that tenant's."""

    def __init__(self, app: TicketingApp, batch_size: int = 1000,
                 tenant: str | None = None) -> None:
        self.app = app
        self.batch_size = batch_size
        self.tenant = tenant
        self.position = 0
        self.next_due: dict[Key, datetime] = {}
        self.heap: list[tuple[datetime, Key]] = []
        #: Tickets whose policy version cannot serve them: nothing is scheduled for
        #: them (the reason, by ticket), the others' timers run on.
        self.unserviceable: dict[Key, str] = {}

    def follow(self) -> int:
        """Read the log since last time; reschedule every ticket that changed."""
        changed: set[Key] = set()
        for records in self.app.event_log.pages(self.position + 1, TICKET_TOPICS,
                                                self.batch_size):
            for record in records:
                envelope = self.app.event_log.envelope_of(record)
                if self.tenant in (None, envelope["tenant"]):
                    changed.add((envelope["tenant"], envelope["ticket_id"]))
            self.position = records[-1].id
        for key in sorted(changed):
            self._schedule(key)
        return len(changed)

    def fire_until(self, until: datetime, progress: Progress | None = None) -> list[Outcome]:
        """Fire every command due at or before `until`, earliest first, across tickets;
        never anything due after the application's clock (an event is not recorded
        before it happened: `tick --until` a future instant fires what is due by now)."""
        until = min(until, self.app.clock())
        self.follow()
        fired: list[Outcome] = []
        while self.heap and self.heap[0][0] <= until:
            at, key = heapq.heappop(self.heap)
            if self.next_due.get(key) != at:
                continue  # superseded by a later schedule of the same ticket
            del self.next_due[key]
            tenant, ticket_id = key
            outcomes: list[Outcome] = []
            try:
                outcomes = self.app.fire_due(ticket_id, until=until, limit=1, tenant=tenant)
                fired += outcomes
            except Rejected as refused:  # its command cannot be sent (an id stored before
                # the id rule): say so, and go on with the others instead of stopping them
                fired.append(Outcome(None, "rejected", error=refused.as_dict(),
                                     ticket_id=ticket_id))
            except Exception:  # the store is away: keep the due for the next round
                self.next_due[key] = at
                heapq.heappush(self.heap, (at, key))
                raise
            if any(outcome.notifications for outcome in outcomes):
                self._schedule(key)  # a regular update records no event for follow()
            self.follow()
            if progress:
                progress(len(fired))
        return fired

    def _schedule(self, key: Key) -> None:
        tenant, ticket_id = key
        try:
            at = self.app.next_due_at(ticket_id, tenant=tenant)
        except SlaError as error:
            self.unserviceable[key] = str(error)
            at = None
        else:
            self.unserviceable.pop(key, None)
        if at is None:
            self.next_due.pop(key, None)
            return
        self.next_due[key] = at
        heapq.heappush(self.heap, (at, key))

    def run_once(self) -> int:
        """Fire what is due by now on the application's clock (the worker's step);
        returns how many fired."""
        now = self.app.clock().astimezone(UTC)
        self.follow()
        metrics.TIMER_BACKLOG.labels(role="timers").set(self.backlog(now))
        fired = self.fire_until(now)
        if fired:
            metrics.TIMERS_FIRED.inc(len(fired))
            statuses: dict[str, int] = {}
            for outcome in fired:
                statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            event(log, "timers_fired", count=len(fired), outcomes=statuses,
                  tickets=sorted({o.ticket_id for o in fired if o.ticket_id})[:20],
                  position=self.position)
        metrics.TIMER_BACKLOG.labels(role="timers").set(self.backlog(now))
        return len(fired)

    def backlog(self, now: datetime) -> int:
        """How many tickets have a command due at or before `now` not fired yet."""
        return sum(1 for at in self.next_due.values() if at <= now)

    def run(self, stop: threading.Event, period: float = 1.0) -> None:
        while not stop.is_set():
            self.run_once()
            stop.wait(period)

