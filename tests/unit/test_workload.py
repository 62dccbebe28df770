"""The demo workload generator: deterministic, realistic, and only valid commands.

The checker below is written from SPEC §2, §3 and §5 on its own, without the
generator's code or the engine's tables, so a mistake in one does not hide in the
other: the lifecycle from the tests' SPEC §3 oracle (tests/support/spec.py), due
instants from the naive calendar oracle (tests/support/oracle.py).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import oracle
from tests.support.spec import (
    ALLOWED_FROM,
    CREATION_WHO_MAY,
    MANAGER_ONLY,
    OPEN,
    RESULT,
    TIMER_ONLY,
    WHO_MAY,
)
from ticketflow.tools.workload import advance, generate_workload, policy_of

PP = "personalysispro"
GB = "growgrebuddy"
START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 42
END = START + timedelta(days=DAYS)

COMMON_FIELDS = {"message_id", "type", "tenant", "occurred_at", "actor", "payload"}
OFFSET = re.compile(r"T\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
#: The commands the workload sends, and as whom: never the timer's commands nor a
#: manager's review (spec.MANAGER_ONLY), and the system role only to create tickets
#: (the social-media and status monitors).
GENERATED = set(ALLOWED_FROM) - TIMER_ONLY - MANAGER_ONLY
WHO: dict[str, set[str]] = {
    **{command: set(WHO_MAY[command]) - {"system"} for command in GENERATED},
    "create_ticket": set(CREATION_WHO_MAY["create_ticket"]),
    "record_self_service": set(CREATION_WHO_MAY["record_self_service"]) - {"system"},
}
PAYLOAD_KEYS: dict[str, set[str]] = {
    "acknowledge": set(),
    "start_work": set(),
    "receive_user_input": set(),
    "request_user_input": {"question"},
    "resolve": {"resolution"},
    "reopen": {"reason"},
    "close": {"reason"},
    "escalate": {"level", "reason"},
    "change_priority": {"priority", "reason"},
    "assign": {"agent_id"},
    "add_comment": {"body", "visibility"},
    "link_article": {"article_id"},
    "consent_to_publish": set(),
    "publish_as_article": {"article_id"},
}
LADDER: dict[str, list[str | None]] = {
    PP: [None, "first_level", "second_level", "management"],
    GB: ["tier1", "tier2", "tier3"],
}
PP_CATEGORIES = {
    "account": {"login", "access_permissions", "account_verification", "billing"},
    "technical": {"application_error", "performance", "integration", "data_import_export"},
    "feature_request": {"new_feature", "enhancement", "integration_possibility"},
    "survey_management": {
        "survey_creation",
        "response_collection",
        "data_analysis",
        "report_generation",
    },
    "security": {"data_privacy", "vulnerability", "compliance"},
}
PP_PLAN_CHANNELS = {
    "standard": {"in_app", "email"},
    "professional": {"in_app", "email", "phone"},
    "enterprise": {"in_app", "email", "phone"},
}
GB_CATEGORIES = {
    "account",
    "billing_payments",
    "app_functionality",
    "feature_request",
    "bug_report",
    "data_privacy",
}
GB_CHANNELS = {"in_app_chat", "in_app_ticket", "email", "social", "community_forum"}
PRIORITIES = ["critical", "high", "medium", "low"]
PP_FIRST_RESPONSE = {  # minutes, SPEC §2.1
    "standard": {"critical": 240, "high": 240, "medium": 720, "low": 1440},
    "professional": {"critical": 120, "high": 180, "medium": 480, "low": 960},
    "enterprise": {"critical": 30, "high": 60, "medium": 240, "low": 480},
}


ORACLE_CALENDARS = {tenant: oracle.calendars(oracle.load_policy(tenant)) for tenant in (PP, GB)}


def due(tenant: str, start: datetime, minutes: int, calendar: str, tz_name: str) -> datetime:
    """When `minutes` of the tenant's `calendar` have passed after `start` (the oracle)."""
    return oracle.advance(ORACLE_CALENDARS[tenant][calendar], tz_name, start, minutes * 60)


def when(envelope: dict[str, Any]) -> datetime:
    at = datetime.fromisoformat(envelope["occurred_at"])
    assert at.utcoffset() is not None, envelope
    return at


@dataclass
class Story:
    tenant: str
    create: dict[str, Any]
    state: str = "created"
    level: str | None = None
    priority: str = ""
    last: datetime = START
    satisfaction_open: bool = False
    consented: bool = False
    resolved_at: datetime | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)


