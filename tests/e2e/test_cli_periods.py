"""Reports by period from the command line (SPEC §12): `--by` on every report, periods
in UTC unless `--timezone`, and the quarterly and annual reviews."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.support.builders import command_line, create_payload
from tests.support.cli import as_json, run

#: Enterprise / critical: first response 30 min on the `always` calendar.
URGENT = {"plan": "enterprise", "priority": "critical"}
#: 1 November 01:45Z is still 31 October (21:45 EDT) in New York.
LATE_NIGHT = datetime(2026, 11, 1, 1, 45, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 20, 12, tzinfo=UTC)
AS_OF = ("--as-of", "2026-11-10T00:00:00Z")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def db(tmp_path: Path, sqlite_url: str) -> str:
    lines = [command_line("m-1", "create_ticket", "T-1", OCTOBER, "customer",
                          create_payload(**URGENT)),
             command_line("m-2", "create_ticket", "T-2", LATE_NIGHT, "customer",
                          create_payload(**URGENT, category="account", subcategory="login"))]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert run("apply", str(tmp_path / "in.jsonl"), db=sqlite_url).returncode == 0
    return sqlite_url


def clocks(tally: dict[str, int]) -> int:
    return tally["met"] + tally["breached"] + tally["open"]


def periods(rows: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(row["period"], row["tickets"]) for row in rows]


def test_report_sla_by_month_puts_a_clock_in_its_due_instants_month(db: str) -> None:
    window = ("--from", "2026-10-01", "--to", "2026-12-01", *AS_OF)
    utc = as_json(run("report", "sla", *window, "--by", "month", "--json", db=db))
    assert periods(utc["rows"]) == [("2026-10-01", 1), ("2026-11-01", 1)]
    assert utc["timezone"] == "UTC"
    local = as_json(run("report", "sla", *window, "--by", "month", "--timezone",
                        "America/New_York", "--json", db=db))
    assert (local["from"], local["to"]) == (  # bare dates: the zone's midnights
        "2026-10-01T04:00:00+00:00", "2026-12-01T05:00:00+00:00")
    # T-2's first response is due 31 October 22:15 EDT, its resolution (4 h) in November
    assert periods(local["rows"]) == [("2026-10-01", 2), ("2026-11-01", 1)]
    assert [(clocks(r["first_response"]), clocks(r["resolution"])) for r in local["rows"]] == [
        (2, 1), (0, 1)]
    assert [(clocks(r["first_response"]), clocks(r["resolution"])) for r in utc["rows"]] == [
        (1, 1), (1, 1)]
    whole = as_json(run("report", "sla", *window, "--json", db=db))
    assert [(r["tickets"], "period" in r) for r in whole["rows"]] == [(2, False)]


def test_report_times_by_week_is_by_the_met_instants_week(db: str, tmp_path: Path) -> None:
    acks = [command_line(f"a-{n}", "acknowledge", f"T-{n}", at, "agent", {})
            for n, at in ((1, OCTOBER.replace(minute=10)), (2, LATE_NIGHT.replace(minute=55)))]
    (tmp_path / "acks.jsonl").write_bytes(b"\n".join(acks) + b"\n")
    assert run("apply", str(tmp_path / "acks.jsonl"), db=db).returncode == 0
    window = ("--from", "2026-10-01", "--to", "2026-11-10", "--by", "week", "--json")
    utc = as_json(run("report", "times", *window, db=db))
    assert [(r["period"], r["first_response"]["count"]) for r in utc["rows"]] == [
        ("2026-10-19", 1), ("2026-10-26", 1)]  # 1 November is a Sunday: that week
    local = as_json(run("report", "times", *window, "--timezone", "Europe/Berlin", db=db))
    assert [r["period"] for r in local["rows"]] == ["2026-10-19", "2026-10-26"]


def test_report_volume_by_quarter_and_month(db: str) -> None:
    window = ("--from", "2026-10-01", "--to", "2027-01-01", "--json")
    by_quarter = as_json(run("report", "volume", *window, "--by", "quarter", db=db))
    assert sum(r["created"] for r in by_quarter["rows"]) == 2
    assert {r["period"] for r in by_quarter["rows"]} == {"2026-10-01"}
    by_month = as_json(run("report", "volume", *window, "--by", "month", db=db))
    assert sorted((r["period"], r["created"]) for r in by_month["rows"] if r["created"]) == [
        ("2026-10-01", 1), ("2026-11-01", 1)]
    local = as_json(run("report", "volume", *window, "--by", "month", "--timezone",
                        "America/New_York", db=db))  # T-2 was created on 31 October there
    assert sorted((r["period"], r["category"]) for r in local["rows"] if r["created"]) == [
        ("2026-10-01", "account"), ("2026-10-01", "technical")]
    assert local["timezone"] == "America/New_York"
    bad = run("report", "sla", *window, "--timezone", "Mars/Olympus", db=db)
    assert bad.returncode == 2 and "IANA" in bad.stderr


def test_the_quarterly_review_is_by_month_and_the_annual_by_quarter(db: str) -> None:
    review = as_json(run("report", "review", "--quarter", "2026Q4", "--json", db=db))
    assert (review["from"], review["to"], review["by"]) == ("2026-10-01", "2027-01-01", "month")
    assert {"sla", "volume", "times", "satisfaction", "self_service", "top_categories",
            "knowledge_base"} <= set(review)
    assert [(r["period"], r["created"]) for r in review["volume"]] == [
        ("2026-10-01", 1), ("2026-11-01", 1), ("2026-12-01", 0)]
    annual = as_json(run("report", "review", "--year", "2026", "--json", db=db))
    assert (annual["by"], [r["period"] for r in annual["volume"]]) == (
        "quarter", ["2026-10-01"])
    readable = run("report", "review", "--quarter", "2026Q4", db=db)
    assert readable.returncode == 0 and "service review 2026Q4" in readable.stdout
    wrong = run("report", "review", "--quarter", "2026Q5", db=db)
    assert wrong.returncode == 2 and "2026Q4" in wrong.stderr


def test_the_review_draws_its_chart_as_the_same_svg_every_time(db: str, tmp_path: Path) -> None:
    charts = tmp_path / "charts"
    for _ in range(2):
        result = run("report", "review", "--quarter", "2026Q4", "-o", str(charts), db=db)
        assert result.returncode == 0, result.stderr
    svg = (charts / "review-2026Q4.svg").read_bytes()
    root = ElementTree.fromstring(svg)
    bars = [e for e in root.iter(f"{SVG}rect") if e.find(f"{SVG}title") is not None]
    figures = sorted(str(e.find(f"{SVG}title").text) for e in bars)  # type: ignore[union-attr]
    # compliance (first response, resolution) and tickets created, by month
    assert "2026-10-01: 1" in figures and "2026-11-01: 1" in figures
    assert len(bars) == 2 * 2 + 3  # two months of SLA clocks; three months of volume
    run("report", "review", "--quarter", "2026Q4", "-o", str(charts), db=db)
    assert (charts / "review-2026Q4.svg").read_bytes() == svg
