"""The SLA, times and volume reports read only their window's candidates through
indexes, and give exactly what evaluating every ticket and every day gave."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, event, inspect, text

from tests.support import full_scan
from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.domain.policy import Policy, policy_from_data, shipped_policies
from ticketflow.projections.db import NAMES, engine_for, tables
from ticketflow.projections.kb_reports import articles_report, topics_report
from ticketflow.projections.replay import rebuild
from ticketflow.projections.reports import (
    PolicyOf,
    satisfaction_report,
    sla_report,
    times_report,
    volume_report,
)
from ticketflow.projections.runner import Projector
from ticketflow.projections.zoned_reports import satisfaction_in_zone, volume_in_zone
from ticketflow.settings import Settings
from ticketflow.timers import Timers
from ticketflow.tools.workload import generate_workload

START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 8
TENANTS = (None, "personalysispro", "growgrebuddy")


def load(app: TicketingApp, url: str, seed: int, tickets: int = 40) -> Projector:
    """A random workload of both tenants over DAYS days, timers fired, projected."""
    raws = [json.dumps(c).encode() for c in generate_workload(seed, tickets=tickets,
                                                             start=START, days=DAYS)]
    for start in range(0, len(raws), 100):
        app.apply_batch(raws[start:start + 100])
    Timers(app).fire_until(START + timedelta(days=DAYS))
    projector = Projector(app, engine_for(url))
    projector.catch_up()
    return projector


def recorded(app: TicketingApp) -> PolicyOf:
    return lambda r: app.policy_store.policy_version(r["policy_id"], r["policy_version"],
                                                     r["policy_hash"])


def halved_personalysispro() -> Policy:
    """A what-if policy: PersonalysisPro with every target halved."""
    document = shipped_policies()["personalysispro"].model_dump(mode="json")
    document["version"] = "9.0.0"
    for plan in document["plans"].values():
        plan["first_response"] = {k: v // 2 for k, v in plan["first_response"].items()}
    document["resolution"] = {k: v // 2 for k, v in document["resolution"].items()}
    return policy_from_data(document, "halved")


WHAT_IF = halved_personalysispro()


def what_if(row: dict[str, Any]) -> Policy | None:
    return WHAT_IF if row["tenant"] == WHAT_IF.id else None


def boundaries(conn: Connection) -> list[list[datetime]]:
    """The instants where candidates change: those the clock rows hold (evaluated,
    due, met), and the tickets' creations."""
    clocks = conn.execute(text(
        "SELECT evaluated_at FROM rm_sla_clocks UNION SELECT due_at FROM rm_sla_clocks"
        " UNION SELECT met_at FROM rm_sla_clocks")).scalars()
    created = conn.execute(text("SELECT created_at FROM rm_tickets")).scalars()
    return [sorted(datetime.fromisoformat(v) for v in found if v is not None)
            for found in (clocks, created)]


def instants(groups: list[list[datetime]]) -> st.SearchStrategy[datetime]:
    """Any second around the history, or exactly one of the boundaries."""
    span = int(timedelta(days=DAYS + 3).total_seconds())
    anywhere = st.integers(-86_400, span).map(lambda s: START + timedelta(seconds=s))
    return st.one_of(anywhere, *(st.sampled_from(group) for group in groups))


def windows(groups: list[list[datetime]], as_of: datetime,
            ) -> st.SearchStrategy[tuple[datetime, datetime]]:
    """Any two instants, or a window around the as-of instant (where the tickets that
    changed after it have their clocks due)."""
    hours = st.integers(0, 72).map(lambda h: timedelta(hours=h))
    around = st.tuples(hours, hours).map(lambda d: (as_of - d[0], as_of + d[1]))
    anywhere = st.lists(instants(groups), min_size=2, max_size=2).map(
        lambda pair: (min(pair), max(pair)))
    return st.one_of(anywhere, around)


def both_ways(conn: Connection, projector: Projector, app: TicketingApp,
              draw: Callable[..., Any], groups: list[list[datetime]]) -> None:
    """One random query of each report, indexed and by full scan: the same answer."""
    as_of = draw(instants(groups))
    since, until = draw(windows(groups, as_of))
    tenant = draw(st.sampled_from(TENANTS))
    policy_of = draw(st.sampled_from([recorded(app), what_if]))
    t = projector.t
    window = {"since": since, "until": until, "tenant": tenant}
    assert [r.as_dict() for r in sla_report(conn, t, policy_of, as_of=as_of, **window)] == [
        r.as_dict() for r in full_scan.sla_report(conn, t, policy_of, as_of=as_of, **window)]
    assert times_report(conn, t, policy_of, **window) == full_scan.times_report(
        conn, t, policy_of, **window)
    days = {"since": since.date(), "until": until.date(), "tenant": tenant,
            "by": draw(st.sampled_from(["day", "week"]))}
    assert volume_report(conn, t, **days) == full_scan.volume_report(conn, t, **days)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), data=st.data())
def test_indexed_reports_equal_a_full_scan_for_random_windows_and_as_of_instants(
    tmp_path_factory: pytest.TempPathFactory, seed: int, data: st.DataObject,
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('indexed') / 'store.db'}"
    with build_app(Settings(db=url)) as app:
        projector = load(app, url, seed)
        with projector.engine.connect() as conn:
            groups = boundaries(conn)
            for _ in range(25):
                both_ways(conn, projector, app, data.draw, groups)


