"""How the command line shows query results to a person (`--json` prints them as they
are). Every value a sender wrote goes through `render`, which prints it literally."""

from __future__ import annotations

import json
from typing import Any

from ticketflow import render
from ticketflow.projections.timeline import DEFAULT_LIMIT, Page


def json_out(value: Any) -> None:
    print(render.json_text(value, indent=2))


def timeline_page(ticket_id: str, page: Page, limit: int) -> None:
    timeline(ticket_id, page.events)
    if page.next is not None:
        more = f" --limit {limit}" if limit != DEFAULT_LIMIT else ""
        render.console.print(f"more events: ticketflow timeline {ticket_id} --after"
                             f" {page.next}{more}", markup=False, highlight=False)


def timeline(ticket_id: str, envelopes: list[dict[str, Any]]) -> None:
    if not envelopes:
        render.console.print(f"no events of {ticket_id} after that version", markup=False)
        return
    render.table(
        f"timeline of {ticket_id}, versions {envelopes[0]['version']} to"
        f" {envelopes[-1]['version']}", ("v", "occurred_at", "type", "actor", "data", "hash"),
        ((e["version"], e["occurred_at"], e["type"], f"{e['actor']['role']}:{e['actor']['id']}",
          short(json.dumps(e["data"], ensure_ascii=False)), e["hash"][:16] + "…")
         for e in envelopes),
    )


def held(ticket_id: str, versions: list[int]) -> None:
    if versions:
        render.warning(f"{len(versions)} event(s) of {ticket_id} from version {versions[0]} on"
                       " are parked and not shown; see `ticketflow parked`.")


def sla(report: dict[str, Any], explain: bool) -> None:
    zone = report["timezone"]
    render.say(
        f"{report['ticket_id']} ({report['tenant']}, plan {report['plan']}, priority"
        f" {report['priority']}, calendar {report['calendar']}, times in {zone})"
    )
    clocks = ("first_response", "resolution")
    render.table("SLA clocks", ("clock", "status", "target min", "counted min", "due", "met"),
                 ((c, report[c]["status"], report[c]["target_minutes"],
                   report[c]["counted_minutes"], render.local(report[c]["due_at"], zone),
                   render.local(report[c]["met_at"], zone)) for c in clocks))
    if explain:
        for clock in clocks:
            render.table(f"{clock} ledger", ("from", "to", "counted", "reason", "minutes"),
                         ((render.local(e["from"], zone), render.local(e["to"], zone),
                           "yes" if e["counted"] else "no", e["reason"], e["minutes"])
                          for e in report[clock]["ledger"]))


def findings(found: list[dict[str, Any]]) -> None:
    if found:
        render.table("tampered or damaged streams", ("ticket", "version", "type", "problem"),
                     ((f["ticket_id"], f["version"], f["type"], f["problem"]) for f in found))
    else:
        render.say("all hash chains intact, no event missing; snapshots and timeline rows"
                   " agree with the events")


def log_findings(found: list[dict[str, Any]]) -> None:
    if found:
        render.table("the store against the checkpoint", ("problem", "leaf", "event", "detail"),
                     ((f["problem"], "" if f["leaf"] is None else str(f["leaf"]),
                       f["event"] or "", f["detail"]) for f in found))
    else:
        render.say("the store holds exactly the events the checkpoint signed, in order")


def bundle_problems(problems: list[str]) -> None:
    if problems:
        render.table("the bundle does not verify", ("problem",), ((p,) for p in problems))
    else:
        render.say("every event is in the signed log, and its hash chain holds")


def compliance(title: str, rows: list[dict[str, Any]]) -> None:
    period = ("period",) if any("period" in r for r in rows) else ()
    dims = _dimensions(rows)
    render.table(
        f"{title} (met / breached / open)",
        (*period, "tenant", *dims, "tickets", "first resp.", "%", "resolution", "%"),
        ((*(r["period"] for _ in period), r["tenant"], *(r[d] for d in dims.values()),
          r["tickets"], *_compliance(r["first_response"]), *_compliance(r["resolution"]))
         for r in rows),
    )


