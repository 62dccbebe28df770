"""The ticket read model: one row per ticket, and daily volume counts.

Pure functions of events: `project_ticket(row, envelope)` returns the ticket's row
after the event, folded with the domain's own reducer (`ticketflow.domain.ticket_state`,
the same the aggregate folds with); `volume_key(row, envelope)` names the daily
counters it bumps. The SLA facts travel in the row, so SLA reports evaluate them with
the domain's own `evaluate` (never a second implementation), at any as-of instant and
under any policy.
"""

from __future__ import annotations

from typing import Any, cast

from ticketflow.domain.ticket_state import TicketState, changes, start

Row = dict[str, Any]

#: Event types that change the ticket row (others only advance its version).
COUNTERS = {"TicketCreated": "created", "TicketResolved": "resolved",
            "TicketReopened": "reopened", "TicketClosed": "closed"}


def project_ticket(row: Row | None, envelope: dict[str, Any]) -> Row:
    """The ticket row after one event (the event's version must be the next one). The
    row holds the state's fields it has columns for (`_created`); the reducer folds
    those."""
    if envelope["type"] == "TicketCreated":
        return _created(envelope)
    assert row is not None  # guaranteed by the runner's version check
    state = cast("TicketState[str]", row)
    return {**row, "version": envelope["version"],
            **changes(state, envelope["type"], envelope["occurred_at"], envelope["data"])}


def _created(envelope: dict[str, Any]) -> Row:
    data = envelope["data"]
    state: TicketState[str] = start(envelope["occurred_at"], data)
    return {
        "ticket_id": envelope["ticket_id"], "tenant": envelope["tenant"],
        "version": envelope["version"], "status": state["status"], "plan": state["plan"],
        "priority": state["priority"], "initial_priority": data["priority"],
        "channel": data["channel"], "category": data["category"],
        "subcategory": data.get("subcategory"), "timezone": state["timezone"],
        "level": state["level"], "assignee": state["assignee"],
        "policy_id": data["policy"]["id"], "policy_version": data["policy"]["version"],
        "policy_hash": data["policy"]["hash"], "created_at": state["created_at"],
        "first_response_at": state["first_response_at"], "resolved_at": state["resolved_at"],
        "closed_at": state["closed_at"], "sla_facts": state["sla_facts"],
        "account_id": data["account_id"],
    }


def volume_key(row: Row, envelope: dict[str, Any]) -> tuple[tuple[str, ...], str] | None:
    """((tenant, day, category, channel, priority), counter) the event bumps, if any.

    Days are UTC dates of occurred_at; the priority is the one at creation, so a
    ticket stays in one volume row for its whole life.
    """
    counter = COUNTERS.get(envelope["type"])
    if counter is None:
        return None
    day = envelope["occurred_at"][:10]
    key = (row["tenant"], day, row["category"], row["channel"], row["initial_priority"])
    return key, counter


def satisfaction_row(row: Row, envelope: dict[str, Any]) -> Row | None:
    """One survey answer (CSAT 1-5, NPS 0-10) per SatisfactionRecorded."""
    if envelope["type"] != "SatisfactionRecorded":
        return None
    data = envelope["data"]
    return {"ticket_id": row["ticket_id"], "version": envelope["version"],
            "tenant": row["tenant"], "plan": row["plan"], "day": envelope["occurred_at"][:10],
            "at": envelope["occurred_at"],
            "score": data["score"], "nps": data.get("nps")}


def self_service_row(envelope: dict[str, Any]) -> Row:
    """A self-service session: solved, or ended by creating a ticket."""
    data = envelope["data"]
    return {"session_id": data["session_id"], "tenant": envelope["tenant"],
            "day": envelope["occurred_at"][:10], "at": envelope["occurred_at"],
            "outcome": data["outcome"], "articles_viewed": len(data["articles_viewed"])}


ARTICLE_EVENTS = {"ArticleLinked": "linked", "PublicationConsented": "consented",
                  "PublishedAsArticle": "published"}


def article_row(row: Row, envelope: dict[str, Any]) -> Row | None:
    """A knowledge-base link, a customer's consent to publish, or a publication."""
    kind = ARTICLE_EVENTS.get(envelope["type"])
    if kind is None:
        return None
    return {"ticket_id": row["ticket_id"], "version": envelope["version"],
            "tenant": row["tenant"], "day": envelope["occurred_at"][:10], "kind": kind,
            "article_id": envelope["data"].get("article_id"), "at": envelope["occurred_at"]}