def check_create(envelope: dict[str, Any], account_tz: dict[str, str | None]) -> None:
    p = envelope["payload"]
    assert p["priority"] in PRIORITIES
    assert p["subject"] and p["description"]
    if envelope["tenant"] == PP:
        assert envelope["ticket_id"].startswith("PP-")
        assert p["plan"] in PP_PLAN_CHANNELS
        assert p["channel"] in PP_PLAN_CHANNELS[p["plan"]], p
        assert p["subcategory"] in PP_CATEGORIES[p["category"]], p
        assert "platform" not in p
        ZoneInfo(p["timezone"])  # required and a real IANA zone
    else:
        assert envelope["ticket_id"].startswith("GB-")
        assert p["plan"] == "standard"
        assert p["channel"] in GB_CHANNELS
        assert p["category"] in GB_CATEGORIES
        assert "subcategory" not in p
        if p["channel"] == "social":
            assert p["platform"] in {"twitter", "facebook", "instagram"}
        else:
            assert "platform" not in p
        if "timezone" in p:
            ZoneInfo(p["timezone"])
    key = f"{envelope['tenant']}/{p['account_id']}"
    tz = p.get("timezone")
    assert account_tz.setdefault(key, tz) == tz, "an account keeps its time zone"


def step(story: Story, envelope: dict[str, Any]) -> None:
    kind, p, role = envelope["type"], envelope["payload"], envelope["actor"]["role"]
    assert story.state in ALLOWED_FROM[kind], (kind, story.state, envelope)
    if kind in PAYLOAD_KEYS:
        assert set(p) == PAYLOAD_KEYS[kind], envelope
    if kind == "add_comment":
        assert p["visibility"] in {"public", "internal"}
        assert role == "agent" or p["visibility"] == "public", envelope
    elif kind == "escalate":
        ladder = LADDER[story.tenant]
        old, new = ladder.index(story.level), ladder.index(p["level"])
        assert new > old, envelope
        assert new == old + 1 or story.priority == "critical", envelope
        story.level = p["level"]
    elif kind == "change_priority":
        assert p["priority"] in PRIORITIES and p["priority"] != story.priority
        story.priority = p["priority"]
    elif kind == "record_satisfaction":
        assert story.satisfaction_open, "one satisfaction per resolution"
        assert p["score"] in range(1, 6)
        assert set(p) <= {"score", "comment", "nps"}
        assert "nps" not in p or (story.tenant == GB and p["nps"] in range(11))
        story.satisfaction_open = False
    elif kind == "consent_to_publish":
        story.consented = True
    elif kind == "publish_as_article":
        assert story.consented
    elif kind == "close":
        assert p == {"reason": "confirmed"}
    elif kind == "resolve":
        story.satisfaction_open = True
        story.resolved_at = when(envelope)
    if kind in {"reopen", "close", "add_comment"} and story.state == "resolved":
        assert story.resolved_at is not None
        assert when(envelope) - story.resolved_at < timedelta(days=7), "auto-close comes first"
    story.state = RESULT.get(kind, story.state)


def check_workload(
    workload: list[dict[str, Any]], start: datetime = START, end: datetime = END
) -> dict[str, Story]:
    """Replay the workload through the independent rules; return the final stories."""
    stories: dict[str, Story] = {}
    account_tz: dict[str, str | None] = {}
    sessions: list[dict[str, Any]] = []
    ids = [e["message_id"] for e in workload]
    assert len(ids) == len(set(ids))
    previous = None
    for envelope in workload:
        at = when(envelope)
        assert start <= at < end, envelope
        assert previous is None or at >= previous, "sorted by occurred_at"
        previous = at
        assert envelope["tenant"] in {PP, GB}
        assert set(envelope["actor"]) == {"id", "role"} and envelope["actor"]["id"]
        assert envelope["actor"]["role"] in WHO[envelope["type"]], envelope
        if envelope["type"] == "record_self_service":
            assert "ticket_id" not in envelope and envelope["session_id"].startswith("SS-")
            sessions.append(envelope)
            continue
        assert "session_id" not in envelope
        tid = envelope["ticket_id"]
        if envelope["type"] == "create_ticket":
            assert tid not in stories, "ticket ids are unique across tenants"
            check_create(envelope, account_tz)
            priority = envelope["payload"]["priority"]
            level = None if envelope["tenant"] == PP else "tier1"
            if envelope["tenant"] == GB and priority == "critical":
                level = "tier3"  # SPEC §2.2: critical tickets go to tier3 at creation
            stories[tid] = Story(envelope["tenant"], envelope, level=level, priority=priority)
        else:
            story = stories[tid]  # never a command before the ticket exists
            assert envelope["tenant"] == story.tenant
            assert at >= story.last, "never older than the ticket's previous command"
            step(story, envelope)
        stories[tid].last = at
        stories[tid].commands.append(envelope)
    for session in sessions:
        p = session["payload"]
        assert p["outcome"] in {"solved", "ticket_created"}
        assert p["articles_viewed"] and all(isinstance(a, str) for a in p["articles_viewed"])
        if p["outcome"] == "ticket_created":
            created = stories[p["ticket_id"]]
            assert created.tenant == session["tenant"]
            assert when(session) <= when(created.create)
        else:
            assert "ticket_id" not in p
    return stories