def _dimensions(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The columns a report's rows are grouped by after the tenant (heading → key):
    plan × priority, or the account and its manager (`--group account`)."""
    if any("account_id" in r for r in rows):
        return {"account": "account_id", "manager": "manager_id"}
    return {"plan": "plan", "priority": "priority"}


def quality(title: str, found: list[dict[str, Any]], group: str | None) -> None:
    """Response quality (issue 19): each row's pass rates as `item %` pairs."""
    period = ("period",) if any("period" in r for r in found) else ()
    grouped = (group,) if group else ()
    render.table(title, (*period, "tenant", *grouped, "reviews", "mean score", "passed (%)"),
                 ((*(r["period"] for _ in period), r["tenant"],
                   *((r[name] or "-") for name in grouped), r["reviews"], r["mean_score"],
                   ", ".join(f"{item} {rate:g}" for item, rate in r["pass_percent"].items()))
                  for r in found))
def tiers(title: str, found: list[dict[str, Any]]) -> None:
    """Tier-goal attainment, if any tenant shown has tier goals (none: no table)."""
    if not found:
        return
    period = ("period",) if any("period" in r for r in found) else ()
    render.table(
        f"{title} (met / measured; measured = met + missed + escalated)",
        (*period, "tenant", "level", "goal", "met", "%", "missed", "escalated", "pending",
         "median min"),
        ((*(r["period"] for _ in period), r["tenant"], r["level"],
          f"{r['goal_minutes']} min {r['calendar']}", f"{r['met']}/{r['measured']}",
          render.percent(r["attainment_percent"]), r["missed"], r["escalated"], r["pending"],
          "-" if r["median_minutes"] is None else r["median_minutes"]) for r in found),
    )


def rows(title: str, found: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    render.table(title, columns, ([row[c] for c in columns] for row in found))


def times(title: str, found: list[dict[str, Any]]) -> None:
    period = ("period",) if any("period" in r for r in found) else ()
    dims = _dimensions(found)
    render.table(title, (*period, "tenant", *dims, "first response", "resolution"),
                 ((*(r["period"] for _ in period), r["tenant"], *(r[d] for d in dims.values()),
                   _spread(r["first_response"]), _spread(r["resolution"])) for r in found))


def review(result: dict[str, Any]) -> None:
    """The service review (SPEC §12), one table per part."""
    scope = f" ({result['tenant']})" if result["tenant"] else ""
    render.say(f"service review {result['review']}{scope}: {result['from']} – {result['to']},"
               f" by {result['by']}")
    compliance("SLA compliance by period", result["sla"])
    rows("volume by period", result["volume"], ("period", "tenant", "created", "resolved",
                                                "closed", "backlog", "resolution_rate"))
    times("counted minutes to first response / resolution (n, mean, p50, p90)",
          result["times"])
    rows("satisfaction by period", result["satisfaction"],
         ("period", "tenant", "plan", "responses", "mean_score", "csat_percent", "nps"))
    rows("self-service by period", result["self_service"],
         ("period", "tenant", "sessions", "solved", "success_rate"))
    rows("top categories", result["top_categories"],
         ("tenant", "category", "subcategory", "tickets", "previous", "trend", "candidate"))
    rows("knowledge base", result["knowledge_base"],
         ("tenant", "articles", "exposures", "deflections", "deflection_rate", "links",
          "top_article"))


def dead_letters(letters: list[dict[str, Any]]) -> None:
    render.table("dead letters", ("message", "ticket", "code", "message text"),
                 ((d["message_id"] or d["key"], d["ticket_id"], (d["error"] or {}).get("code"),
                   (d["error"] or {}).get("message")) for d in letters))


def key_created(key_id: str, secret: str) -> None:
    render.pairs("key created", {"key id": key_id, "secret": secret})
    render.note("The secret is shown this once and is not stored: keep it now. Send it as"
                " `Authorization: Bearer <secret>`, or sign Kafka commands with it.")


def keys(found: list[dict[str, Any]]) -> None:
    render.table("keys", ("key id", "tenant", "roles", "actor", "name", "state", "expires"),
                 ((k["key_id"], k["tenant"], ",".join(k["roles"]), k["actor"], k["name"],
                   k["state"], k["expires_at"]) for k in found))


def parked(found: list[dict[str, Any]]) -> None:
    render.table("parked events", ("tenant", "ticket", "version", "type", "error"),
                 ((p["tenant"], p["ticket_id"], p["version"], p["type"], p["error"])
                  for p in found))


def demo(result: Any, reports: dict[str, Any]) -> None:
    render.say(f"outcomes: {dict(result.statuses)}  rejections: "
               f"{dict(result.rejections) or 'none'}")
    window = f"{result.start.date()} – {result.as_of.date()}"
    compliance(f"SLA compliance, clocks due {window}", reports["sla"])
    rows(f"ticket volume by week, {window}", reports["volume"],
         ("period", "tenant", "created", "resolved", "closed", "backlog", "resolution_rate"))
    rows("satisfaction by week", reports["satisfaction"],
         ("period", "tenant", "plan", "responses", "mean_score", "csat_percent", "nps"))
    rows("self-service success by week", reports["self_service"],
         ("period", "tenant", "sessions", "solved", "success_rate"))
    times("counted minutes to first response / resolution (n: mean / p50 / p90)",
          reports["times"])
    tiers(f"tier goals, stints decided {window}", reports["tiers"])
    rows("knowledge-base suggestions (ticketflow suggest)", [
        {**found, "suggestions": ", ".join(found["suggestions"]) or "-"}
        for found in reports["suggestions"]], ("tenant", "text", "suggestions"))
    rows("recurring topics, the window's second half against its first (candidate: no"
         " article covers it)",
         _per_tenant(reports["topics"]["categories"], 6),
         ("tenant", "category", "subcategory", "tickets", "trend", "articles", "candidate"))
    rows("frequent words in ticket subjects", _per_tenant(reports["topics"]["terms"], 6),
         ("tenant", "term", "tickets", "trend", "article", "candidate"))
    rows("knowledge-base articles that deflected most",
         _per_tenant([r for r in reports["articles"] if r["deflections"]], 5),
         ("tenant", "article_id", "title", "sessions", "deflections", "deflection_rate",
          "links", "csat_percent"))
    _accounts_and_quality(reports)
    sent = reports["notifications"]
    rows(f"notifications sent to a demo webhook, {window} ({sent['received']} received,"
         f" signatures checked)", sent["rows"],
         ("tenant", "rule", "channel", "notifications", "delivered", "dead"))
    review(reports["review"])


def _accounts_and_quality(reports: dict[str, Any]) -> None:
    """Issue 19 in the demo: dedicated account managers, and response quality."""
    rows("dedicated account managers", reports["accounts"],
         ("tenant", "account_id", "plan", "manager_id", "assigned_at"))
    compliance("SLA compliance of the accounts with a dedicated manager",
               reports["sla_by_account"])
    quality("response quality by tier (the level at resolution)", reports["quality_by_tier"],
            "tier")
    quality("response quality by agent (the assignee at resolution)",
            _per_tenant(reports["quality_by_agent"], 6), "agent")


def _per_tenant(found: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
    """The first `most` rows of each tenant, in the order given."""
    seen: dict[str, int] = {}
    kept = []
    for row in found:
        seen[row["tenant"]] = seen.get(row["tenant"], 0) + 1
        if seen[row["tenant"]] <= most:
            kept.append(row)
    return kept


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spread(figures: dict[str, Any]) -> str:
    if not figures["count"]:
        return "-"
    return f"{figures['count']}: {figures['mean']} / {figures['p50']} / {figures['p90']}"


def _compliance(tally: dict[str, Any]) -> tuple[str, str]:
    counts = f"{tally['met']}/{tally['breached']}/{tally['open']}"
    if tally["met"] + tally["breached"] + tally["open"] == 0:
        return "n/a", ""
    return counts, render.percent(tally["compliance_percent"])
