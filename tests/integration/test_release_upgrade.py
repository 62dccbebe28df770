"""A store written by the release before ids were scoped by tenant keeps working:
its streams and receipts stay where they are, and are found for their own tenant only.

The store is `tests/fixtures/release-0.1.0.db`, made by that release (commit 48b87d2)
with `tests/fixtures/make_release_store.py`: personalysispro's T-1 (created,
acknowledged, commented; m-4 refused), growgrebuddy's G-1 and session S-1, and one
unreadable message."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.cli import main
from ticketflow.producers.sdk import outcome
from ticketflow.settings import Settings
from ticketflow.verification import verify_store

RELEASE_STORE = Path(__file__).parent.parent / "fixtures" / "release-0.1.0.db"
PP, GB = "personalysispro", "growgrebuddy"


@pytest.fixture
def old_store(tmp_path: Path) -> str:
    path = tmp_path / "ticketflow.db"
    shutil.copy(RELEASE_STORE, path)
    return f"sqlite:///{path}"


def open_app(url: str) -> TicketingApp:
    return build_app(Settings(db=url))


def test_an_old_store_is_read_with_its_bare_ids_and_intact(old_store: str) -> None:
    with open_app(old_store) as app:
        assert app.legacy_ids
        ticket = app.load_ticket("T-1")
        assert (ticket.tenant, ticket.version, ticket.status) == (PP, 3, "acknowledged")
        assert app.load_ticket("G-1", tenant=GB).tenant == GB
        assert outcome(app, "m-4").error["code"] == "forbidden"  # type: ignore[union-attr]
        assert verify_store(app) == []


def test_an_old_ticket_goes_on_for_its_tenant_and_its_chain_continues(old_store: str) -> None:
    with open_app(old_store) as app:
        more = command_line("m-5", "start_work", "T-1", T0 + timedelta(minutes=8), "agent", {})
        assert app.apply(more).status == "accepted"
        assert [e["version"] for e in app.event_log.ticket_events("T-1")] == [1, 2, 3, 4]
        assert verify_store(app) == []
    with open_app(old_store) as again:  # another process finds it where it was
        assert again.load_ticket("T-1").status == "in_progress"


def test_old_message_ids_are_still_duplicates_for_their_tenant_only(old_store: str) -> None:
    with open_app(old_store) as app:
        old = command_line("m-2", "acknowledge", "T-1", T0 + timedelta(minutes=5), "agent", {})
        assert app.apply(old).status == "duplicate"
        reused = command_line("m-2", "acknowledge", "G-1", T0 + timedelta(minutes=5), "agent",
                              {}, tenant=GB)
        assert app.apply(reused).status == "accepted"  # growgrebuddy's own m-2


def test_another_tenant_neither_sees_nor_takes_an_old_ticket_id(old_store: str) -> None:
    with open_app(old_store) as app:
        theirs = command_line("g-9", "add_comment", "T-1", T0 + timedelta(minutes=9),
                              "customer", {"body": "hi"}, tenant=GB)
        assert (app.apply(theirs).error or {}).get("code") == "not_found"
        mine = command_line("g-10", "create_ticket", "T-1", T0 + timedelta(minutes=9),
                            "customer", create_payload(GB), tenant=GB)
        assert app.apply(mine).status == "accepted"  # a ticket of its own
        again = command_line("m-10", "create_ticket", "T-1", T0 + timedelta(minutes=9),
                             "customer", create_payload(PP))
        assert (app.apply(again).error or {}).get("code") == "already_exists"
        assert app.load_ticket("T-1", tenant=PP).version == 3
        assert app.load_ticket("T-1", tenant=GB).version == 1
        assert verify_store(app) == []


def test_a_bare_id_two_tenants_use_asks_for_the_tenant(
    old_store: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with open_app(old_store) as app:
        app.apply(command_line("g-10", "create_ticket", "T-1", T0 + timedelta(minutes=9),
                               "customer", create_payload(GB), tenant=GB))
    assert main(["ticket", "T-1", "--json", "--db", old_store]) == 2
    assert "growgrebuddy, personalysispro" in capsys.readouterr().err
    assert main(["ticket", "T-1", "--json", "--tenant", GB, "--db", old_store]) == 0
    assert json.loads(capsys.readouterr().out)["tenant"] == GB


def test_a_new_store_is_marked_and_never_looks_for_bare_ids(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with open_app(url) as app:
        assert not app.legacy_ids
        app.apply(command_line("m-1", "create_ticket", "T-1", T0, "customer", create_payload()))
    with open_app(url) as again:
        assert not again.legacy_ids
