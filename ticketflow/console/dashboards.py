"""The dashboards' series: the query layer's reports (SPEC §12), summed by period.

SLA compliance is the SLA report by period, asked once for the window (its rows are
period × tenant × plan × priority, for clocks due in each period, as of the window's
end); volume, CSAT/NPS and self-service come by
period already and are summed over their other dimensions. The sums are of counts the
reports give; compliance and CSAT are recomputed from those counts the way the reports
define them (met ÷ (met + breached); share of 4-5 scores), never re-derived from events.
Times are the times report by period, asked once (clocks met in each, evaluated at its
end); a period's mean is the rows' means weighted by their counts (percentiles do not
add up, so p50 and p90 are given by tenant × plan × priority for the whole window, the
same report's total from the same pass). The window is [since, until): a first week is
cut at `since`, as the volume and satisfaction reports cut it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ticketflow.queries import Queries

PERIODS = ("day", "week")
#: The most periods a dashboard draws (a year of weeks, three months of days).
MAX_PERIODS = {"day": 92, "week": 53}


@dataclass(frozen=True)
class Window:
    since: date
    until: date  # exclusive
    by: str

    def periods(self) -> list[tuple[date, date]]:
        step = timedelta(days=7 if self.by == "week" else 1)
        start = self.since - timedelta(days=self.since.weekday()) if self.by == "week" \
            else self.since
        out: list[tuple[date, date]] = []
        while start < self.until and len(out) < MAX_PERIODS[self.by]:
            out.append((start, start + step))
            start += step
        return out


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _bounds(window: Window) -> tuple[datetime, datetime]:
    """The window's instants: from its first day to its last period's end or its own,
    whichever is first (at most MAX_PERIODS periods)."""
    cut = window.periods()
    end = min(window.until, cut[-1][1]) if cut else window.until
    return _midnight(window.since), _midnight(end)


def _by_period(window: Window, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A report's rows by period, every period of the window present (even empty)."""
    found: dict[str, list[dict[str, Any]]] = {start.isoformat(): [] for start, _ in
                                              window.periods()}
    for row in rows:
        found.setdefault(row["period"], []).append(row)
    return found


def sla_series(queries: Queries, window: Window) -> list[dict[str, Any]]:
    """Per period: met and breached clocks of each kind, and compliance (one SLA report
    by period, as of the window's end or now if earlier)."""
    since, until = _bounds(window)
    report = queries.report_sla(since, until, by=window.by)
    out = []
    for period, rows in _by_period(window, report["rows"]).items():
        row: dict[str, Any] = {"period": period}
        for clock in ("first_response", "resolution"):
            met = sum(r[clock]["met"] for r in rows)
            breached = sum(r[clock]["breached"] for r in rows)
            row[clock] = {"met": met, "breached": breached,
                          "compliance": _percent(met, met + breached)}
        out.append(row)
    return out


def volume_series(queries: Queries, window: Window) -> list[dict[str, Any]]:
    """Per period: created, resolved, closed, and the backlog at its end."""
    sums: dict[str, dict[str, int]] = defaultdict(
        lambda: {"created": 0, "resolved": 0, "closed": 0, "backlog": 0})
    for start, _ in window.periods():
        sums[start.isoformat()]  # every period, even an empty one
    report = queries.report_volume(window.since, window.until, window.by)
    for row in report["rows"]:
        for name in ("created", "resolved", "closed", "backlog"):
            sums[row["period"]][name] += row[name]
    return [{"period": period, **counts} for period, counts in sorted(sums.items())]


def satisfaction_series(queries: Queries, window: Window) -> list[dict[str, Any]]:
    """Per period: survey answers, CSAT, NPS, and self-service success."""
    report = queries.report_satisfaction(window.since, window.until, window.by)
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for start, _ in window.periods():
        sums[start.isoformat()]
    for row in report["satisfaction"]:
        into = sums[row["period"]]
        into["responses"] += row["responses"]
        into["satisfied"] += round((row["csat_percent"] or 0) * row["responses"] / 100)
        if row["nps"] is not None:
            into["nps_responses"] += row["nps_responses"]
            into["nps_points"] += row["nps"] * row["nps_responses"]
    for row in report["self_service"]:
        sums[row["period"]]["sessions"] += row["sessions"]
        sums[row["period"]]["solved"] += row["solved"]
    out = []
    for period, s in sorted(sums.items()):
        out.append({
            "period": period, "responses": int(s["responses"]),
            "csat": _percent(int(s["satisfied"]), int(s["responses"])),
            "nps": round(s["nps_points"] / s["nps_responses"], 1) if s["nps_responses"] else None,
            "sessions": int(s["sessions"]),
            "self_service": _percent(int(s["solved"]), int(s["sessions"]))})
    return out


def times_series(queries: Queries, window: Window) -> list[dict[str, Any]]:
    """Per period: clocks met in it and their mean counted minutes, of each kind."""
    return times_dashboard(queries, window)[0]


def times_rows(queries: Queries, window: Window) -> list[dict[str, Any]]:
    """The times report for the whole window: by tenant × plan × priority."""
    return times_dashboard(queries, window)[1]


def times_dashboard(queries: Queries, window: Window,
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The times by period and, from the same pass, for the whole window by tenant ×
    plan × priority (one times report by period with its total)."""
    since, until = _bounds(window)
    report = queries.report_times(since, until, by=window.by, total=True)
    out = []
    for period, rows in _by_period(window, report["rows"]).items():
        row: dict[str, Any] = {"period": period}
        for clock in ("first_response", "resolution"):
            counted = [(r[clock]["count"], r[clock]["mean"]) for r in rows
                       if r[clock]["count"]]
            count = sum(n for n, _ in counted)
            row[clock] = {"count": count, "mean": round(sum(n * m for n, m in counted) / count,
                                                        1) if count else None}
        out.append(row)
    total: list[dict[str, Any]] = report["total"]
    return out, total
