"""The delivery worker (`ticketflow worker notifications`, also run by `serve`): the
store's notifications → each of its tenant's webhooks, signed, retried, logged.

Each step, in order:

1. records the answers of the POSTs that finished since the last step (an attempt and
   the delivery's new state, in one transaction): a 2xx is `delivered`; anything else
   (an error status, a timeout, a refused connection, a redirect: none is followed) is
   retried after an exponential backoff with jitter on the injectable clock, and after
   the last attempt the delivery is `dead` (the dead letter: `webhooks deliveries
   --status dead`, and `webhooks resend`);
2. reads the notifications recorded since its position and adds one `pending`
   delivery per webhook of their tenant that wants their rule, moving the position in
   the same transaction (a notification already queued stays as it is);
3. starts the POSTs of the deliveries now due, one task per webhook (a pool of
   threads), for every webhook that has no task running: a slow or failing endpoint
   holds up only its own deliveries.

Each answer is logged (`webhook_delivery`) and counted (`ticketflow_webhook_attempts_total`
by outcome and answer); each step that queues notifications logs `deliveries_queued`;
the deliveries due and not answered yet, and the dead ones, are counted again at most
every `MEASURE_EVERY` seconds (`ticketflow_webhook_backlog`,
`ticketflow_webhook_dead_deliveries`; docs/operations.md).

Delivery is at least once: a worker killed between a POST and step 1 posts it again
when it restarts; receivers dedupe by `notification_id` (the `Ticketflow-Notification-Id`
header). The body is the notification document, JSON with sorted keys, signed with the
webhook's secret (`ticketflow.webhooks.signature`).
"""

from __future__ import annotations

import functools
import http.client
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, func, select, update

from ticketflow import metrics
from ticketflow.clock import Clock
from ticketflow.domain.notifications import NOTIFICATION_TOPIC
from ticketflow.event_log import Store
from ticketflow.logs import event
from ticketflow.projections.db import insert
from ticketflow.webhooks import (
    NOTIFICATION_HEADER,
    SIGNATURE_HEADER,
    WEBHOOK_HEADER,
    Webhook,
    Webhooks,
    attempts_table,
    check_url,
    deliveries_table,
    position_table,
    public_connection,
    signature,
    utc_text,
)

log = logging.getLogger(__name__)

POSITION_NAME = "webhooks"
MAX_ATTEMPTS = 8
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
TIMEOUT_SECONDS = 10.0
PER_TASK = 20  # deliveries one webhook's task posts before the next step looks again
BATCH = 500
MEASURE_EVERY = 5.0  # seconds between two counts of the backlog and the dead deliveries
ROLE = "notifications"


@dataclass(frozen=True)
class Answer:
    """What one POST got: a status code, or the error that stopped it."""

    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def kind(self) -> str:
        """`2xx` … `5xx` (any other code as itself), or `error`: no HTTP answer."""
        if self.status_code is None:
            return "error"
        return f"{self.status_code // 100}xx" if 100 <= self.status_code < 600 else "other"


Post = Callable[[str, bytes, dict[str, str], float], Answer]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer, not a place to go: never another host


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = public_connection


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = public_connection


class _PublicHTTP(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_PublicHTTPSConnection, req)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)
#: The same, connecting to public addresses only (`public_connection`): the default.
_PUBLIC_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects,
                                             _PublicHTTP, _PublicHTTPS)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float, *,
              private_targets: bool = False) -> Answer:
    """POST with a bounded timeout; no redirect is followed, no proxy is used; unless
    `private_targets`, only to a host whose every address is public (SSRF: a webhook
    never reaches the engine's own host, its network or a cloud metadata service, even
    through a name that resolves there)."""
    check_url(url)  # never anything but http(s), whatever the table holds
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = _OPENER if private_targets else _PUBLIC_OPENER
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, None)
    except urllib.error.HTTPError as exc:
        where = exc.headers.get("Location") if 300 <= exc.code < 400 else None
        return Answer(exc.code, f"redirect to {where} not followed" if where else exc.reason)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(None, f"{type(exc).__name__}: {reason}")


@dataclass(frozen=True)
class Delivery:
    notification_id: str
    webhook: Webhook
    attempt: int  # this one's number (1, 2, …)
    body: bytes


