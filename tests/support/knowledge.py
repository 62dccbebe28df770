"""A fixed knowledge-base corpus and the commands that write it (SPEC §11).

The ranking contract is checked on it: both backends must give `EXPECTED` in this
order. The corpus is made so that the order follows from how many of the searched
words an article holds and where (title over tags over body), not from the fine
print of either ranking function; ties (identical texts) go by article id.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from tests.support.builders import T0

PP, GB = "personalysispro", "growgrebuddy"

#: article id → (title, body, tags), all of personalysispro.
CORPUS: dict[str, tuple[str, str, list[str]]] = {
    "KB-A": ("Exports time out",
             "Large exports stop after thirty seconds. Raise the export timeout in settings.",
             ["export"]),
    "KB-B": ("Reset a password", "Use the link on the sign-in page to reset your password.",
             ["login"]),
    "KB-C": ("Monthly invoices", "Invoices arrive monthly. Billing keeps every export of them.",
             []),
    "KB-D": ("Slow dashboards", "Dashboards render slowly with large data sets.",
             ["performance"]),
    "KB-F": ("Webhook retries", "Failed webhook deliveries are retried hourly.", []),
    "KB-E": ("Webhook retries", "Failed webhook deliveries are retried hourly.", []),
}

#: search text → the article ids expected, best first.
EXPECTED: dict[str, list[str]] = {
    "export timeout": ["KB-A", "KB-C"],
    "password": ["KB-B"],
    "slow dashboards large data": ["KB-D", "KB-A"],
    "webhook": ["KB-E", "KB-F"],  # identical texts: by article id
    "monthly": ["KB-C"],
    "zebra": [],
    "the and of": [],  # only stop words
}


def article_command(message_id: str, kind: str, article_id: str, at: datetime,
                    payload: dict[str, Any], tenant: str = PP, role: str = "agent") -> bytes:
    """create_article / update_article as the bytes an agent console sends."""
    return json.dumps({"message_id": message_id, "type": kind, "tenant": tenant,
                       "article_id": article_id, "occurred_at": at.isoformat(),
                       "actor": {"id": "agent-1", "role": role},
                       "payload": payload}).encode()


def corpus_commands(tenant: str = PP) -> list[bytes]:
    return [article_command(f"kb-{tenant}-{n}", "create_article", article_id,
                            T0 + timedelta(minutes=n), {"title": title, "body": body,
                                                        "tags": tags}, tenant=tenant)
            for n, (article_id, (title, body, tags)) in enumerate(CORPUS.items())]


def session_command(message_id: str, session_id: str, at: datetime, *, outcome: str,
                    shown: list[str], viewed: list[str], ticket_id: str | None = None,
                    tenant: str = PP) -> bytes:
    """record_self_service from the widget: what it suggested, what was opened."""
    payload: dict[str, Any] = {"articles_viewed": viewed, "outcome": outcome,
                               "suggestions_shown": shown}
    if ticket_id:
        payload["ticket_id"] = ticket_id
    return json.dumps({"message_id": message_id, "type": "record_self_service",
                       "tenant": tenant, "session_id": session_id,
                       "occurred_at": at.isoformat(),
                       "actor": {"id": "widget", "role": "system"},
                       "payload": payload}).encode()
