"""Accounts' dedicated managers and quality reviews (issue 19), as pure functions of
events.

- `rm_accounts`: one row per account with a stream, its latest `AccountManagerAssigned`
  (each carries the whole assignment). Written by an upsert that keeps the row of the
  greatest version, so a redelivered older event changes nothing.
- `rm_reviews`: one row per `TicketReviewed`, keyed like every ticket event (tenant,
  ticket id, version): who reviewed, the score, the rubric marks, and who handled the
  resolution at which level (the event's own data). Reports count each ticket's latest
  review (`projections/quality.py`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ticketflow.projections.db import Tables, insert_many, select_many, upsert_many

Row = dict[str, Any]
ACCOUNT_EVENTS = frozenset({"AccountManagerAssigned"})


def account_row(envelope: dict[str, Any]) -> Row:
    """An account after one of its events."""
    data = envelope["data"]
    return {"tenant": envelope["tenant"], "account_id": envelope["ticket_id"],
            "version": envelope["version"], "manager_id": data["manager_id"],
            "plan": data["plan"], "assigned_at": envelope["occurred_at"]}


def review_row(envelope: dict[str, Any]) -> Row | None:
    """A quality review of a ticket (None for any other event)."""
    if envelope["type"] != "TicketReviewed":
        return None
    data = envelope["data"]
    return {"tenant": envelope["tenant"], "ticket_id": envelope["ticket_id"],
            "version": envelope["version"], "at": envelope["occurred_at"],
            "reviewer": envelope["actor"]["id"], "agent_id": data["agent_id"],
            "level": data["level"], "score": data["score"], "rubric": data["rubric"]}


def write_accounts(conn: Connection, t: Tables, envelopes: list[dict[str, Any]]) -> None:
    """Each account's latest row among those written and these events."""
    latest: dict[tuple[str, str], Row] = {}
    for row in map(account_row, envelopes):
        key = (row["tenant"], row["account_id"])
        if key not in latest or row["version"] > latest[key]["version"]:
            latest[key] = row
    upsert_many(conn, t.accounts, [latest[key] for key in sorted(latest)],
                ("tenant", "account_id"), greatest="version")


def write_reviews(conn: Connection, t: Tables, rows: list[Row]) -> None:
    insert_many(conn, t.reviews, rows)


def managers(conn: Connection, t: Tables, rows: list[Row]) -> list[Row]:
    """Report rows by account, each with its account's current manager (None: none)."""
    keys = sorted({(row["tenant"], row["account_id"]) for row in rows})
    found = {(a["tenant"], a["account_id"]): a["manager_id"]
             for a in select_many(conn, t.accounts, ("tenant", "account_id"), keys)}
    return [{**{name: row[name] for name in ("period", "tenant", "account_id") if name in row},
             "manager_id": found.get((row["tenant"], row["account_id"])), **row}
            for row in rows]