def story(app: TicketingApp, url: str) -> Projector:
    """T-1, PersonalysisPro professional/high on the extended calendar (Mon-Fri 08-20
    New York), created Mon 09:00 (14:00Z): first response due 12:00 (17:00Z). Lowered
    to low at 10:00: due 16 counted hours from creation, Tue 13:00 (18:00Z)."""
    app.apply(command_line("c-1", "create_ticket", "T-1", T0, "customer",
                           create_payload(plan="professional", channel="email")))
    app.apply(command_line("p-1", "change_priority", "T-1", T0 + timedelta(hours=1), "manager",
                           {"priority": "low", "reason": "workaround exists"}))
    return Projector(app, engine_for(url))


def test_a_ticket_changed_after_the_as_of_instant_counts_with_its_clocks_then(
    db_url: str,
) -> None:
    with build_app(Settings(db=db_url)) as app:
        projector = story(app, db_url)
        projector.catch_up()

        def sla(start: datetime, as_of: datetime) -> list[dict[str, Any]]:
            with projector.engine.connect() as conn:
                return [r.as_dict() for r in sla_report(
                    conn, projector.t, recorded(app), since=start,
                    until=start + timedelta(hours=4), as_of=as_of)]

        before_change, after_change = T0 + timedelta(minutes=30), T0 + timedelta(hours=2)
        assert [(r["priority"], r["first_response"]["open"])
                for r in sla(T0, before_change)] == [("high", 1)]
        assert sla(T0, after_change) == []
        tuesday = datetime(2026, 11, 17, 16, tzinfo=UTC)  # the due instant after the change
        assert sla(tuesday, before_change) == []
        assert [(r["priority"], r["first_response"]["open"])
                for r in sla(tuesday, after_change)] == [("low", 1)]


#: Indexes of one backend: the knowledge base's GIN index (SQLite searches an FTS5 table).
ONLY_ON = {"rm_kb_articles_search": "postgresql"}


def index_names(engine: Engine) -> dict[str, set[str]]:
    found = inspect(engine)
    return {name: {str(i["name"]) for i in found.get_indexes(name)} for name in NAMES}


def test_a_replay_keeps_every_report_index_under_its_table_s_name(db_url: str) -> None:
    with build_app(Settings(db=db_url)) as app:
        engine = engine_for(db_url)
        story(app, db_url).catch_up()
        dialect = engine.dialect.name
        declared = {name: {str(i.name) for i in table.indexes
                           if ONLY_ON.get(str(i.name), dialect) == dialect}
                    for name, table in tables().metadata.tables.items()}
        assert {"rm_sla_clocks_due", "rm_sla_clocks_met", "rm_sla_clocks_evaluated",
                "rm_tickets_policy", "rm_volume_day", "rm_volume_backlog", "rm_satisfaction_day",
                "rm_self_service_day"} <= set().union(*declared.values())
        assert index_names(engine) == declared
        for _ in range(2):
            rebuild(app, engine)
            assert index_names(engine) == declared


class Statements:
    """The SELECTs a block of code sends, with their parameters."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[tuple[str, Any]] = []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.seen.append((statement, parameters))

    def plans(self, conn: Connection) -> Iterator[str]:
        for statement, parameters in self.seen:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            yield " / ".join(str(row[-1]) for row in rows)


def test_every_report_reads_the_read_models_through_indexes_never_a_whole_table(
    sqlite_url: str,
) -> None:
    # Only the daily volume counters (days × dimensions, no tickets) are read whole,
    # for the backlog before the window, and then in the order of an index of theirs.
    with build_app(Settings(db=sqlite_url)) as app:
        projector = load(app, sqlite_url, seed=3, tickets=30)
        since, until = START + timedelta(days=2), START + timedelta(days=5)
        t, policy_of = projector.t, recorded(app)
        with Statements(projector.engine) as statements, projector.engine.connect() as conn:
            assert sla_report(conn, t, policy_of, since=since, until=until,
                              as_of=START + timedelta(days=3))
            assert times_report(conn, t, policy_of, since=since, until=until)
            assert volume_report(conn, t, since=since.date(), until=until.date())
            satisfaction_report(conn, t, since=since.date(), until=until.date())
            for zoned in (volume_in_zone, satisfaction_in_zone):  # by instant, in a zone
                zoned(conn, t, since=since.date(), until=until.date(), by="week",
                      zone=ZoneInfo("America/New_York"))
            assert topics_report(conn, t, since=since, until=until)["terms"]
            assert articles_report(conn, t, since=since, until=until)
            plans = list(statements.plans(conn))
    assert len(plans) >= 18
    for plan in plans:  # a full-text MATCH reads the FTS5 index ("VIRTUAL TABLE INDEX")
        scans = [step for step in plan.split(" / ") if step.startswith("SCAN ")
                 and " VIRTUAL TABLE INDEX " not in step]
        # the articles report lists every article of the knowledge base, active or not
        assert scans in ([], ["SCAN rm_volume USING COVERING INDEX rm_volume_backlog"],
                         ["SCAN rm_kb_articles"]), plan
