"""`ticketflow demo`: a seeded, realistic workload for both tenants (and a knowledge base
to start from), then the reports."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from ticketflow.application import TicketingApp
from ticketflow.clock import SystemClock
from ticketflow.projections import article_search, periods
from ticketflow.projections.accounts import managers
from ticketflow.projections.db import Tables
from ticketflow.projections.kb_reports import articles_report, topics_report
from ticketflow.projections.quality import quality_report
from ticketflow.projections.replay import open_projector
from ticketflow.projections.reports import (
    PolicyOf,
    satisfaction_report,
    sla_report,
    sla_report_by,
    times_report,
    volume_report,
)
from ticketflow.projections.tier_stints import tier_rows_by
from ticketflow.queries import SUGGESTIONS
from ticketflow.render import progress_bar
from ticketflow.timers import Timers
from ticketflow.tools import demo_accounts
from ticketflow.tools.demo_webhooks import deliver_notifications
from ticketflow.tools.texts import ARTICLES, GB_SUBJECTS, PP_SUBJECTS, SUGGEST
from ticketflow.tools.workload import (
    DEFAULT_START,
    GB,
    KNOWN_ARTICLES,
    PP,
    generate_workload,
)

__all__ = ["DEFAULT_START", "DemoResult", "demo_reports", "run_demo"]
BATCH = 200  # commands per transaction


@dataclass(frozen=True)
class DemoResult:
    statuses: Counter[str]
    rejections: Counter[str]
    start: datetime
    as_of: datetime


def run_demo(
    app: TicketingApp, seed: int, tickets: int, start: datetime, days: int, progress: bool
) -> DemoResult:
    """Apply the workload, then fire what the timers have due by the window's end.
    A window reaching past now is simulated on a clock started at its end (the engine
    refuses commands dated ahead of its clock, and fires nothing due after it)."""
    if start + timedelta(days=days) > app.clock():
        app.clock = SystemClock.starting_at(start + timedelta(days=days))
    workload = generate_workload(seed, tickets=tickets, start=start, days=days)
    managers = demo_accounts.manager_commands(workload, start)
    commands = [*_articles(start), *managers, *workload]
    statuses: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    _apply(app, commands, statuses, rejections, progress)
    as_of = start + timedelta(days=days)
    statuses["time-driven"] += len(Timers(app).fire_until(as_of))
    # quality reviews (issue 19): after the timers, of the tickets resolved by then
    _apply(app, demo_accounts.review_commands(app, workload, seed, as_of, managers),
           statuses, rejections, progress)
    return DemoResult(statuses, rejections, start, as_of)


def _apply(app: TicketingApp, commands: list[dict[str, Any]], statuses: Counter[str],
           rejections: Counter[str], progress: bool) -> None:
    with progress_bar(progress) as bar:
        task = bar.add_task("applying commands", total=len(commands))
        raws = [json.dumps(command).encode("utf-8") for command in commands]
        for first in range(0, len(raws), BATCH):
            for outcome in app.apply_batch(raws[first:first + BATCH]):
                statuses[outcome.status] += 1
                if outcome.error:
                    rejections[outcome.error["code"]] += 1
            bar.advance(task, min(BATCH, len(raws) - first))


def _articles(start: datetime) -> list[dict[str, Any]]:
    """create_article for the demo's knowledge base, the day before the workload: the
    hand-written articles, and one for each other article the workload refers to."""
    at = (start - timedelta(days=1)).isoformat()
    return [{"message_id": f"demo-{article_id}", "type": "create_article", "tenant": tenant,
             "article_id": article_id, "occurred_at": at,
             "actor": {"id": "kb-editor", "role": "agent"},
             "payload": {"title": title, "body": body, "tags": list(tags)}}
            for tenant, articles in knowledge_base().items()
            for article_id, (title, body, tags) in articles.items()]


def knowledge_base() -> dict[str, dict[str, tuple[str, str, tuple[str, ...]]]]:
    """Every article the workload names, by tenant: the hand-written ones (`ARTICLES`),
    the rest an answer to one of the tenant's ticket subjects, in turn."""
    subjects = {PP: PP_SUBJECTS, GB: GB_SUBJECTS}
    base = {}
    for tenant, ids in KNOWN_ARTICLES.items():
        topics = [(topic, subject) for topic, texts in subjects[tenant].items()
                  for subject in texts]
        written = ARTICLES[tenant]
        base[tenant] = {
            article_id: written.get(article_id) or _answer(n, *topics[n % len(topics)])
            for n, article_id in enumerate(ids)}
    return base


