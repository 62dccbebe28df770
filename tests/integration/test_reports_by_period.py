"""The SLA and times reports by period in one pass (`sla_report_by`, `times_report_by`)
give exactly what the reports asked once per period give: the same rows in the same
order, on a fixed workload, in UTC and in a zone with a daylight-saving change, by day
and week, for every tenant and one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.projections import periods
from ticketflow.projections.db import engine_for
from ticketflow.projections.reports import (
    sla_report,
    sla_report_by,
    times_report,
    times_report_by,
    times_rows,
)
from ticketflow.projections.runner import Projector
from ticketflow.projections.sla_clocks import sla_of
from ticketflow.settings import Settings
from ticketflow.timers import Timers
from ticketflow.tools.workload import generate_workload

START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 24


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TicketingApp, Projector]]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('by-period') / 'store.db'}"
    with build_app(Settings(db=db_url)) as app:
        raws = [json.dumps(c).encode() for c in generate_workload(
            7, tickets=120, start=START, days=DAYS)]
        for first in range(0, len(raws), 200):
            app.apply_batch(raws[first:first + 200])
        Timers(app).fire_until(START + timedelta(days=DAYS))
        projector = Projector(app, engine_for(db_url))
        projector.catch_up()
        yield app, projector


CASES = [(by, zone, tenant, since, until)
         for by in ("day", "week")
         for zone in (UTC, ZoneInfo("America/New_York"))
         for tenant in (None, "growgrebuddy")
         for since, until in ((START, START + timedelta(days=DAYS + 3)),
                              (START + timedelta(days=3, hours=5),
                               START + timedelta(days=17, hours=2)))]


def _cuts(since: datetime, until: datetime, by: str, zone: tzinfo) -> list[Any]:
    return list(periods.windows(since, until, by, zone))


@pytest.mark.parametrize(("by", "zone", "tenant", "since", "until"), CASES)
def test_one_pass_by_period_equals_one_report_per_period(
    workload: tuple[TicketingApp, Projector], by: str, zone: tzinfo, tenant: str | None,
    since: datetime, until: datetime,
) -> None:
    app, projector = workload

    def policy_of(row: dict[str, Any]) -> Any:
        return app.policy_store.policy_version(row["policy_id"], row["policy_version"],
                                               row["policy_hash"])

    cuts = _cuts(since, until, by, zone)
    assert len(cuts) > 1
    with projector.engine.connect() as conn:
        for as_of in (until, since + (until - since) / 2):
            looped = [(label, row.as_dict()) for label, low, high in cuts
                      for row in sla_report(conn, projector.t, policy_of, since=low,
                                            until=high, as_of=as_of, tenant=tenant)]
            once = [(label, row.as_dict()) for label, row in sla_report_by(
                conn, projector.t, policy_of, periods=cuts, as_of=as_of, tenant=tenant)]
            assert len({label for label, _ in looped}) > 1  # clocks due in several periods
            assert once == looped
        looped_times = [(label, row) for label, low, high in cuts
                        for row in times_report(conn, projector.t, policy_of, since=low,
                                                until=high, tenant=tenant)]
        by_period, whole = times_report_by(conn, projector.t, policy_of, periods=cuts,
                                           tenant=tenant)
        assert len({label for label, _ in looped_times}) > 1
        assert by_period == looped_times
        assert whole == times_report(conn, projector.t, policy_of, since=since, until=until,
                                     tenant=tenant)


def test_a_period_s_times_are_of_its_tickets_as_they_were_at_its_end(
    workload: tuple[TicketingApp, Projector],
) -> None:
    """Bucketing the window-end evaluation by met instant would not do: some tickets of
    the workload change after a period's end (so the one pass's evaluation at that end
    is needed, and the equality above exercises it)."""
    app, projector = workload

    def policy_of(row: dict[str, Any]) -> Any:
        return app.policy_store.policy_version(row["policy_id"], row["policy_version"],
                                               row["policy_hash"])

    cuts = _cuts(START, START + timedelta(days=DAYS + 3), "day", UTC)
    end = cuts[-1][2]
    with projector.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(projector.t.tickets.select())]
        looped = [(label, row) for label, low, high in cuts
                  for row in times_report(conn, projector.t, policy_of, since=low,
                                          until=high)]
    at_end = [(row, sla_of(row, policy_of(row), end)) for row in rows]
    naive = [(label, row) for label, low, high in cuts
             for row in times_rows(at_end, since=low, until=high)]
    assert naive != looped