@pytest.fixture(scope="module")
def workload() -> list[dict[str, Any]]:
    return generate_workload(seed=11, tickets=500)


@pytest.fixture(scope="module")
def stories(workload: list[dict[str, Any]]) -> dict[str, Story]:
    return check_workload(workload)


def creates(workload: list[dict[str, Any]], tenant: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in workload
        if e["type"] == "create_ticket" and (tenant is None or e["tenant"] == tenant)
    ]


# -------------------------------------------------------------------- determinism
def test_same_seed_same_workload() -> None:
    assert generate_workload(3, tickets=150) == generate_workload(3, tickets=150)


def test_different_seeds_differ() -> None:
    assert generate_workload(3, tickets=150) != generate_workload(4, tickets=150)


def test_message_ids_are_deterministic_and_sequential(workload: list[dict[str, Any]]) -> None:
    assert workload[0]["message_id"] == "demo-11-000001"
    assert workload[-1]["message_id"] == f"demo-11-{len(workload):06d}"


def test_does_not_touch_global_random_state() -> None:
    import random

    random.seed(99)
    expected = random.random()
    random.seed(99)
    generate_workload(5, tickets=50)
    assert random.random() == expected


# ------------------------------------------------------------------------ validity
def test_envelopes_have_the_required_fields(workload: list[dict[str, Any]]) -> None:
    for e in workload:
        subject = "session_id" if e["type"] == "record_self_service" else "ticket_id"
        assert set(e) == {*COMMON_FIELDS, subject}
        assert OFFSET.search(e["occurred_at"]), e["occurred_at"]
        assert when(e).microsecond == 0
        assert isinstance(e["payload"], dict)


def test_every_story_obeys_the_lifecycle(stories: dict[str, Story]) -> None:
    assert len(stories) == 500


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_obey_the_lifecycle(seed: int) -> None:
    check_workload(generate_workload(seed, tickets=400))


def test_short_window_cuts_stories_cleanly() -> None:
    start = datetime(2027, 3, 26, 12, tzinfo=UTC)  # across the European DST change
    workload = generate_workload(21, tickets=300, start=start, days=3)
    stories = check_workload(workload, start, start + timedelta(days=3))
    open_share = sum(s.state in OPEN for s in stories.values()) / len(stories)
    assert open_share > 0.2  # little time to finish in a 3-day window


def test_timer_commands_are_not_generated(workload: list[dict[str, Any]]) -> None:
    assert not {e["type"] for e in workload} - set(WHO)
    assert all(e["actor"]["role"] != "system" or e["type"] == "create_ticket" for e in workload)


def test_growgrebuddy_manual_tier2_comes_before_the_automatic_one(
    stories: dict[str, Story],
) -> None:
    for story in stories.values():
        for e in story.commands:
            if e["type"] == "escalate" and e["payload"]["level"] == "tier2":
                tz = story.create["payload"].get("timezone", "UTC")
                assert when(e) < due(GB, when(story.create), 60, "frontline", tz)


def test_the_workload_counts_working_time_on_the_policies_calendars() -> None:
    pp, gb = policy_of(PP), policy_of(GB)
    new_york = ZoneInfo("America/New_York")
    friday = datetime(2026, 10, 9, 16, 30, tzinfo=new_york)
    assert advance(pp, "business", new_york, friday, 60) == datetime(
        2026, 10, 12, 9, 30, tzinfo=new_york
    )
    berlin = ZoneInfo("Europe/Berlin")  # DST ends on Sunday 2026-10-25
    late = datetime(2026, 10, 23, 19, 30, tzinfo=berlin)
    assert advance(pp, "extended", berlin, late, 60) == datetime(
        2026, 10, 26, 7, 30, tzinfo=UTC
    )
    assert advance(gb, "frontline", berlin, late, 60) == datetime(
        2026, 10, 24, 8, 30, tzinfo=berlin
    )
    assert advance(pp, "always", berlin, late, 90) == late + timedelta(minutes=90)


def test_rejects_a_naive_start() -> None:
    with pytest.raises(ValueError):
        generate_workload(1, tickets=5, start=datetime(2026, 10, 5))


def test_no_tickets_no_commands() -> None:
    assert generate_workload(1, tickets=0) == []


# ------------------------------------------------------------------------- realism
def test_both_tenants_in_the_agreed_split(workload: list[dict[str, Any]]) -> None:
    tenants = Counter(e["tenant"] for e in creates(workload))
    assert tenants == {PP: 275, GB: 225}
    assert len({e["ticket_id"][3:] for e in creates(workload)}) < 500  # numbers repeat


