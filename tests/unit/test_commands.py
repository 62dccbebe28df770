"""The command registry is the SPEC §3 table: each entry's states, result, roles and
event are the specification's, and each is wired once: its payload model is the one
the envelope validates, its method on the aggregate is the one that runs it."""

from __future__ import annotations

import pytest

from tests.support.builders import Story, ctx
from tests.support.spec import (
    ACCOUNT_COMMANDS,
    ALLOWED_FROM,
    ARTICLE_COMMANDS,
    CREATION_WHO_MAY,
    EXPECTED_EVENT,
    RESULT,
    WHO_MAY,
)
from ticketflow.domain.accounts import Account
from ticketflow.domain.articles import Article
from ticketflow.domain.commands import ACKNOWLEDGE, COMMANDS, Resolve
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.ticket import Ticket
from ticketflow.schemas.commands import COMMAND_MODELS
from ticketflow.schemas.events import EVENT_DATA

ON_A_TICKET = {name: command for name, command in COMMANDS.items()
               if not command.creates and command.stream == "ticket"}
CREATIONS = {name: command for name, command in COMMANDS.items() if command.creates}
STREAMS = {"ticket": Ticket, "session": SelfServiceSession, "article": Article,
           "account": Account}


def test_the_registry_is_the_spec_table() -> None:
    assert {name: ({s.value for s in c.allowed_from}, c.result and c.result.value,
                   {r.value for r in c.roles}) for name, c in ON_A_TICKET.items()} == {
        name: (ALLOWED_FROM[name], RESULT.get(name), WHO_MAY[name]) for name in ALLOWED_FROM}


def test_article_commands_are_the_knowledge_bases_and_act_on_an_article() -> None:
    articles = {name: c for name, c in COMMANDS.items() if c.stream == "article"}
    assert {name: ({r.value for r in c.roles}, c.event) for name, c in articles.items()} \
        == ARTICLE_COMMANDS
    assert all(not c.allowed_from and c.result is None for c in articles.values())


def test_account_commands_open_the_accounts_stream_and_only_a_manager_sends_them() -> None:
    accounts = {name: c for name, c in COMMANDS.items() if c.stream == "account"}
    assert {name: ({r.value for r in c.roles}, c.event) for name, c in accounts.items()} \
        == ACCOUNT_COMMANDS
    assert all(c.opens and not c.creates and not c.allowed_from and c.result is None
               for c in accounts.values())


def test_only_a_review_is_judged_by_the_tenants_current_policy() -> None:
    assert {name for name, c in COMMANDS.items() if c.judged_by == "current"} \
        == {"review_ticket"}


def test_a_creation_is_allowed_from_no_state_to_the_roles_the_spec_names() -> None:
    assert {name: {r.value for r in c.roles} for name, c in CREATIONS.items()} \
        == CREATION_WHO_MAY
    assert all(not c.allowed_from and c.result is None for c in CREATIONS.values())


def test_each_command_records_its_own_event_and_every_event_is_one_commands() -> None:
    assert {name: c.event for name, c in ON_A_TICKET.items()} == EXPECTED_EVENT
    assert sorted(c.event for c in COMMANDS.values()) == sorted(EVENT_DATA)
    for command in COMMANDS.values():  # an event class of the stream it acts on
        stream = STREAMS[command.stream]
        assert getattr(stream, command.event).__qualname__ == f"{stream.__name__}.{command.event}"


def test_the_envelope_validates_each_commands_own_payload_model() -> None:
    assert list(COMMAND_MODELS) == list(COMMANDS)
    for name, model in COMMAND_MODELS.items():
        assert model.model_fields["payload"].annotation is COMMANDS[name].payload


def test_every_command_on_a_ticket_has_one_method_on_the_aggregate() -> None:
    assert Ticket.handlers.names() == set(ON_A_TICKET)


def test_a_command_handed_another_commands_payload_is_a_bug_not_a_rejection() -> None:
    story = Story()
    with pytest.raises(TypeError, match="acknowledge takes a FreeText payload, not Resolve"):
        story.ticket.handle(ACKNOWLEDGE, ctx(story.at), story.policy,
                            Resolve(resolution="done"))  # type: ignore[arg-type]
    assert story.ticket.version == 1
