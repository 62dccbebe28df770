"""SPEC §3, the lifecycle table, written out literally: the tests' one oracle for it.

Deliberately independent of `ticketflow.domain` (no import of it): the domain's
`TABLE` and command registry are checked against this (tests/unit/test_lifecycle.py,
test_roles.py, test_commands.py), the event schemas against `EVENT_TYPES`
(test_schemas.py), and the demo workload's stories against the table
(test_workload.py).
"""

from __future__ import annotations

STATES = frozenset(
    {"created", "acknowledged", "in_progress", "pending_user_input", "resolved", "closed"}
)
#: Open states are all but resolved and closed.
OPEN = frozenset({"created", "acknowledged", "in_progress", "pending_user_input"})

#: command → the states it is allowed from ("any open state", "any state but closed", …).
ALLOWED_FROM: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"created"}),
    "start_work": frozenset({"acknowledged"}),
    "request_user_input": frozenset({"acknowledged", "in_progress"}),
    "receive_user_input": frozenset({"pending_user_input"}),
    "resolve": OPEN,
    "reopen": frozenset({"resolved"}),
    "close": frozenset({"resolved"}),
    "escalate": OPEN,
    "change_priority": OPEN,
    "assign": OPEN,
    "add_comment": OPEN | {"resolved"},
    "link_article": STATES,
    "record_satisfaction": frozenset({"resolved", "closed"}),
    "consent_to_publish": frozenset({"resolved", "closed"}),
    "publish_as_article": frozenset({"resolved", "closed"}),
    "record_sla_breach": OPEN,
    # issue 19: a quality review of the handling that resolved the ticket
    "review_ticket": frozenset({"resolved", "closed"}),
}

#: command → the state it leads to; the commands not listed keep the state.
RESULT = {
    "acknowledge": "acknowledged",
    "start_work": "in_progress",
    "request_user_input": "pending_user_input",
    "receive_user_input": "in_progress",
    "resolve": "resolved",
    "reopen": "in_progress",
    "close": "closed",
}

#: command → the roles that may send it ("who may").
WHO_MAY: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"agent"}),
    "start_work": frozenset({"agent"}),
    "request_user_input": frozenset({"agent"}),
    "receive_user_input": frozenset({"customer"}),
    "resolve": frozenset({"agent"}),
    "reopen": frozenset({"customer", "agent"}),
    "close": frozenset({"customer", "agent", "system"}),
    "escalate": frozenset({"agent", "manager", "system"}),
    "change_priority": frozenset({"agent", "manager"}),
    "assign": frozenset({"agent", "manager", "system"}),
    "add_comment": frozenset({"customer", "agent"}),
    "link_article": frozenset({"agent"}),
    "record_satisfaction": frozenset({"customer"}),
    "consent_to_publish": frozenset({"customer"}),
    "publish_as_article": frozenset({"agent"}),
    "record_sla_breach": frozenset({"system"}),
    "review_ticket": frozenset({"manager"}),
}

#: The commands that act on no existing ticket, and who may send them (§3 and the
#: self-service paragraph: the widget publishes for the customer or as the system).
CREATION_WHO_MAY: dict[str, frozenset[str]] = {
    "create_ticket": frozenset({"customer", "agent", "system"}),
    "record_self_service": frozenset({"customer", "system"}),
    "create_article": frozenset({"agent", "manager"}),
}

#: Knowledge-base articles (SPEC §11, issue 19: "created and updated by agents"; a
#: manager may too): command → (who may, the event it records). Not ticket commands.
ARTICLE_COMMANDS: dict[str, tuple[frozenset[str], str]] = {
    "create_article": (frozenset({"agent", "manager"}), "ArticleCreated"),
    "update_article": (frozenset({"agent", "manager"}), "ArticleUpdated"),
}

#: Accounts' dedicated managers (issue 19): command → (who may, the event it records).
#: It starts the account's stream the first time and acts on it after.
ACCOUNT_COMMANDS: dict[str, tuple[frozenset[str], str]] = {
    "assign_account_manager": (frozenset({"manager"}), "AccountManagerAssigned"),
}

#: Commands only the timer sends (SPEC §1: time-driven facts).
TIMER_ONLY = frozenset({"record_sla_breach"})

#: Ticket commands only a manager sends: a quality review of the handling (issue 19),
#: not a step of it. The demo workload, a ticket's handling, sends none: the demo adds
#: its reviews after the workload (ticketflow/tools/demo_accounts.py), so the
#: workload's figures stay put.
MANAGER_ONLY = frozenset(command for command, who in WHO_MAY.items() if who == {"manager"})

#: command → the event it records (SPEC §5, past tense).
EXPECTED_EVENT = {
    "acknowledge": "TicketAcknowledged",
    "start_work": "WorkStarted",
    "request_user_input": "UserInputRequested",
    "receive_user_input": "UserInputReceived",
    "resolve": "TicketResolved",
    "reopen": "TicketReopened",
    "close": "TicketClosed",
    "escalate": "TicketEscalated",
    "change_priority": "PriorityChanged",
    "assign": "TicketAssigned",
    "add_comment": "CommentAdded",
    "link_article": "ArticleLinked",
    "record_satisfaction": "SatisfactionRecorded",
    "consent_to_publish": "PublicationConsented",
    "publish_as_article": "PublishedAsArticle",
    "record_sla_breach": "SlaBreached",
    "review_ticket": "TicketReviewed",
}

#: Every event type (SPEC §5), ticket or not: one schema each (schemas/json).
EVENT_TYPES = frozenset({
    "TicketCreated", "TicketAcknowledged", "WorkStarted", "UserInputRequested",
    "UserInputReceived", "TicketResolved", "TicketReopened", "TicketClosed",
    "TicketEscalated", "PriorityChanged", "TicketAssigned", "CommentAdded", "ArticleLinked",
    "SatisfactionRecorded", "PublicationConsented", "PublishedAsArticle", "SlaBreached",
    "SelfServiceRecorded",
    "ArticleCreated", "ArticleUpdated",  # §11: the knowledge base's own articles
    "AccountManagerAssigned", "TicketReviewed",  # issue 19: managers, quality
})
