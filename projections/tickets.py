"""The ticket read model: one row per ticket, and daily volume counts.

Pure functions of events: `project_ticket(row, envelope)` returns the ticket's row
after the event; `volume_keys(row, envelope)` names the daily counters it bumps. The
SLA facts travel in the row, so SLA reports evaluate them with the domain's own
`evaluate` (never a second implementation), at any as-of instant and under any policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ticketflow.domain.sla import facts_from_event

Row = dict[str, Any]

#: Event types that change the ticket row (others only advance its version).
COUNTERS = {"TicketCreated": "created", "TicketResolved": "resolved",
            "TicketReopened": "reopened", "TicketClosed": "closed"}


def project_ticket(row: Row | None, envelope: dict[str, Any]) -> Row:
    """The ticket row after one event (the event's version must be the next one)."""
    data, at = envelope["data"], envelope["occurred_at"]
    if envelope["type"] == "TicketCreated":
        row = _created(envelope)
    else:
        assert row is not None  # guaranteed by the runner's version check
        row = {**row, "version": envelope["version"]}
    if "to" in data:
        row["status"] = data["to"]
    match envelope["type"]:
        case "TicketAcknowledged" | "UserInputRequested":
            row["first_response_at"] = row["first_response_at"] or at
        case "TicketResolved":
            row["first_response_at"] = row["first_response_at"] or at
            row["resolved_at"] = at
        case "TicketReopened":
            row["resolved_at"] = None
        case "TicketClosed":
            row["closed_at"] = at
        case "TicketEscalated":
            row["level"] = data["level"]
        case "PriorityChanged":
            row["priority"] = data["priority"]
        case "TicketAssigned":
            row["assignee"] = data["agent_id"]
    facts = facts_from_event(envelope["type"], datetime.fromisoformat(at), data)
    if facts:
        row["sla_facts"] = [*row["sla_facts"],
                            *({"at": f.at.isoformat(), "kind": f.kind, "value": f.value}
                              for f in facts)]
    return row


def _created(envelope: dict[str, Any]) -> Row:
    data = envelope["data"]
    return {
        "ticket_id": envelope["ticket_id"], "tenant": envelope["tenant"],
        "version": envelope["version"], "status": "created", "plan": data["plan"],
        "priority": data["priority"], "initial_priority": data["priority"],
        "channel": data["channel"], "category": data["category"],
        "subcategory": data.get("subcategory"), "timezone": data["timezone"],
        "level": data.get("level"), "assignee": None,
        "policy_id": data["policy"]["id"], "policy_version": data["policy"]["version"],
        "policy_hash": data["policy"]["hash"], "created_at": envelope["occurred_at"],
        "first_response_at": None, "resolved_at": None, "closed_at": None, "sla_facts": [],
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
            "score": data["score"], "nps": data.get("nps")}


def self_service_row(envelope: dict[str, Any]) -> Row:
    """A self-service session: solved, or ended by creating a ticket."""
    data = envelope["data"]
    return {"session_id": data["session_id"], "tenant": envelope["tenant"],
            "day": envelope["occurred_at"][:10], "outcome": data["outcome"],
            "articles_viewed": len(data["articles_viewed"])}


ARTICLE_EVENTS = {"ArticleLinked": "linked", "PublicationConsented": "consented",
                  "PublishedAsArticle": "published"}


def article_row(row: Row, envelope: dict[str, Any]) -> Row | None:
    """A knowledge-base link, a customer's consent to publish, or a publication."""
    kind = ARTICLE_EVENTS.get(envelope["type"])
    if kind is None:
        return None
    return {"ticket_id": row["ticket_id"], "version": envelope["version"],
            "tenant": row["tenant"], "day": envelope["occurred_at"][:10], "kind": kind,
            "article_id": envelope["data"].get("article_id")}
