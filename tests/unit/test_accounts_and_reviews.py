"""Dedicated account managers and response-quality reviews (issue 19), given events →
then events or a rejection, on the aggregates alone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from tests.support.builders import GB, PP, T0, Story, ctx
from ticketflow.domain.accounts import Account
from ticketflow.domain.commands import ASSIGN_ACCOUNT_MANAGER, AssignAccountManager, ReviewTicket
from ticketflow.domain.errors import Forbidden, InvalidTransition, PolicyViolation
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.policy import load_policy_text
from ticketflow.schemas.events import validate_envelope

RUBRIC = {"accurate": True, "complete": False, "empathetic": True}


def assign(plan: str = "enterprise", manager_id: str | None = "am-1") -> AssignAccountManager:
    return AssignAccountManager(plan=plan, manager_id=manager_id)


def opened(manager_id: str = "am-1") -> Account:
    return Account.create(ctx(T0, Role.MANAGER), PP, "acme", assign(manager_id=manager_id))


# -- accounts ---------------------------------------------------------------------------


def test_a_first_assignment_starts_the_accounts_stream() -> None:
    account = opened()
    [event] = account.collect_events()
    assert (event.type_name, event.originator_version, event.ticket_id) == (
        "AccountManagerAssigned", 1, "acme")
    assert event.data == {"account_id": "acme", "plan": "enterprise", "manager_id": "am-1",
                          "from_manager_id": None}
    validate_envelope(event.envelope())


def test_a_later_assignment_records_the_same_event_on_the_account() -> None:
    account = opened()
    later = ctx(T0 + timedelta(days=1), Role.MANAGER)
    account.handle(ASSIGN_ACCOUNT_MANAGER, later, PP, assign(manager_id="am-2"))
    account.handle(ASSIGN_ACCOUNT_MANAGER, later, PP, assign(manager_id=None))
    events = account.collect_events()
    assert [(e.type_name, e.originator_version, e.data["manager_id"],
             e.data["from_manager_id"]) for e in events] == [
        ("AccountManagerAssigned", 1, "am-1", None), ("AccountManagerAssigned", 2, "am-2", "am-1"),
        ("AccountManagerAssigned", 3, None, "am-2")]
    replayed = Account.from_envelopes([e.envelope() for e in events])
    assert replayed is not None
    assert (replayed.manager_id, replayed.version) == (None, 3)


@pytest.mark.parametrize("plan", ["standard", "professional"])
def test_a_plan_without_a_dedicated_manager_is_a_policy_violation(plan: str) -> None:
    with pytest.raises(PolicyViolation, match="no dedicated account manager"):
        Account.create(ctx(T0, Role.MANAGER), PP, "acme", assign(plan))


def test_growgrebuddys_only_plan_has_no_manager() -> None:
    with pytest.raises(PolicyViolation, match="plans that have: none"):
        Account.create(ctx(T0, Role.MANAGER, "growgrebuddy"), GB, "grow-1", assign("standard"))


def test_an_unknown_plan_is_refused_as_create_ticket_refuses_one() -> None:
    with pytest.raises(PolicyViolation, match="unknown plan 'platinum'"):
        Account.create(ctx(T0, Role.MANAGER), PP, "acme", assign("platinum"))


def test_a_manager_is_removed_under_any_known_plan_but_never_from_an_account_without() -> None:
    account = opened()
    account.handle(ASSIGN_ACCOUNT_MANAGER, ctx(T0, Role.MANAGER), PP, assign("standard", None))
    assert (account.plan, account.manager_id) == ("standard", None)
    with pytest.raises(PolicyViolation, match="no manager to remove"):
        Account.create(ctx(T0, Role.MANAGER), PP, "beta", assign(manager_id=None))


def test_the_same_assignment_again_is_refused() -> None:
    account = opened()
    with pytest.raises(PolicyViolation, match="already has that manager"):
        account.handle(ASSIGN_ACCOUNT_MANAGER, ctx(T0, Role.MANAGER), PP, assign())


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT, Role.SYSTEM])
def test_only_a_manager_assigns_an_account_manager(role: Role) -> None:
    with pytest.raises(Forbidden):
        Account.create(ctx(T0, role), PP, "acme", assign())
    account = opened()
    with pytest.raises(Forbidden):
        account.handle(ASSIGN_ACCOUNT_MANAGER, ctx(T0, role), PP, assign(manager_id="am-2"))


def test_another_tenants_manager_may_not_act_on_the_account() -> None:
    with pytest.raises(Forbidden, match="another tenant"):
        opened().handle(ASSIGN_ACCOUNT_MANAGER, ctx(T0, Role.MANAGER, "growgrebuddy"), PP,
                        assign(manager_id="am-2"))


# -- reviews ----------------------------------------------------------------------------


def test_a_review_records_score_rubric_and_who_handled_the_resolution() -> None:
    story = Story().do("assign", agent_id="agent-7").do("escalate").to("resolved")
    story.do("review_ticket", score=3, rubric=RUBRIC, note="tone ok")
    event = story.ticket.pending_events[-1]
    assert event.type_name == "TicketReviewed"
    assert event.data == {"score": 3, "rubric": RUBRIC, "note": "tone ok", "agent_id": "agent-7",
                          "level": "first_level", "resolution": 1,
                          "as_account_manager": False}
    assert story.ticket.status == "resolved"
    validate_envelope(event.envelope())


def test_a_ticket_is_reviewed_again_after_its_close_and_each_review_is_an_event() -> None:
    story = Story().to("resolved").do("review_ticket").do("close").do("review_ticket", score=5)
    assert story.event_types[-3:] == ["TicketReviewed", "TicketClosed", "TicketReviewed"]


@pytest.mark.parametrize("state", ["created", "acknowledged", "in_progress",
                                   "pending_user_input"])
def test_an_open_ticket_is_not_reviewed(state: str) -> None:
    with pytest.raises(InvalidTransition):
        Story().to(state).do("review_ticket")


@pytest.mark.parametrize("rubric, problem", [
    ({"accurate": True, "complete": True}, "missing: empathetic"),
    ({**RUBRIC, "fast": True}, "unknown: fast"),
    ({}, "missing: accurate, complete, empathetic"),
])
def test_a_review_marks_exactly_the_policys_rubric(rubric: dict[str, bool], problem: str) -> None:
    with pytest.raises(PolicyViolation, match=problem):
        Story().to("resolved").do("review_ticket", rubric=rubric)


@pytest.mark.parametrize("mark", [1, 0, 1.0, 0.0, "true", None])
def test_a_rubric_mark_is_true_or_false_and_nothing_that_passes_for_one(mark: object) -> None:
    with pytest.raises(ValidationError, match=r"rubric\.accurate"):
        ReviewTicket.model_validate({"score": 4, "rubric": {**RUBRIC, "accurate": mark}})
    with pytest.raises(ValidationError, match=r"rubric\.accurate"):
        ReviewTicket.model_validate_json(json.dumps({"score": 4, "rubric": {
            **RUBRIC, "accurate": mark}}))


def test_a_policy_without_a_rubric_takes_no_review() -> None:
    story = Story().to("resolved")
    bare = PP.model_copy(update={"quality": type(PP.quality)()})
    story.policy = bare
    with pytest.raises(PolicyViolation, match="no quality rubric"):
        story.do("review_ticket")


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT, Role.SYSTEM])
def test_only_a_manager_reviews(role: Role) -> None:
    with pytest.raises(Forbidden):
        Story().to("resolved").do("review_ticket", role=role)


# -- the policy data --------------------------------------------------------------------


def test_the_shipped_policies_name_their_rubric_and_pp_enterprise_has_managers() -> None:
    assert GB.quality.rubric == ["accurate", "complete", "empathetic", "followed_process"]
    assert PP.quality.rubric == ["accurate", "complete", "empathetic"]
    assert {name for name, plan in PP.plans.items() if plan.account_manager} == {"enterprise"}


def test_a_rubric_item_listed_twice_is_refused() -> None:
    text = PP_TEXT.replace('rubric = ["accurate", "complete", "empathetic"]',
                           'rubric = ["accurate", "accurate"]')
    with pytest.raises(ValueError, match="listed more than once: accurate"):
        load_policy_text(text, "pp.toml")


def test_a_policy_without_the_new_fields_keeps_its_content_hash() -> None:
    """What ADDED_LATER is for: a version stored before `quality` and `account_manager`
    existed hashes as it did (both left out while at their default)."""
    text = PP_TEXT.replace("account_manager = true\n", "")
    text = text.replace('[quality]\nrubric = ["accurate", "complete", "empathetic"]\n', "")
    without = load_policy_text(text, "pp.toml")
    document = without.hashed_document()
    assert "quality" not in document
    assert all("account_manager" not in plan for plan in document["plans"].values())
    assert "quality" in PP.hashed_document()
    assert PP.hashed_document()["plans"]["enterprise"]["account_manager"] is True


PP_TEXT = (__import__("pathlib").Path(__file__).parents[2] / "domain" / "policies"
           / "personalysispro.toml").read_text(encoding="utf-8")
