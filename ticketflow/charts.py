"""The service review's chart (SPEC §12, `report review -o DIR`): an SVG drawn here, from
the review's own figures, with no renderer, font or network to depend on.

Two panels: SLA compliance (first response, resolution) per period and tenant, and
tickets created per period and tenant. The same review gives the same bytes.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

WIDTH, PANEL, MARGIN = 760, 220, 48
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948")


def review_svg(review: dict[str, Any]) -> str:
    """The chart of a review (`Queries.review`) as SVG text."""
    compliance = _compliance(review["sla"])
    created = {(r["period"], r["tenant"]): r["created"] for r in review["volume"]}
    tenants = sorted({tenant for _, tenant in (*compliance, *created)})
    periods = sorted({period for period, _ in (*compliance, *created)})
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}"'
             f' height="{2 * PANEL + 3 * MARGIN}" font-family="sans-serif" font-size="11">',
             f"<title>{escape('service review ' + str(review['review']))}</title>",
             _text(MARGIN, 20, f"service review {review['review']}: {review['from']} –"
                               f" {review['to']}, by {review['by']}", size=14)]
    series = [(f"{tenant} first response", {p: compliance.get((p, tenant), (None, None))[0]
                                            for p in periods}) for tenant in tenants]
    series += [(f"{tenant} resolution", {p: compliance.get((p, tenant), (None, None))[1]
                                         for p in periods}) for tenant in tenants]
    parts += _panel("SLA compliance, % met", periods, series, top=MARGIN, most=100.0)
    volume: list[tuple[str, dict[str, float | None]]] = [
        (f"{tenant} created", {p: float(created.get((p, tenant), 0)) for p in periods})
        for tenant in tenants]
    most = max([v for _, values in volume for v in values.values() if v] or [1.0])
    parts += _panel("tickets created", periods, volume, top=2 * MARGIN + PANEL, most=most)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _compliance(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[float | None, ...]]:
    """(period, tenant) → (first response %, resolution %) over its plans and priorities."""
    tally: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        counts = tally.setdefault((row.get("period", ""), row["tenant"]), [0, 0, 0, 0])
        for i, clock in enumerate(("first_response", "resolution")):
            counts[2 * i] += row[clock]["met"]
            counts[2 * i + 1] += row[clock]["met"] + row[clock]["breached"]
    return {key: tuple(round(100.0 * c[i] / c[i + 1], 1) if c[i + 1] else None
                       for i in (0, 2)) for key, c in tally.items()}


def _panel(title: str, periods: list[str], series: list[tuple[str, dict[str, float | None]]],
           *, top: int, most: float) -> list[str]:
    """Grouped bars: one group per period, one bar per series (none where no figure)."""
    left, width = MARGIN, WIDTH - 2 * MARGIN - 160
    parts = [_text(left, top - 8, title, size=12),
             f'<line x1="{left}" y1="{top + PANEL}" x2="{left + width}" y2="{top + PANEL}"'
             ' stroke="#333"/>']
    group = width / max(len(periods), 1)
    bar = group * 0.8 / max(len(series), 1)
    for g, period in enumerate(periods):
        x0 = left + g * group + group * 0.1
        parts.append(_text(x0, top + PANEL + 14, period))
        for s, (_, values) in enumerate(series):
            value = values.get(period)
            if value is None:
                continue
            height = PANEL * value / most if most else 0.0
            parts.append(f'<rect x="{x0 + s * bar:.1f}" y="{top + PANEL - height:.1f}"'
                         f' width="{bar:.1f}" height="{height:.1f}"'
                         f' fill="{COLOURS[s % len(COLOURS)]}"><title>'
                         f'{escape(f"{period}: {value:g}")}</title></rect>')
    for s, (name, _) in enumerate(series):  # the legend
        y = top + 12 + 16 * s
        parts.append(f'<rect x="{left + width + 16}" y="{y - 9}" width="10" height="10"'
                     f' fill="{COLOURS[s % len(COLOURS)]}"/>')
        parts.append(_text(left + width + 32, y, name))
    return parts


def _text(x: float, y: float, content: str, size: int = 11) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size={quoteattr(str(size))}>'
            f"{escape(content)}</text>")
