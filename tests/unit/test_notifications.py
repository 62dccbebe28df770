"""Notification rules (SPEC §10): policy data checked at load, events → notifications,
regular updates on the ticket's calendar, deterministic ids, customer-visible only."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.builders import PP, T0, Story, created, ctx
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.notifications import Header, on_command, on_update, updates_due
from ticketflow.domain.policy import Policy, PolicyError, policy_from_data
from ticketflow.domain.ticket import Ticket


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def with_notifications(**notifications: Any) -> dict[str, Any]:
    document = PP.model_dump(mode="json")
    document["version"] = "9.9.9"
    document["notifications"] = {"rules": {}, "templates": {}, "account_managers": {},
                                 **notifications}
    return document


def one_rule(sources: dict[str, str], **rule: Any) -> dict[str, Any]:
    rule = {"on": "TicketEscalated", "audience": ["customer"], "channel": "email",
            "template": "t", **rule}
    return with_notifications(rules={"r": rule}, templates={"t": sources})


PLAIN = {"subject": "s {{ ticket.id }}", "text": "t", "html": "<p>{{ ticket.subject }}</p>"}


def loads(document: dict[str, Any]) -> Policy:
    return policy_from_data(document, "test.toml")


# -- the policy: rules and templates checked when it loads --------------------------------


@pytest.mark.parametrize(("template", "problem"), [
    ({**PLAIN, "text": "{{ ticket.subjet }}"}, "text: UndefinedError: 'dict object' has no"
                                               " attribute 'subjet'"),
    ({**PLAIN, "html": "{% if %}"}, "html: TemplateSyntaxError"),
    ({**PLAIN, "subject": "{{ 1 / 0 }}"}, "subject: ZeroDivisionError"),
    # a sandbox refuses what could reach the interpreter
    ({**PLAIN, "text": "{{ ticket.__class__.__mro__ }}"}, "text: SecurityError"),
])
def test_a_template_that_fails_to_render_is_a_policy_error_at_load(
        template: dict[str, str], problem: str) -> None:
    with pytest.raises(PolicyError) as raised:
        loads(one_rule(template))
    assert "notifications.templates.t." + problem in str(raised.value)
    assert "test.toml" in str(raised.value)


def test_a_template_reaching_for_an_internal_field_is_refused_at_load() -> None:
    # an escalation's reason is the agent's, never the customer's
    with pytest.raises(PolicyError, match="has no attribute 'reason'"):
        loads(one_rule({**PLAIN, "text": "why: {{ event.reason }}"}))
    with pytest.raises(PolicyError, match="'visibility' is not a customer-visible field"):
        loads(one_rule(PLAIN, on="CommentAdded", when={"visibility": "internal"}))


@pytest.mark.parametrize(("rule", "problem"), [
    ({"template": "nope"}, "rules.r.template: unknown template 'nope'"),
    ({"on": "TicketCreatedd"}, "rules.r: on: 'TicketCreatedd' is not an event"),
    ({"on": None, "every": "4h", "while_level": "boss"}, "while_level: 'boss' is not a level"),
    ({"every": "4h", "while_level": "management"}, "name either an event"),
    ({"on": None}, "name either an event"),
    ({"audience": []}, "name at least one of customer, assignee, account_manager"),
    ({"audience": ["everyone"]}, "audience.0"),
    ({"channel": "pigeon"}, "channel"),
])
def test_a_rule_that_cannot_be_followed_is_refused_naming_it(
        rule: dict[str, Any], problem: str) -> None:
    with pytest.raises(PolicyError, match="invalid policy") as raised:
        loads(one_rule(PLAIN, **rule))
    assert problem in str(raised.value)


def test_a_policy_without_notifications_keeps_the_content_hash_it_had() -> None:
    document = PP.model_dump(mode="json")
    del document["notifications"]
    del document["quality"]  # the other parts added later (issue 19) left out too
    del document["tier_goals"]
    for plan in document["plans"].values():
        del plan["account_manager"]
    policy = loads(document)
    before = json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert policy.content_hash == hashlib.sha256(before.encode()).hexdigest()
    assert PP.content_hash != policy.content_hash  # the shipped rules are part of it


def test_the_shipped_policies_name_their_rules() -> None:
    assert sorted(PP.notifications.rules) == [
        "escalated_first_level", "escalated_management", "escalated_second_level",
        "management_update", "satisfaction_survey"]


# -- events → notifications ----------------------------------------------------------------


def notifications_of(story: Story, policy: Policy = PP) -> list[dict[str, Any]]:
    """Every command's notifications, one command (= one event here) at a time."""
    envelopes = [event.envelope() for event in story.ticket.pending_events]  # type: ignore[attr-defined]
    header = Header.of(envelopes[0])
    found = []
    for envelope in envelopes:
        found += on_command(policy, header, story.ticket, [envelope])
    return found


def summary(documents: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(d["rule"], d["audience"], d["recipient"]) for d in documents]


def test_an_escalation_to_first_level_tells_the_customer() -> None:
    story = Story().do("escalate", level="first_level", reason="angry customer")
    (notice,) = notifications_of(story)
    assert summary([notice]) == [("escalated_first_level", "customer", "actor-1")]
    assert notice["at"] == "2026-11-16T14:01:00+00:00" and notice["channel"] == "email"
    assert notice["subject"] == "[T-1] Your ticket has been escalated"
    assert "Exports time out" in notice["text"] and "angry" not in json.dumps(notice)
    assert notice["trigger"]["version"] == 2 and notice["trigger"]["kind"] == "event"


