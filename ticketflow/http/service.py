"""What the HTTP door holds open while it serves: the write service, the read models,
the keys, and the per-key limits; and, per request, the query layer for its key.

Writes go to the one write service one batch at a time (it keeps caches that are not
shared between threads, and SQLite takes one writer anyway), and requests that arrive
while a batch is being written go together in the next one: one transaction for
them all (group commit), each message still inside its own sender's key and answered
as if applied alone (`TicketingApp.apply_batch`'s contract). The read models are
caught up with the event log before each read that uses them, one catch-up at a time.
Nothing here decides anything about a ticket: it hands commands to
`TicketingApp.apply_batch` with the caller's key as their bounds, and reads through
`Queries` in the key's scope.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from ticketflow import metrics
from ticketflow.application import Outcome, TicketingApp
from ticketflow.clock import Clock
from ticketflow.domain.errors import Forbidden, NotFound
from ticketflow.domain.receipt import Oversized
from ticketflow.http.problems import Problem
from ticketflow.http.rates import RateLimits
from ticketflow.keys import Key, Keys
from ticketflow.projections.replay import open_projector
from ticketflow.projections.runner import Projector
from ticketflow.queries import Progress, Queries, ReadModels
from ticketflow.webhooks import Webhook, WebhookError, Webhooks

#: A group commit stops taking requests once it holds this many commands.
GROUP_MESSAGES = 500
#: The role a key needs to register, list and remove its tenant's webhooks
#: (docs/decisions.md, "Notifications").
WEBHOOK_ROLE = "manager"


@dataclass
class _Request:
    raws: Sequence[bytes | Oversized]
    key: Key
    outcomes: list[Outcome] | None = None
    error: BaseException | None = None


class GroupCommit:
    """Commands of concurrent requests, written together: a request waits while a batch
    is being written; the next writer takes every request waiting (up to
    `GROUP_MESSAGES` commands, its own always) into one `apply_batch`."""

    def __init__(self, app: TicketingApp, limit: int = GROUP_MESSAGES) -> None:
        self.app, self.limit = app, limit
        self._queue_lock = threading.Lock()
        self._writing = threading.Lock()
        self._waiting: list[_Request] = []

    def apply(self, raws: Sequence[bytes | Oversized], key: Key) -> list[Outcome]:
        request = _Request(raws, key)
        with self._queue_lock:
            self._waiting.append(request)
        with self._writing:
            while request.outcomes is None and request.error is None:
                self._write(self._take())
        if request.error is not None:
            raise request.error
        assert request.outcomes is not None
        return request.outcomes

    def _take(self) -> list[_Request]:
        with self._queue_lock:
            taken, count = 0, 0
            for waiting in self._waiting:
                if taken and count + len(waiting.raws) > self.limit:
                    break
                taken += 1
                count += len(waiting.raws)
            group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group

    def _write(self, group: list[_Request]) -> None:
        raws = [raw for request in group for raw in request.raws]
        bounds = [request.key for request in group for _ in request.raws]
        try:
            outcomes = self.app.apply_batch(raws, bounds=bounds)
        except Exception as error:  # each request of the group answers it
            for request in group:
                request.error = error
            return
        metrics.BATCH_SIZE.labels("http").observe(len(raws))
        start = 0
        for request in group:
            request.outcomes = outcomes[start:start + len(request.raws)]
            start += len(request.raws)


class Service:
    def __init__(self, app: TicketingApp, engine: Engine, keys: Keys, rates: RateLimits,
                 clock: Clock, *, private_targets: bool = False) -> None:
        self.app, self.engine, self.keys, self.rates, self.clock = app, engine, keys, rates, clock
        self.webhooks = Webhooks(engine, clock, app.event_log.mapper.cipher,
                                 private_targets=private_targets)
        self._writer = GroupCommit(app)
        self._catching_up = threading.Lock()
        self._projector: Projector | None = None
        self._making = threading.Lock()

    def caller(self, secret: str | None) -> Key:
        """The key of this secret, within its limits (Unauthenticated, or Problem 429)."""
        key = self.keys.authenticate(secret)
        self.rates.admit(key.key_id)
        return key

    def apply(self, raws: Sequence[bytes | Oversized], key: Key) -> list[Outcome]:
        """The commands, in order, inside the key's bounds; counted as the Kafka door's."""
        outcomes = self._writer.apply(raws, key)
        for outcome in outcomes:
            metrics.COMMANDS.labels(outcome.status, (outcome.error or {}).get("code", "")).inc()
        return outcomes

    def queries(self, key: Key) -> Queries:
        """The query layer in the key's scope, catching the read models up on first use."""
        read_models = ReadModels(self.app, self.engine, self._catch_up, self.projector)
        return Queries(self.app, read_models, key.scope())

    @property
    def projector(self) -> Projector:
        with self._making:  # its tables are made (and checked) once
            if self._projector is None:
                self._projector = open_projector(self.app, self.engine)
            return self._projector

    def retry_parked(self, key: Key) -> tuple[int, int]:
        """The key's tenant's parked events applied again, in order, one catch-up at a
        time; (applied, still parked)."""
        with self._catching_up:
            return self.projector.retry_parked(key.tenant)

    def _catch_up(self, run: Callable[[Progress], int]) -> int:
        with self._catching_up:
            return run(lambda _: None)

    # -- webhooks (SPEC §10), the key's tenant's, for a manager's key ------------------

    def _webhooks_for(self, key: Key) -> Webhooks:
        if WEBHOOK_ROLE not in key.roles:
            raise Forbidden(f"key {key.key_id} may act as {', '.join(key.roles)}; webhooks"
                            f" are registered with a key of the role {WEBHOOK_ROLE}")
        return self.webhooks

    def add_webhook(self, key: Key, url: str, rules: Sequence[str]) -> tuple[Webhook, str]:
        """Register a webhook for the key's tenant; the webhook and its secret."""
        webhooks = self._webhooks_for(key)
        known = self.app.policies[key.tenant].notifications.rules
        unknown = sorted(set(rules) - set(known))
        if unknown:
            raise Problem(422, "policy_violation", f"no rule {', '.join(unknown)} in"
                          f" {key.tenant}'s policy; its rules: {', '.join(sorted(known))}")
        try:
            return webhooks.add(key.tenant, url, rules)
        except WebhookError as exc:
            raise Problem(400, "invalid_message", f"url: {exc}") from None

    def list_webhooks(self, key: Key) -> list[Webhook]:
        return self._webhooks_for(key).registered(key.tenant)

    def get_webhook(self, key: Key, webhook_id: str) -> Webhook:
        """Another tenant's webhook is not found, exactly like a missing one."""
        return self._webhooks_for(key).get(webhook_id, key.tenant)

    def remove_webhook(self, key: Key, webhook_id: str) -> None:
        self._webhooks_for(key).remove(webhook_id, key.tenant)

    def deliveries(self, key: Key, webhook_id: str, status: str | None,
                   limit: int) -> list[dict[str, Any]]:
        """One of the key's tenant's webhooks' delivery log, newest first (a removed
        webhook's too: its log stays)."""
        webhooks = self._webhooks_for(key)
        if webhook_id not in {w.webhook_id for w in webhooks.registered(key.tenant,
                                                                         removed=True)}:
            raise NotFound(f"webhook {webhook_id} not found")  # another tenant's too
        return webhooks.deliveries(key.tenant, status, limit, webhook_id)

    def resend(self, key: Key, webhook_id: str, notification_id: str) -> None:
        self._webhooks_for(key).resend(notification_id, webhook_id, key.tenant)

    def ready(self) -> None:
        """Raise unless the store answers (a query on the event store's database, and
        on the read models' if that is another)."""
        self.app.event_log.max_position()
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()
