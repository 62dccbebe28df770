"""Prometheus metrics of a worker (`--metrics-port N` serves them on /metrics; the HTTP
API serves them on its own /metrics).

Defined once per process in prometheus-client's default registry; every role updates
them whether or not they are served, so a role costs the same either way. What each
one means, and what to alert on: docs/operations.md.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

COMMANDS = Counter("ticketflow_commands_total", "Commands handled, by outcome and code",
                   ["outcome", "code"])
BATCH_SIZE = Histogram("ticketflow_batch_size", "Messages (events) per batch, by role",
                       ["role"], buckets=(1, 5, 20, 50, 100, 200, 500, 1000, 5000, 10000))
CONFLICTS = Counter("ticketflow_conflicts_total",
                    "Batches that collided and were re-applied one message at a time;"
                    " lost races retried", ["kind"])
DEAD_LETTERS = Counter("ticketflow_dead_letters_total", "Dead letters sent, by code",
                       ["code"])
CONSUMER_LAG = Gauge("ticketflow_consumer_lag", "Records behind the partition's end",
                     ["group", "topic", "partition"])
# Labelled, so a worker that does not run the role exports no sample (not a healthy 0).
RELAY_LAG = Gauge("ticketflow_relay_lag",
                  "Store records after the position the broker acknowledged (0: caught up;"
                  " otherwise an upper bound)", ["topic"])
RELAY_POSITION = Gauge("ticketflow_relay_position",
                       "Last notification id acknowledged by the broker", ["topic"])
PROJECTION_LAG = Gauge("ticketflow_projection_lag",
                       "Events on the partition not yet in the read models",
                       ["topic", "partition"])
EVENTS_PARKED = Counter("ticketflow_events_parked_total",
                        "Events the read models parked (a poison event, or one held back"
                        " behind its ticket's parked event), by the error's class",
                        ["cause"])
PARKED_EVENTS = Gauge("ticketflow_parked_events",
                      "Events parked in the read models now (every tenant's), as the"
                      " projection group filling them counts them", ["group"])
TIMER_BACKLOG = Gauge("ticketflow_timer_backlog", "Timers due now and not fired yet",
                      ["role"])
TIMERS_FIRED = Counter("ticketflow_timers_fired_total", "Time-driven commands fired")
WEBHOOK_ATTEMPTS = Counter("ticketflow_webhook_attempts_total",
                           "Webhook delivery attempts (POSTs), by outcome (delivered, retrying,"
                           " dead: the last attempt failed) and answer (2xx, 3xx, 4xx, 5xx;"
                           " error: no HTTP answer)", ["outcome", "answer"])
WEBHOOK_BACKLOG = Gauge("ticketflow_webhook_backlog",
                        "Webhook deliveries due now and not answered yet", ["role"])
WEBHOOK_DEAD = Gauge("ticketflow_webhook_dead_deliveries",
                     "Webhook deliveries dead now (their last attempt failed, or their webhook"
                     " was removed), until `webhooks resend`", ["role"])
REBALANCES = Counter("ticketflow_rebalances_total", "Partitions assigned, revoked or lost",
                     ["group", "change"])
ROLE_RESTARTS = Counter("ticketflow_role_restarts_total",
                        "Roles rebuilt after a failure", ["role", "cause"])
HTTP_REQUESTS = Histogram("ticketflow_http_request_seconds",
                          "HTTP API requests: seconds to answer, by method, route template"
                          " (`unmatched` for no route) and status", ["method", "route", "status"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                   1.0, 2.5, 5.0, 10.0))


def serve_metrics(port: int | None, address: str = "0.0.0.0") -> None:
    """Expose /metrics on `port` (nothing when None)."""
    if port is not None:
        start_http_server(port, addr=address)