def _answer(n: int, topic: str, subject: str) -> tuple[str, str, tuple[str, ...]]:
    """An article on the topic, its title the topic's (no subject's words: a hand-written
    article on the very question ranks above it)."""
    name = topic.replace("_", " ")
    return (f"{name.capitalize()}: common questions ({n})",
            f"Answers to {name} questions such as \"{subject}\", and what to check"
            " before opening a ticket.",
            (topic,))


def demo_reports(app: TicketingApp, engine: Engine, result: DemoResult,
                 progress: bool) -> dict[str, Any]:
    """The SLA (also by month), volume, satisfaction, time and tier-goal reports over the
    window, suggestions for a few customers' questions, the topics that want an article
    and the articles' effect, from the read models (brought up to date first); and the
    notifications, delivered to a demo webhook receiver, by rule and outcome."""
    projector = open_projector(app, engine)
    with progress_bar(progress) as bar:
        task = bar.add_task("updating read models", total=None)
        projector.catch_up(lambda n: bar.update(task, completed=n))
    since, until = result.start, result.as_of

    def recorded(row: dict[str, Any]) -> Any:
        return app.policy_store.policy_version(row["policy_id"], row["policy_version"],
                                               row["policy_hash"])

    with engine.connect() as conn:
        sla = sla_report(conn, projector.t, recorded, since=since, until=until, as_of=until)
        volume = volume_report(conn, projector.t, since=since.date(), until=until.date())
        satisfaction = satisfaction_report(conn, projector.t, since=since.date(),
                                           until=until.date())
        times = times_report(conn, projector.t, recorded, since=since, until=until)
        tiers = [row for _, row in tier_rows_by(conn, projector.t, recorded,
                                                periods=[(None, since, until)], as_of=until)]
        monthly = [{"period": period, **row.as_dict()}
                   for period, low, high in periods.windows(since, until, "month")
                   for row in sla_report(conn, projector.t, recorded, since=low, until=high,
                                         as_of=until)]
        suggestions = [
            {"tenant": tenant, "text": text, "suggestions": [
                found["article_id"] for found in article_search.search(
                    conn, projector.t.kb_articles.name, tenant, text, SUGGESTIONS)]}
            for tenant, texts in SUGGEST.items() for text in texts]
        # the second half of the window, its trend against the first
        half = since + (until - since) // 2
        topics = topics_report(conn, projector.t, since=half, until=until)
        articles = articles_report(conn, projector.t, since=since, until=until)
        accounts = account_reports(conn, projector.t, recorded, since, until)
    notifications = deliver_notifications(app, engine, since, until)
    return {"sla": [row.as_dict() for row in sla], "sla_by_month": monthly,
            "volume": weekly_totals(volume), **satisfaction, "times": times, "tiers": tiers,
            "suggestions": suggestions, "topics": topics,
            "articles": sorted(articles, key=lambda r: (r["tenant"], -r["deflections"],
                                                        r["article_id"])),
            "notifications": notifications, **accounts}


def account_reports(conn: Connection, t: Tables, policy_of: PolicyOf, since: datetime,
                    until: datetime) -> dict[str, Any]:
    """Issue 19: the accounts with a dedicated manager, their SLA compliance, and
    response quality by tier and by agent, over the window."""
    window: list[tuple[str | None, datetime, datetime]] = [(None, since, until)]
    with_manager = [row.as_dict() for _, row in sla_report_by(
        conn, t, policy_of, periods=window, as_of=until, group="account")]
    accounts = [dict(row._mapping) for row in conn.execute(
        select(t.accounts).order_by(t.accounts.c.tenant, t.accounts.c.account_id))]
    return {"accounts": accounts,
            "sla_by_account": [row for row in managers(conn, t, with_manager)
                               if row["manager_id"]],
            "quality_by_tier": quality_report(conn, t, periods=window, group="tier"),
            "quality_by_agent": quality_report(conn, t, periods=window, group="agent")}


def weekly_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Volume rows summed over category, channel and priority: one per week × tenant."""
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        total = totals.setdefault((row["period"], row["tenant"]),
                                  {"created": 0, "resolved": 0, "closed": 0, "backlog": 0})
        for name in total:
            total[name] += row[name]
    return [{"period": p, "tenant": t, **v,
             "resolution_rate": round(100.0 * v["resolved"] / v["created"], 1)
             if v["created"] else None}
            for (p, t), v in sorted(totals.items())]