def test_management_tells_the_account_manager_where_the_account_has_one() -> None:
    acme = Story().do("escalate", level="first_level").do("escalate", level="second_level")
    acme.do("escalate", level="management")
    assert summary(notifications_of(acme))[-2:] == [
        ("escalated_management", "customer", "actor-1"),
        ("escalated_management", "account_manager", "am-dana")]
    other = Story(account_id="globex").do("escalate", level="first_level")
    other.do("escalate", level="second_level").do("escalate", level="management")
    assert summary(notifications_of(other))[-1] == ("escalated_management", "customer",
                                                    "actor-1")


def test_an_internal_comment_never_reaches_a_notification() -> None:
    rule = {"on": "CommentAdded", "audience": ["customer", "assignee"], "channel": "in_app",
            "template": "t"}
    template = {"subject": "New reply", "text": "{{ event.body }}",
                "html": "<p>{{ event.body }}</p>"}
    policy = loads(with_notifications(rules={"reply": rule}, templates={"t": template}))
    story = Story().do("assign", agent_id="agent-7")
    story.do("add_comment", role=Role.AGENT, body="SECRET: refund them", visibility="internal")
    story.do("add_comment", role=Role.AGENT, body="We are on it <b>now</b>",
             visibility="public")
    found = notifications_of(story, policy)
    assert summary(found) == [("reply", "customer", "actor-1"), ("reply", "assignee", "agent-7")]
    assert "SECRET" not in json.dumps(found)
    assert found[0]["text"] == "We are on it <b>now</b>"
    assert found[0]["html"] == "<p>We are on it &lt;b&gt;now&lt;/b&gt;</p>"  # autoescaped


def test_a_ticket_an_agent_opened_tells_the_account() -> None:
    story = Story()
    story.ticket = Ticket.create(ctx(T0, Role.AGENT), PP, "T-1", created())
    story.do("resolve")
    assert summary(notifications_of(story)) == [("satisfaction_survey", "customer", "acme")]


def test_notification_ids_are_derived_from_ticket_event_rule_and_audience() -> None:
    def ids(story: Story) -> list[str]:
        return [d["notification_id"] for d in notifications_of(story)]

    first = Story().do("escalate", level="first_level").do("escalate", level="second_level")
    again = Story().do("escalate", level="first_level").do("escalate", level="second_level")
    assert ids(first) == ids(again) and len(set(ids(first))) == 2
    assert ids(Story(tenant="personalysispro", ticket_id="T-2")
               .do("escalate", level="first_level"))[0] not in ids(first)


# -- regular updates, timer-driven on the ticket's calendar ------------------------------


def at_management(**payload: Any) -> Story:
    story = Story(**payload).do("escalate", level="first_level")
    story.do("escalate", level="second_level")
    return story.do("escalate", level="management", after=timedelta(hours=7, minutes=58))


def dues(story: Story, count: int) -> list[tuple[str, datetime, int]]:
    header = Header.of(story.ticket.pending_events[0].envelope())  # type: ignore[attr-defined]
    found = []
    for due in updates_due(story.ticket, PP, header):
        found.append((due.rule, due.at, due.number))
        if len(found) == count:
            return found
    return found


def test_regular_updates_fall_due_every_four_hours_on_the_tickets_calendar() -> None:
    # professional/high on `extended` (Mon-Fri 08-20 New York); at management Mon 17:00
    # (22:00Z): 3 h to 20:00, then Tue 08:00 + 1 h; 13:00; 17:00; Wed 09:00 (from 17:00
    # Tue: 3 h, then 1 h); Friday evening to Monday morning is closed
    story = at_management()
    assert story.at == utc(2026, 11, 16, 22)
    assert dues(story, 4) == [("management_update", utc(2026, 11, 17, 14), 1),
                              ("management_update", utc(2026, 11, 17, 18), 2),
                              ("management_update", utc(2026, 11, 17, 22), 3),
                              ("management_update", utc(2026, 11, 18, 14), 4)]


def test_enterprise_critical_updates_run_around_the_clock() -> None:
    story = at_management(plan="enterprise", priority="critical")
    assert [at for _, at, _ in dues(story, 2)] == [story.at + timedelta(hours=4),
                                                   story.at + timedelta(hours=8)]


def test_updates_already_past_at_the_last_event_are_not_due_again() -> None:
    story = at_management().do("add_comment", after=timedelta(hours=17))  # Tue 10:00 NY
    assert [n for _, _, n in dues(story, 2)] == [2, 3]


def test_nothing_is_due_below_management_or_once_resolved_and_again_after_a_reopen() -> None:
    assert dues(Story().do("escalate", level="first_level"), 1) == []
    story = at_management().do("resolve")
    assert dues(story, 1) == []
    story.do("reopen", after=timedelta(hours=1))  # Mon 18:01 NY: 1 h 59 to 20:00, 2 h 01 Tue
    assert dues(story, 1) == [("management_update", utc(2026, 11, 17, 15, 1), 1)]


def test_an_update_renders_the_ticket_as_it_stands() -> None:
    story = at_management()
    header = Header.of(story.ticket.pending_events[0].envelope())  # type: ignore[attr-defined]
    due = next(updates_due(story.ticket, PP, header))
    customer, manager = on_update(PP, header, story.ticket, due)
    assert (customer["recipient"], manager["recipient"]) == ("actor-1", "am-dana")
    assert customer["trigger"] == {"kind": "timer", "due_at": "2026-11-17T14:00:00+00:00"}
    assert "status is created, priority high" in customer["text"]
    assert "(as of 2026-11-17T09:00:00-05:00)" in customer["text"]
    assert due.at > T0
