"""Every command × every role of SPEC §3: a role the table names is accepted (from a
state the command is allowed in), any other is `forbidden` and changes nothing. The
creation commands, which act on no existing ticket, included."""

from __future__ import annotations

import pytest

from tests.support.builders import LATE, T0, created, ctx, policy_for, prepared
from tests.support.spec import ALLOWED_FROM, CREATION_WHO_MAY, EXPECTED_EVENT, WHO_MAY
from ticketflow.domain.articles import Article
from ticketflow.domain.commands import CreateArticle, RecordSelfService
from ticketflow.domain.errors import Forbidden
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.selfservice import SelfServiceSession
from ticketflow.domain.ticket import Ticket

TICKET_MATRIX = [(command, role) for command in sorted(WHO_MAY) for role in Role]
CREATION_MATRIX = [(command, role) for command in sorted(CREATION_WHO_MAY) for role in Role]


@pytest.mark.parametrize("command, role", TICKET_MATRIX,
                         ids=[f"{c}-{r.value}" for c, r in TICKET_MATRIX])
def test_a_ticket_command_is_accepted_exactly_for_the_roles_the_table_names(
    command: str, role: Role
) -> None:
    story = prepared(command, sorted(ALLOWED_FROM[command])[0])
    before = (story.ticket.state(), story.ticket.version)
    emitted_before = len(story.event_types)
    if role.value in WHO_MAY[command]:
        story.do(command, role=role, after=LATE)
        assert story.event_types[emitted_before] == EXPECTED_EVENT[command]
    else:
        with pytest.raises(Forbidden):
            story.do(command, role=role, after=LATE)
        assert (story.ticket.state(), story.ticket.version) == before


def _create(command: str, role: Role) -> object:
    if command == "create_ticket":
        return Ticket.create(ctx(T0, role), policy_for("personalysispro"), "T-9", created())
    if command == "create_article":
        return Article.create(ctx(T0, role), policy_for("personalysispro"), "KB-9",
                              CreateArticle(title="Exports", body="Raise the timeout"))
    return SelfServiceSession.create(ctx(T0, role), policy_for("personalysispro"), "S-9",
                                     RecordSelfService(articles_viewed=["KB-1"],
                                                       outcome="solved"))


@pytest.mark.parametrize("command, role", CREATION_MATRIX,
                         ids=[f"{c}-{r.value}" for c, r in CREATION_MATRIX])
def test_a_creation_is_accepted_exactly_for_the_roles_the_table_names(
    command: str, role: Role
) -> None:
    if role.value in CREATION_WHO_MAY[command]:
        assert _create(command, role) is not None
    else:
        with pytest.raises(Forbidden) as refused:
            _create(command, role)
        assert f"may not {command}" in refused.value.message
