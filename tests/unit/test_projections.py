"""Given events, the ticket row and the volume counters they produce (pure)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.support.builders import T0, Story
from ticketflow.projections.tickets import article_row, project_ticket, volume_key


def envelopes(story: Story) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(e.envelope()))  # as it arrives from the log or Kafka
            for e in story.ticket.pending_events]  # type: ignore[attr-defined]


def fold(story: Story) -> dict[str, Any]:
    row = None
    for envelope in envelopes(story):
        row = project_ticket(row, envelope)
    assert row is not None
    return row


def test_a_ticket_row_follows_its_lifecycle() -> None:
    story = (Story(plan="enterprise", priority="high").do("acknowledge").do("escalate")
             .do("assign", agent_id="a-9").do("change_priority", priority="critical")
             .do("resolve"))
    row = fold(story)
    assert {k: row[k] for k in ("status", "level", "assignee", "priority", "initial_priority",
                                "version", "policy_id")} == {
        "status": "resolved", "level": "first_level", "assignee": "a-9",
        "priority": "critical", "initial_priority": "high", "version": 6,
        "policy_id": "personalysispro"}
    assert row["first_response_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert row["resolved_at"] == (T0 + timedelta(minutes=5)).isoformat()


def test_the_row_carries_exactly_the_aggregates_sla_facts() -> None:
    story = Story().do("acknowledge").do("request_user_input").do("receive_user_input")
    story.do("change_priority", priority="low").do("resolve").do("reopen")
    row = fold(story)
    expected = [{"at": f["at"].isoformat(), "kind": f["kind"], "value": f["value"]}
                for f in story.ticket.sla_facts]
    assert row["sla_facts"] == expected


def test_reopen_clears_the_resolution_and_close_sets_closed_at() -> None:
    story = Story().do("resolve").do("reopen").do("resolve").do("close")
    row = fold(story)
    assert row["status"] == "closed" and row["closed_at"] is not None
    assert row["resolved_at"] == (T0 + timedelta(minutes=3)).isoformat()


def test_volume_counts_created_resolved_reopened_and_closed_under_the_first_priority() -> None:
    story = Story().do("change_priority", priority="low").do("resolve").do("reopen")
    story.do("resolve").do("close")
    row, keys = None, []
    for envelope in envelopes(story):
        row = project_ticket(row, envelope)
        keys.append(volume_key(row, envelope))
    counted = [k for k in keys if k is not None]
    day = T0.date().isoformat()
    dims = ("personalysispro", day, "technical", "email", "high")
    assert counted == [(dims, "created"), (dims, "resolved"), (dims, "reopened"),
                       (dims, "resolved"), (dims, "closed")]


def test_links_consents_and_publications_are_recorded_per_event() -> None:
    story = (Story().do("link_article", article_id="KB-7").do("resolve")
             .do("consent_to_publish").do("publish_as_article", article_id="KB-99"))
    row, found = None, []
    for envelope in envelopes(story):
        row = project_ticket(row, envelope)
        found.append(article_row(row, envelope))
    assert [(a["kind"], a["article_id"], a["version"]) for a in found if a] == [
        ("linked", "KB-7", 2), ("consented", None, 4), ("published", "KB-99", 5)]