class DeliveryWorker:
    """Delivers one store's notifications to its webhooks (see the module)."""

    def __init__(self, store: Store, engine: Engine, clock: Clock | None = None, *,
                 post: Post | None = None, private_targets: bool = False,
                 max_attempts: int = MAX_ATTEMPTS,
                 first_delay: timedelta = FIRST_DELAY, max_delay: timedelta = MAX_DELAY,
                 timeout: float = TIMEOUT_SECONDS, threads: int = 8,
                 rng: random.Random | None = None) -> None:
        self.store, self.engine = store, engine
        self.clock = clock or store.clock
        self.webhooks = Webhooks(engine, self.clock, store.event_log.mapper.cipher,
                                 private_targets=private_targets)
        self.post = post or functools.partial(http_post, private_targets=private_targets)
        self.timeout = timeout
        self.max_attempts, self.first_delay, self.max_delay = max_attempts, first_delay, max_delay
        self.rng = rng or random.Random()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="webhook")
        self.running: dict[str, Future[list[tuple[Delivery, Answer]]]] = {}
        self.measure_due = 0.0  # when to count the backlog again (monotonic)

    def run_once(self) -> int:
        """One step: record finished POSTs, queue new notifications, start due POSTs;
        returns how much it did (0: nothing)."""
        done = self._record_finished()
        queued = self._queue_new()
        started = self._start_due()
        if time.monotonic() >= self.measure_due:
            self.measure()
        return done + queued + started

    def measure(self) -> None:
        """Count the deliveries due and not answered yet, and the dead ones (metrics)."""
        now = utc_text(self.clock())
        table = deliveries_table
        count = select(func.count()).select_from(table)
        with self.engine.connect() as conn:
            backlog = conn.execute(count.where(table.c.status == "pending",
                                               table.c.next_attempt_at <= now)).scalar()
            dead = conn.execute(count.where(table.c.status == "dead")).scalar()
        metrics.WEBHOOK_BACKLOG.labels(ROLE).set(backlog or 0)
        metrics.WEBHOOK_DEAD.labels(ROLE).set(dead or 0)
        self.measure_due = time.monotonic() + MEASURE_EVERY

    def drain(self) -> int:
        """Wait for every running POST and record its answer (tests, shutdown)."""
        for future in list(self.running.values()):
            future.exception()  # waits
        return self._record_finished()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- 1. answers ------------------------------------------------------------------

    def _record_finished(self) -> int:
        recorded = 0
        for webhook_id, future in list(self.running.items()):
            if not future.done():
                continue
            del self.running[webhook_id]
            for delivery, answer in future.result():
                self._record(delivery, answer)
                recorded += 1
        return recorded

    def _record(self, delivery: Delivery, answer: Answer) -> None:
        now = self.clock()
        key = and_(deliveries_table.c.notification_id == delivery.notification_id,
                   deliveries_table.c.webhook_id == delivery.webhook.webhook_id)
        if answer.ok:
            state: dict[str, Any] = {"status": "delivered", "delivered_at": utc_text(now),
                                     "next_attempt_at": None, "last_error": None}
        elif delivery.attempt >= self.max_attempts:
            state = {"status": "dead", "next_attempt_at": None,
                     "last_error": _error(answer)}
        else:
            state = {"next_attempt_at": utc_text(now + self.backoff(delivery.attempt)),
                     "last_error": _error(answer)}
        with self.engine.begin() as conn:
            conn.execute(insert(conn, attempts_table).values(
                notification_id=delivery.notification_id,
                webhook_id=delivery.webhook.webhook_id, attempt=delivery.attempt,
                at=utc_text(now), status_code=answer.status_code, error=answer.error,
            ).on_conflict_do_nothing())
            conn.execute(update(deliveries_table).where(key).values(
                attempts=delivery.attempt, **state))
        outcome = state.get("status", "retrying")
        metrics.WEBHOOK_ATTEMPTS.labels(outcome, answer.kind).inc()
        event(log, "webhook_delivery", logging.INFO if answer.ok else logging.WARNING,
              notification=delivery.notification_id, webhook=delivery.webhook.webhook_id,
              attempt=delivery.attempt, status=outcome,
              status_code=answer.status_code, error=answer.error)

    def backoff(self, attempt: int) -> timedelta:
        """After attempt n: FIRST_DELAY × 2^(n-1), at most MAX_DELAY, times a jitter
        in [0.5, 1] (so that many failed deliveries do not all come back at once)."""
        delay = min(self.first_delay * 2 ** (attempt - 1), self.max_delay)
        return delay * self.rng.uniform(0.5, 1.0)

    # -- 2. new notifications ----------------------------------------------------------

    def _queue_new(self) -> int:
        with self.engine.connect() as conn:
            position = conn.execute(select(position_table.c.position).where(
                position_table.c.name == POSITION_NAME)).scalar() or 0
        records = self.store.event_log.recorder.select_notifications(
            position + 1, BATCH, topics=[NOTIFICATION_TOPIC])
        if not records:
            return 0
        by_tenant: dict[str, list[Webhook]] = {}
        for webhook in self.webhooks.registered():
            by_tenant.setdefault(webhook.tenant, []).append(webhook)
        now = utc_text(self.clock())
        rows = []
        for record in records:
            document = self.store.event_log.decode(record)["document"]
            rows += [{"notification_id": document["notification_id"],
                      "webhook_id": webhook.webhook_id, "tenant": document["tenant"],
                      "ticket_id": document["ticket_id"], "rule": document["rule"],
                      "at": document["at"], "position": record.id, "status": "pending",
                      "attempts": 0, "next_attempt_at": now}
                     for webhook in by_tenant.get(document["tenant"], [])
                     if webhook.wants(document["rule"])]
        with self.engine.begin() as conn:
            if rows:
                conn.execute(insert(conn, deliveries_table).values(rows)
                             .on_conflict_do_nothing())
            conn.execute(insert(conn, position_table).values(
                name=POSITION_NAME, position=records[-1].id).on_conflict_do_update(
                index_elements=["name"], set_={"position": records[-1].id}))
        event(log, "deliveries_queued", notifications=len(records), deliveries=len(rows),
              position=records[-1].id)
        return len(records)

    # -- 3. due POSTs --------------------------------------------------------------------

    def _start_due(self) -> int:
        now = utc_text(self.clock())
        webhooks = {webhook.webhook_id: webhook for webhook in self.webhooks.registered()}
        query = select(deliveries_table).where(and_(
            deliveries_table.c.status == "pending",
            deliveries_table.c.next_attempt_at <= now)).order_by(
            deliveries_table.c.next_attempt_at, deliveries_table.c.position)
        due: dict[str, list[Delivery]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query.limit(BATCH)).mappings():
                webhook = webhooks.get(row["webhook_id"])
                batch = due.setdefault(row["webhook_id"], [])
                if webhook is None or row["webhook_id"] in self.running or len(batch) >= PER_TASK:
                    continue
                batch.append(Delivery(row["notification_id"], webhook, row["attempts"] + 1,
                                      self._body(row["position"])))
        for webhook_id, deliveries in due.items():
            if deliveries:
                self.running[webhook_id] = self.pool.submit(self._post_all, deliveries)
        return sum(len(batch) for batch in due.values())

    def _body(self, position: int) -> bytes:
        record = self.store.event_log.recorder.select_notifications(
            position, 1, topics=[NOTIFICATION_TOPIC])[0]
        return orjson.dumps(self.store.event_log.decode(record)["document"],
                            option=orjson.OPT_SORT_KEYS)

    def _post_all(self, deliveries: list[Delivery]) -> list[tuple[Delivery, Answer]]:
        answers = []
        for delivery in deliveries:
            timestamp = int(self.clock().timestamp())
            headers = {"Content-Type": "application/json", "User-Agent": "ticketflow-webhooks",
                       SIGNATURE_HEADER: signature(delivery.webhook.secret, timestamp,
                                                   delivery.body),
                       NOTIFICATION_HEADER: delivery.notification_id,
                       WEBHOOK_HEADER: delivery.webhook.webhook_id,
                       "Ticketflow-Delivery-Attempt": str(delivery.attempt)}
            try:
                answer = self.post(delivery.webhook.url, delivery.body, headers, self.timeout)
            except Exception as exc:  # a bug in a post function must not lose the answer
                answer = Answer(None, f"{type(exc).__name__}: {exc}")
            answers.append((delivery, answer))
        return answers


def _error(answer: Answer) -> str:
    return answer.error or f"HTTP {answer.status_code}"