def test_priority_mix(workload: list[dict[str, Any]]) -> None:
    mix = Counter(e["payload"]["priority"] for e in creates(workload))
    assert set(mix) == set(PRIORITIES)
    assert 0.02 <= mix["critical"] / 500 <= 0.10
    assert 0.12 <= mix["high"] / 500 <= 0.30
    assert 0.40 <= mix["medium"] / 500 <= 0.60
    assert 0.15 <= mix["low"] / 500 <= 0.35


def test_channel_plan_and_category_mix(workload: list[dict[str, Any]]) -> None:
    pp, gb = creates(workload, PP), creates(workload, GB)
    assert {e["payload"]["plan"] for e in pp} == set(PP_PLAN_CHANNELS)
    assert {e["payload"]["channel"] for e in pp} == {"in_app", "email", "phone"}
    assert {e["payload"]["channel"] for e in gb} == GB_CHANNELS
    assert {e["payload"]["category"] for e in pp} == set(PP_CATEGORIES)
    assert {e["payload"]["category"] for e in gb} == GB_CATEGORIES
    assert {e["actor"]["role"] for e in creates(workload)} == {"customer", "agent", "system"}
    assert Counter(e["actor"]["role"] for e in creates(workload))["customer"] > 350
    assert any("timezone" not in e["payload"] for e in gb)


def test_arrivals_follow_business_hours(workload: list[dict[str, Any]]) -> None:
    pp = creates(workload, PP)
    local = [when(e).astimezone(ZoneInfo(e["payload"]["timezone"])) for e in pp]
    in_hours = [t for t in local if t.weekday() < 5 and 8 <= t.hour < 18]
    assert len(in_hours) / len(pp) > 0.6
    weekend = [t for t in local if t.weekday() >= 5]
    assert 0 < len(weekend) / len(pp) < 0.12


def test_growgrebuddy_has_weekend_chat(workload: list[dict[str, Any]]) -> None:
    gb = creates(workload, GB)
    weekend = [e for e in gb if when(e).weekday() >= 5]
    assert len(weekend) / len(gb) > 0.12
    assert any(e["payload"]["channel"] == "in_app_chat" for e in weekend)


def test_story_mix(workload: list[dict[str, Any]], stories: dict[str, Story]) -> None:
    kinds = Counter(e["type"] for e in workload)
    for kind in GENERATED:
        assert kinds[kind] > 0, kind
    escalated = {e["ticket_id"] for e in workload if e["type"] == "escalate"}
    assert 0.07 <= len(escalated) / 500 <= 0.25
    open_share = sum(s.state in OPEN for s in stories.values()) / len(stories)
    assert 0.05 <= open_share <= 0.16
    reopened = {e["ticket_id"] for e in workload if e["type"] == "reopen"}
    assert 0.02 <= len(reopened) / 500 <= 0.12
    comments = Counter(e["payload"]["visibility"] for e in workload if e["type"] == "add_comment")
    assert comments["public"] > 0 and comments["internal"] > 0


def test_satisfaction_skews_positive(workload: list[dict[str, Any]]) -> None:
    scores = [e["payload"] for e in workload if e["type"] == "record_satisfaction"]
    assert sum(s["score"] >= 4 for s in scores) / len(scores) > 0.6
    assert {s["score"] for s in scores} == {1, 2, 3, 4, 5}
    assert any("nps" in s for s in scores)


def test_first_response_mostly_within_target(stories: dict[str, Story]) -> None:
    """Acknowledgements land within the target most of the time, not always."""
    met = late = 0
    for story in stories.values():
        if story.tenant != PP:
            continue
        p = story.create["payload"]
        first = next((e for e in story.commands if e["type"] in {"acknowledge", "resolve"}), None)
        if first is None:
            continue
        plan, priority = p["plan"], p["priority"]
        calendar = {"standard": "business", "professional": "extended"}.get(plan, "extended")
        if plan == "enterprise" and priority == "critical":
            calendar = "always"
        target = PP_FIRST_RESPONSE[plan][priority]
        due_at = due(PP, when(story.create), target, calendar, p["timezone"])
        met, late = (met + 1, late) if when(first) <= due_at else (met, late + 1)
    assert 0.75 <= met / (met + late) <= 0.97


def test_self_service_sessions(workload: list[dict[str, Any]]) -> None:
    sessions = [e for e in workload if e["type"] == "record_self_service"]
    by_tenant = Counter(e["tenant"] for e in sessions)
    assert by_tenant[GB] > 3 * by_tenant[PP] > 0
    solved = sum(e["payload"]["outcome"] == "solved" for e in sessions) / len(sessions)
    assert 0.45 <= solved <= 0.75
    ids = [e["session_id"] for e in sessions]
    assert len(ids) == len(set(ids))
