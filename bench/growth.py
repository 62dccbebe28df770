"""Growth: what loading a ticket and answering a report cost as the history grows.

Ticket load: one ticket each of 10, 100, 1,000 and 10,000 events (created,
acknowledged, then customer comments, applied with `apply_batch`), loaded with
`app.repository.get`, which starts from the latest snapshot (TicketingApp snapshots
every 100 events). Baseline: the 10-event load; ratio = its time ÷ the time at N, so
1.0 is flat. Beside each, 99 events later (199, 1,099, 10,099: the most a load
replays after its snapshot), against the same at 199 events. Contrast: the same loads
replaying every event (a repository without the snapshot store). On SQLite and
PostgreSQL.

Reports: `report sla`, `times`, `volume` and `satisfaction` over a fixed window, the
last four weeks of the history as of their end, at 10 k, 100 k and 1 M tickets. The
read models are the base history (bench/dataset.py) projected once, then its ticket,
volume, satisfaction and self-service rows cloned under new ids into four-week periods
further and further back (10,000 tickets a period), each clone's SLA clocks evaluated
from its moved facts as the projector does, so the history grows while the window
keeps its size; built once with bulk inserts, cached. Baseline: the same
report at 10 k; ratio = time at 10 k ÷ time at N; goal √(10 k ÷ N), i.e. growing at
most like the square root of the history (sub-linear). Contrasts: the full scans the
reports did before (every ticket evaluated, every volume day read) at 10 k and 100 k,
and the current reports with the report indexes dropped at 100 k. SQLite.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.application import Repository
from sqlalchemy import Connection, Engine, select

from bench.common import Figures, compared, say
from bench.dataset import BASE_TICKETS, SHIFT, START, base_store, cache_dir
from bench.dataset import RECIPE as HISTORY_RECIPE
from tests.support import full_scan
from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.domain.policy import Policy, shipped_policies
from ticketflow.domain.streams import stream_uuid
from ticketflow.domain.ticket import Ticket
from ticketflow.projections import reports
from ticketflow.projections.db import Tables, engine_for, insert_many, tables
from ticketflow.projections.runner import Projector
from ticketflow.projections.sla_clocks import clock_rows
from ticketflow.projections.tickets import Row
from ticketflow.settings import Settings

RECIPE = 2  # bump when the cloned read models change: old cache files are then ignored
EVENTS = (10, 100, 1_000, 10_000)
SNAPSHOT_EVERY = TicketingApp.snapshotting_intervals[Ticket]
SIZES = (10_000, 100_000, 1_000_000)
COPIES = 2  # copies of the base per four-week period
PER_PERIOD = BASE_TICKETS * COPIES
CLONED = ("tickets", "volume", "satisfaction", "self_service")
WINDOW = (START, START + SHIFT)  # the newest period; older ones are cloned before it
Report = Callable[[Connection, Tables], Any]


def run(databases: dict[str, Callable[[], str]]) -> Figures:
    return {"ticket_load": {backend: ticket_load(backend, fresh())
                            for backend, fresh in databases.items()},
            "reports": report_growth()}


# -- ticket load ----------------------------------------------------------------------


def ticket_load(backend: str, url: str) -> Figures:
    say(f"growth: tickets of {', '.join(map(str, EVENTS))} events on {backend}")
    sizes = sorted({*EVENTS, *(_past_snapshot(n) for n in EVENTS[1:])})
    with build_app(Settings(db=url)) as app:
        for events in sizes:
            _build_ticket(app, events)
        snapshots = {n: _load_ms(app.repository, n) for n in sizes}
        replays = {n: _load_ms(Repository(app.events), n) for n in EVENTS}
    return {f"{n}_events": _load_figure(n, snapshots, replays) for n in EVENTS}


def _load_figure(events: int, snapshots: dict[int, float], replays: dict[int, float]) -> Figures:
    """A size against the 10-event load; from 100 events on (a snapshot's version),
    also 99 events later, the most a load replays after its snapshot, against the
    same at 199 events."""
    base, later, worst = EVENTS[0], _past_snapshot(events), _past_snapshot(EVENTS[1])
    extra = {} if events == base else {f"{later}_events": compared(
        _per_s(snapshots[later]), _per_s(snapshots[worst]), "loads/s", goal=0.5,
        ms=snapshots[later], baseline_ms=snapshots[worst])}
    return compared(_per_s(snapshots[events]), _per_s(snapshots[base]), "loads/s", goal=0.5,
                    ms=snapshots[events], baseline_ms=snapshots[base], **extra,
                    without_snapshots=compared(_per_s(replays[events]), _per_s(replays[base]),
                                               "loads/s", ms=replays[events],
                                               baseline_ms=replays[base]))


def _past_snapshot(events: int) -> int:
    return events + SNAPSHOT_EVERY - 1


def _build_ticket(app: TicketingApp, events: int) -> None:
    """Created, acknowledged (no SLA clock runs out), then customer comments a
    millisecond apart: `events` events in all, applied in batches of 500."""
    ticket = f"L-{events}"
    raws = [command_line(f"{ticket}-c", "create_ticket", ticket, T0, "customer",
                         create_payload()),
            command_line(f"{ticket}-a", "acknowledge", ticket, T0 + timedelta(minutes=1),
                         "agent", {})]
    raws += [command_line(f"{ticket}-{n}", "add_comment", ticket,
                          T0 + timedelta(minutes=2, milliseconds=n), "customer",
                          {"body": f"comment {n}", "visibility": "public"})
             for n in range(events - 2)]
    for start in range(0, len(raws), 500):
        outcomes = app.apply_batch(raws[start:start + 500])
        assert all(o.status == "accepted" for o in outcomes), outcomes[0].as_dict()
    assert app.repository.get(stream_uuid("ticket", "personalysispro", ticket)).version \
        == events


def _load_ms(repository: Repository[Any], events: int) -> float:
    """Milliseconds per load of the ticket: the best of three rounds of ≥ 0.3 s."""
    uuid = stream_uuid("ticket", "personalysispro", f"L-{events}")
    return _best_ms(lambda: repository.get(uuid), rounds=3, at_least=0.3)


# -- report growth --------------------------------------------------------------------


def report_growth() -> Figures:
    paths = read_models()
    ours = {n: _time_all(paths[n], _indexed()) for n in SIZES}
    figures: Figures = {name: {_label(n): _against(ours[n][name], ours[SIZES[0]][name], n)
                               for n in SIZES} for name in _indexed()}
    for name, timing in _contrasts(paths, ours).items():
        figures[name]["contrast"] = timing
    figures["window"] = {"from": WINDOW[0].isoformat(), "to": WINDOW[1].isoformat(),
                         "as_of": WINDOW[1].isoformat(), "tickets_per_period": PER_PERIOD}
    return figures


def _against(ms: float, baseline_ms: float, tickets: int) -> Figures:
    return compared(_per_s(ms), _per_s(baseline_ms), "reports/s",
                    goal=round(math.sqrt(SIZES[0] / tickets), 3), ms=ms,
                    baseline_ms=baseline_ms)


def _contrasts(paths: dict[int, Path], ours: dict[int, dict[str, Any]]) -> Figures:
    """The old full scans at 10 k and 100 k, the reports without their indexes at 100 k."""
    scans = {n: _time_all(paths[n], _full_scans(), rounds=0, same_as=_indexed())
             for n in SIZES[:2]}
    bare = _without_indexes(paths[SIZES[1]])
    out: Figures = {}
    for name in _indexed():
        out[name] = {f"no_indexes_{_label(SIZES[1])}": compared(
            _per_s(bare[name]), _per_s(ours[SIZES[1]][name]), "reports/s", ms=bare[name],
            baseline_ms=ours[SIZES[1]][name])}
        if name in scans[SIZES[0]]:
            out[name]["full_scan"] = {_label(n): compared(
                _per_s(scans[n][name]), _per_s(ours[n][name]), "reports/s", ms=scans[n][name],
                baseline_ms=ours[n][name], same_result=scans[n][f"{name}_same"])
                for n in SIZES[:2]}
    return out


def _indexed() -> dict[str, Report]:
    return _window_reports(reports)


def _full_scans() -> dict[str, Report]:
    """The old reports (satisfaction read by day before too: only its index is new)."""
    return _window_reports(full_scan)


def _window_reports(source: Any) -> dict[str, Report]:
    """The reports of `source` (a module) over WINDOW, as of its end."""
    policy_of = _recorded_policies()
    (since, until), days = WINDOW, {"since": WINDOW[0].date(), "until": WINDOW[1].date()}
    found: dict[str, Report] = {
        "sla": lambda c, t: [r.as_dict() for r in source.sla_report(
            c, t, policy_of, since=since, until=until, as_of=until)],
        "times": lambda c, t: source.times_report(c, t, policy_of, since=since, until=until),
        "volume": lambda c, t: source.volume_report(c, t, **days),
    }
    if hasattr(source, "satisfaction_report"):
        found["satisfaction"] = lambda c, t: source.satisfaction_report(c, t, **days)
    return found


def _recorded_policies() -> Callable[[Row], Policy]:
    """The policy each ticket recorded: the shipped ones, which the base was built with."""
    by_hash = {policy.content_hash: policy for policy in shipped_policies().values()}
    return lambda row: by_hash[row["policy_hash"]]


def _time_all(path: Path, work: dict[str, Report], rounds: int = 5,
              same_as: dict[str, Report] | None = None) -> dict[str, Any]:
    """Milliseconds per report (best round); with `same_as`, whether each answered as
    those reports do (under `<name>_same`)."""
    say(f"growth: {', '.join(work)} at {path.name}")
    t = tables()
    timings: dict[str, Any] = {}
    with _engine(path).connect() as conn:
        for name, report in work.items():
            timings[name], answer = _answered(lambda r=report: r(conn, t), rounds)
            if same_as is not None:
                timings[f"{name}_same"] = answer == same_as[name](conn, t)
    return timings


def _answered(work: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    """(`_best_ms` of the work, its last answer)."""
    answers: list[Any] = []
    ms = _best_ms(lambda: answers.append(work()), rounds)
    return ms, answers[-1]


def _without_indexes(path: Path) -> dict[str, float]:
    """The reports on a copy of the read models whose report indexes are dropped."""
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-growth-"))
    try:
        copy = folder / path.name
        shutil.copyfile(path, copy)
        engine = _engine(copy)
        with engine.begin() as conn:
            for index in _report_indexes():
                conn.exec_driver_sql(f'DROP INDEX "{index}"')
        return _time_all(copy, _indexed(), rounds=3)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report_indexes() -> list[str]:
    """The indexes the reports read through: every one but the primary keys and
    rm_sla_clocks_status, which the reports never used."""
    return sorted(str(index.name) for table in tables().metadata.tables.values()
                  for index in table.indexes if index.name != "rm_sla_clocks_status")


def _best_ms(work: Callable[[], Any], rounds: int, at_least: float = 0.0) -> float:
    """Milliseconds per call of `work` in its best round (a round repeats it for at
    least `at_least` seconds), after one call to warm caches; with no rounds, that
    call's (for the slow contrasts)."""
    started = time.perf_counter()
    work()
    best = math.inf if rounds else time.perf_counter() - started
    for _ in range(rounds):
        calls, started = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - started < at_least:
            work()
            calls += 1
        best = min(best, (time.perf_counter() - started) / calls)
    return round(best * 1000, 3)


def _per_s(ms: float) -> float:
    return round(1000 / ms, 3) if ms else math.inf


def _label(tickets: int) -> str:
    return f"{tickets:,}_tickets"


def _engine(path: Path) -> Engine:
    return engine_for(f"sqlite:///{path}")


# -- the cloned read models -----------------------------------------------------------


def read_models() -> dict[int, Path]:
    """A read-model database per size, each built once (from the next smaller one)."""
    paths = {n: cache_dir() / f"growth-r{HISTORY_RECIPE}.{RECIPE}-{n}.db" for n in SIZES}
    missing = [n for n in SIZES if not paths[n].exists()]
    if missing:
        base = _projected_base()
        for smaller, n in zip((0, *SIZES), SIZES, strict=False):
            if n in missing:
                _build(paths[n], paths.get(smaller), base, range(smaller // PER_PERIOD,
                                                                 n // PER_PERIOD))
    return paths


def _build(path: Path, start_from: Path | None, base: dict[str, list[Row]],
           periods: range) -> None:
    say(f"growth: read models of {periods.stop * PER_PERIOD:,} tickets (once) …")
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    if start_from is not None:
        shutil.copyfile(start_from, building)
    engine = _engine(building)
    tables().metadata.create_all(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA synchronous = OFF")
        conn.exec_driver_sql("PRAGMA cache_size = -400000")  # 400 MB
        for k in periods:
            _insert_period(conn, base, k)
            conn.commit()
    engine.dispose()
    building.rename(path)


def _projected_base() -> dict[str, list[Row]]:
    """The base history's read-model rows (projected into a scratch database)."""
    say("growth: projecting the base history")
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-growth-"))
    try:
        engine = _engine(folder / "read-models.db")
        with build_app(Settings(db=f"sqlite:///{base_store()}")) as app:
            projector = Projector(app, engine)
            projector.catch_up(batch_size=10_000)
        with engine.connect() as conn:
            rows = {name: [dict(r._mapping) for r in conn.execute(select(getattr(projector.t,
                                                                               name)))]
                    for name in CLONED}
        engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    known = {p.content_hash for p in shipped_policies().values()}
    assert {r["policy_hash"] for r in rows["tickets"]} <= known, "base built with other policies"
    return rows


def _insert_period(conn: Connection, base: dict[str, list[Row]], k: int) -> None:
    """Period k: COPIES copies of the base, k four-week periods before it. The clocks
    are evaluated again from the moved facts, as the projector does (calendars and
    time zones do not move by whole weeks: a due instant may move by more)."""
    t, earlier = tables(), _Shift(SHIFT * k)
    tickets = [_ticket(row, earlier) for row in base["tickets"]]
    clocks = _clocks(tickets)
    for copy in range(COPIES):
        suffix = f"-g{k}.{copy}"
        insert_many(conn, t.tickets, [{**r, "ticket_id": r["ticket_id"] + suffix}
                                      for r in tickets])
        insert_many(conn, t.sla_clocks, [{**r, "ticket_id": r["ticket_id"] + suffix}
                                         for r in clocks])
        insert_many(conn, t.satisfaction, [
            {**r, "ticket_id": r["ticket_id"] + suffix, "day": earlier.day(r["day"])}
            for r in base["satisfaction"]])
        insert_many(conn, t.self_service, [
            {**r, "session_id": r["session_id"] + suffix, "day": earlier.day(r["day"])}
            for r in base["self_service"]])
    insert_many(conn, t.volume, [  # the copies share days and dimensions: counts add up
        {**r, "day": earlier.day(r["day"]),
         **{name: r[name] * COPIES for name in ("created", "resolved", "reopened", "closed")}}
        for r in base["volume"]])


class _Shift:
    """Moves ISO-8601 UTC days and instants whole days earlier (the days, cached)."""

    def __init__(self, by: timedelta) -> None:
        self.by = by
        self.days: dict[str, str] = {}

    def day(self, day: str) -> str:
        if day not in self.days:
            self.days[day] = (date.fromisoformat(day) - self.by).isoformat()
        return self.days[day]

    def instant(self, value: str | None) -> str | None:
        return None if value is None else self.day(value[:10]) + value[10:]


def _ticket(row: Row, earlier: _Shift) -> Row:
    return {**row, **{name: earlier.instant(row[name]) for name in (
                "created_at", "first_response_at", "resolved_at", "closed_at")},
            "sla_facts": [{**fact, "at": earlier.instant(fact["at"])}
                          for fact in row["sla_facts"]]}


def _clocks(tickets: list[Row]) -> list[Row]:
    """Both clocks of each ticket as of its latest SLA fact (what the projector writes)."""
    policy_of = _recorded_policies()
    return [clock for row in tickets for clock in clock_rows(
        row, policy_of(row), datetime.fromisoformat(row["sla_facts"][-1]["at"]))]
