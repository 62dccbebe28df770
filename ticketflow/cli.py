"""The `ticketflow` command line (SPEC §6)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import stat
import sys
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import IO, Any

from eventsourcing.persistence import PersistenceError
from sqlalchemy import Connection

from ticketflow import confinement, render
from ticketflow.application import TicketingApp
from ticketflow.audit import verify_store
from ticketflow.bootstrap import build_app
from ticketflow.consumers.timers import Timers
from ticketflow.domain.errors import AmbiguousId, InvalidMessage, Rejected
from ticketflow.domain.policy import Policy, PolicyError, load_policy_file
from ticketflow.domain.receipt import Oversized
from ticketflow.export import add_export_command
from ticketflow.lines import bounded_lines
from ticketflow.producers.sdk import CommandClient, outcome
from ticketflow.producers.topics import Topics
from ticketflow.projections.db import Tables, engine_for
from ticketflow.projections.replay import rebuild
from ticketflow.projections.reports import (
    satisfaction_report,
    sla_report,
    times_report,
    volume_report,
)
from ticketflow.projections.runner import Projector
from ticketflow.projections.timeline import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    ticket_as_of,
    timeline_page,
)
from ticketflow.schemas.commands import MAX_MESSAGE_BYTES
from ticketflow.serve import ROLES, serve
from ticketflow.settings import (
    TENANT_ENV,
    Settings,
    SettingsError,
    instant,
    kafka_client_config,
    tenant_scope,
)
from ticketflow.tools.demo import DEFAULT_START, demo_reports, run_demo
from ticketflow.tools.demo import progress_bar as _bar
from ticketflow.tools.kafka_broker import add_kafka_commands

Handler = Callable[[TicketingApp, argparse.Namespace], int]
APPLY_BATCH = 200


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        if hasattr(args, "tenant"):  # reports and export filter, read commands confine
            args.tenant = tenant_scope(args.tenant)
        if getattr(args, "needs_app", True) is False:
            return int(args.handler(args))
        app = build_app(Settings.from_env(db=args.db, kafka=getattr(args, "kafka", None)))
        with app:
            _known_tenant(app, getattr(args, "tenant", None))
            return int(args.handler(app, args))
    except (SettingsError, PolicyError, AmbiguousId) as exc:
        render.error("error", str(exc))
        return 2
    except PersistenceError as exc:
        render.error("error", f"the event store is unavailable: {exc}")
        render.note("Check --db (or TICKETFLOW_DB) and that the database server is running.")
        return 2
    except Rejected as exc:
        _fail(args, exc.as_dict())
        return 1


def _scope(what: str = "another tenant's ticket or message is not_found"
           ) -> argparse.ArgumentParser:
    """--tenant on the commands that read, send or fire one tenant's data."""
    scope = argparse.ArgumentParser(add_help=False)
    scope.add_argument("--tenant", help=f"confine to this tenant: {what}"
                       " (env TICKETFLOW_TENANT)")
    return scope


def _known_tenant(app: TicketingApp, tenant: str | None) -> None:
    if tenant is not None and tenant not in app.policies:
        known = ", ".join(sorted(app.policies))
        raise SettingsError(f"unknown tenant {tenant!r} (--tenant or TICKETFLOW_TENANT);"
                            f" known: {known}")


def _confine(app: TicketingApp, args: argparse.Namespace, ticket_id: str) -> str:
    """The tenant whose ticket `ticket_id` names: the caller's (a confined caller sees
    another tenant's ticket exactly as a missing one: same code, same message, so
    existence does not leak), or the one tenant using the id (several: AmbiguousId)."""
    tenant = app.stream_tenant("ticket", ticket_id, args.tenant)
    args.tenant = tenant
    return tenant


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="event store URL (default sqlite:///ticketflow.db;"
                        " env TICKETFLOW_DB)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="ticketflow", description="Event-sourced support-ticket lifecycle engine."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    cmd = sub.add_parser("apply", parents=[common, _scope()], help="apply commands from JSON Lines")
    cmd.add_argument("file", help="a .jsonl file, or - for standard input")
    cmd.set_defaults(handler=cmd_apply)

    cmd = sub.add_parser("ticket", parents=[common, _scope()], help="a ticket's state")
    cmd.add_argument("ticket_id")
    cmd.add_argument("--as-of", type=instant, help="state as of this instant (ISO-8601)")
    cmd.set_defaults(handler=cmd_ticket)

    cmd = sub.add_parser("timeline", parents=[common, _scope()],
                         help="a ticket's events with their hashes, a page at a time")
    cmd.add_argument("ticket_id")
    cmd.add_argument("--after", type=_count(0), default=0, metavar="V",
                     help="the events after version V: the previous page's `next` (default 0)")
    cmd.add_argument("--limit", type=_count(1, MAX_LIMIT), default=DEFAULT_LIMIT, metavar="N",
                     help=f"at most N events (1 to {MAX_LIMIT:,}; default {DEFAULT_LIMIT:,})")
    cmd.add_argument("--all", action="store_true",
                     help="every event after V, read and printed N at a time; with --json,"
                     " one envelope per line (JSON Lines)")
    cmd.set_defaults(handler=cmd_timeline)

    cmd = sub.add_parser("verify", parents=[common, _scope()],
                         help="check the hash chains, snapshots and timeline rows")
    cmd.add_argument("ticket_id", nargs="?")
    cmd.set_defaults(handler=cmd_verify)

    cmd = sub.add_parser("sla", parents=[common, _scope()], help="a ticket's SLA clocks")
    cmd.add_argument("ticket_id")
    cmd.add_argument("--as-of", type=instant, help="evaluate at this instant (default: now)")
    cmd.add_argument("--explain", action="store_true", help="add each clock's ledger")
    cmd.set_defaults(handler=cmd_sla)

    cmd = sub.add_parser("tick", parents=[common, _scope("only its tickets' commands fire")],
                         help="fire every time-driven command due up to an instant")
    cmd.add_argument("--until", type=instant, required=True, help="ISO-8601 instant")
    cmd.set_defaults(handler=cmd_tick)

    cmd = sub.add_parser("dead-letters", parents=[common, _scope()], help="rejected messages")
    cmd.set_defaults(handler=cmd_dead_letters)

    cmd = sub.add_parser("demo", parents=[common], help="run a realistic demo workload")
    cmd.add_argument("--seed", type=int, default=7)
    cmd.add_argument("--tickets", type=int, default=2000)
    cmd.add_argument("--days", type=int, default=28)
    cmd.set_defaults(handler=cmd_demo)

    _add_service_commands(sub, common)
    _add_report_commands(sub, common)
    add_export_command(sub, common)

    cmd = sub.add_parser("policy", help="validate a policy file")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(handler=cmd_policy, needs_app=False)

    _add_optional_commands(sub)
    return parser


def _add_report_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Reports from the read models, and their rebuild."""
    report = sub.add_parser("report", help="reports from the read models")
    kinds = report.add_subparsers(title="reports", metavar="REPORT")
    period = argparse.ArgumentParser(add_help=False)
    period.add_argument("--from", dest="since", type=instant, required=True)
    period.add_argument("--to", dest="until", type=instant, required=True)
    period.add_argument("--tenant")

    cmd = kinds.add_parser("sla", parents=[common, period],
                           help="SLA compliance by tenant × plan × priority")
    cmd.add_argument("--as-of", type=instant,
                     help="evaluate at this instant (default: --to, or now if earlier)")
    cmd.add_argument("--policy", type=Path, help="also re-evaluate under this policy file")
    cmd.set_defaults(handler=cmd_report_sla)

    cmd = kinds.add_parser("volume", parents=[common, period],
                           help="created, resolved, closed and backlog by period")
    cmd.add_argument("--by", choices=("day", "week"), default="week")
    cmd.set_defaults(handler=cmd_report_volume)

    cmd = kinds.add_parser("satisfaction", parents=[common, period],
                           help="CSAT, NPS and self-service success by period")
    cmd.add_argument("--by", choices=("day", "week"), default="week")
    cmd.set_defaults(handler=cmd_report_satisfaction)

    cmd = kinds.add_parser("times", parents=[common, period],
                           help="mean, p50, p90 minutes to first response and resolution")
    cmd.set_defaults(handler=cmd_report_times)

    cmd = sub.add_parser("parked", parents=[common, _scope()],
                         help="events the read models could not apply, held back")
    cmd.add_argument("--retry", action="store_true", help="apply them again, in order")
    cmd.set_defaults(handler=cmd_parked)

    cmd = sub.add_parser("replay", parents=[common], help="rebuild the read models")
    cmd.add_argument("--from-start", action="store_true",
                     help="rebuild from the first event (default: catch up)")
    cmd.set_defaults(handler=cmd_replay)


def _add_service_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The commands that talk to Kafka, and `outcome`."""
    kafka = argparse.ArgumentParser(add_help=False)
    kafka.add_argument("--kafka", help="bootstrap HOST:PORT (env TICKETFLOW_KAFKA)")

    cmd = sub.add_parser("serve", parents=[common, kafka],
                         help="run the command consumer, outbox relay and timers")
    cmd.add_argument("--partitions", type=int, default=6, help="for topics it creates")
    cmd.set_defaults(handler=cmd_serve, needs_app=False)

    cmd = sub.add_parser("worker", parents=[common, kafka], help="run one role")
    cmd.add_argument("role", choices=ROLES)
    cmd.add_argument("--partitions", type=int, default=6, help="for topics it creates")
    cmd.set_defaults(handler=cmd_serve, needs_app=False)

    cmd = sub.add_parser("publish", parents=[common, kafka, _scope()],
                         help="publish commands from JSON Lines to support.commands")
    cmd.add_argument("file", help="a .jsonl file, or - for standard input")
    cmd.set_defaults(handler=cmd_publish, needs_app=False)

    cmd = sub.add_parser("outcome", parents=[common, _scope()], help="what became of a message")
    cmd.add_argument("message_id")
    cmd.set_defaults(handler=cmd_outcome)


def _add_optional_commands(sub: Any) -> None:
    add_kafka_commands(sub)
    for name, choice in sub.choices.items():
        if name == "kafka":
            _mark_without_app(choice)


def _mark_without_app(parser: argparse.ArgumentParser) -> None:
    """Kafka's own sub-commands take (args) only; wrap them to the CLI's calling shape."""
    parser.set_defaults(needs_app=False)
    for action in parser._actions:  # argparse keeps sub-parsers here
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.set_defaults(needs_app=False)
                func = child.get_default("func")
                if func is not None:
                    child.set_defaults(handler=func)


# -- handlers ---------------------------------------------------------------------------


def cmd_apply(app: TicketingApp, args: argparse.Namespace) -> int:
    """One JSON line out per command line in; exit 1 if any line was rejected.

    Lines are applied in batches, one transaction each (same outcomes as one by one);
    a batch ends early when the input has no more lines ready, so a pipe or terminal
    feeding lines one at a time gets each answer at once."""
    any_rejected = False
    with _open_input(args.file) as stream:
        for batch in _batches(stream, APPLY_BATCH):
            refused = [confinement.refused(app, line, args.tenant) for line in batch]
            applied = iter(app.apply_batch([line for line, no in zip(batch, refused,
                                                                     strict=True) if not no]))
            for refusal in refused:
                outcome = refusal or next(applied)
                any_rejected |= outcome.status == "rejected"
                print(render.json_text(outcome.as_dict()))
            sys.stdout.flush()
    return 1 if any_rejected else 0


def _batches(stream: IO[bytes], size: int) -> Iterator[list[bytes | Oversized]]:
    batch: list[bytes | Oversized] = []
    for line in bounded_lines(stream):
        batch.append(line)
        if len(batch) >= size or not _more_ready(stream):
            yield batch
            batch = []
    if batch:
        yield batch


def _more_ready(stream: IO[bytes]) -> bool:
    """Whether reading on would not wait: always for a file, else if input is pending."""
    fd = stream.fileno()
    return stat.S_ISREG(os.fstat(fd).st_mode) or bool(select.select([fd], [], [], 0)[0])


def cmd_ticket(app: TicketingApp, args: argparse.Namespace) -> int:
    """Now: the aggregate from the event store; --as-of: folded from the timeline."""
    tenant = _confine(app, args, args.ticket_id)
    if args.as_of:
        projector = _read_models(app, args)
        with projector.engine.connect() as conn:
            ticket = ticket_as_of(conn, projector.t, tenant, args.ticket_id, args.as_of)
        _warn_parked(projector, tenant, args.ticket_id)
    else:
        ticket = app.load_ticket(args.ticket_id, tenant=args.tenant)
    state = ticket.state()
    if args.as_of:
        state["as_of"] = args.as_of.isoformat()
    if args.json:
        _print_json(state)
    else:
        render.pairs(f"ticket {args.ticket_id}", state)
    return 0


def cmd_timeline(app: TicketingApp, args: argparse.Namespace) -> int:
    """A page of the timeline read model (--json: {"events", "next"}, as the HTTP API),
    or with --all every event, streamed. `verify` compares these rows with the store."""
    tenant = _confine(app, args, args.ticket_id)
    projector = _read_models(app, args)
    with projector.engine.connect() as conn:
        if args.all:
            _stream_timeline(conn, projector.t, tenant, args)
        else:
            _show_page(timeline_page(conn, projector.t, tenant, args.ticket_id,
                                     after=args.after, limit=args.limit), args)
    _warn_parked(projector, tenant, args.ticket_id)
    return 0


def _show_page(page: Page, args: argparse.Namespace) -> None:
    if args.json:
        _print_json(page.as_dict())
        return
    _show_timeline(args.ticket_id, page.events)
    if page.next is not None:
        limit = f" --limit {args.limit}" if args.limit != DEFAULT_LIMIT else ""
        render.console.print(f"more events: ticketflow timeline {args.ticket_id} --after"
                             f" {page.next}{limit}", markup=False, highlight=False)


def _stream_timeline(conn: Connection, t: Tables, tenant: str,
                     args: argparse.Namespace) -> None:
    """Every event after --after, a page in memory at a time."""
    after = args.after
    while True:
        page = timeline_page(conn, t, tenant, args.ticket_id, after=after, limit=args.limit)
        if args.json:
            sys.stdout.write("".join(json.dumps(e, ensure_ascii=False) + "\n"
                                     for e in page.events))
            sys.stdout.flush()
        elif page.events:
            _show_timeline(args.ticket_id, page.events)
        if page.next is None:
            return
        after = page.next


def _show_timeline(ticket_id: str, envelopes: list[dict[str, Any]]) -> None:
    if not envelopes:
        render.console.print(f"no events of {ticket_id} after that version", markup=False)
        return
    render.table(
        f"timeline of {ticket_id}, versions {envelopes[0]['version']} to"
        f" {envelopes[-1]['version']}", ("v", "occurred_at", "type", "actor", "data", "hash"),
        ((e["version"], e["occurred_at"], e["type"], f"{e['actor']['role']}:{e['actor']['id']}",
          _short(json.dumps(e["data"], ensure_ascii=False)), e["hash"][:16] + "…")
         for e in envelopes),
    )


def _count(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` to `most`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least or (most is not None and value > most):
            bound = f"from {least} to {most:,}" if most is not None else f"{least} or more"
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {bound}")
        return value
    return parse


def _warn_parked(projector: Projector, tenant: str, ticket_id: str) -> None:
    held = [p["version"] for p in projector.parked(tenant, ticket_id)]
    if held:
        render.warning(f"{len(held)} event(s) of {ticket_id} from version {held[0]} on are"
                       " parked and not shown; see `ticketflow parked`.")


def cmd_verify(app: TicketingApp, args: argparse.Namespace) -> int:
    """Hash chains, positions and receipts of the event store, and the snapshots and
    timeline rows served in its place (ticketflow.audit)."""
    read_models = engine_for(Settings.from_env(db=args.db).db)
    findings = [f.as_dict() for f in verify_store(app, args.ticket_id, tenant=args.tenant,
                                                  read_models=read_models)]
    if args.json:
        _print_json({"ok": not findings, "breaks": findings})
    elif findings:
        render.table("tampered or damaged streams", ("ticket", "version", "type", "problem"),
                     ((f["ticket_id"], f["version"], f["type"], f["problem"]) for f in findings))
    else:
        render.say("all hash chains intact, no event missing; snapshots and timeline rows"
                   " agree with the events")
    return 1 if findings else 0


def cmd_sla(app: TicketingApp, args: argparse.Namespace) -> int:
    _confine(app, args, args.ticket_id)
    ticket = app.load_ticket(args.ticket_id, tenant=args.tenant)
    as_of = args.as_of or app.clock()
    result = ticket.sla(app.policy_of(ticket), as_of.astimezone(UTC), explain=args.explain)
    report = {
        "ticket_id": ticket.ticket_id, "tenant": ticket.tenant, "plan": ticket.plan,
        "priority": result.priority, "calendar": result.calendar, "timezone": ticket.timezone,
        "as_of": as_of.astimezone(UTC).isoformat(),
        "first_response": result.first_response.as_dict(args.explain),
        "resolution": result.resolution.as_dict(args.explain),
    }
    if args.json:
        _print_json(report)
    else:
        _show_sla(report, args.explain)
    return 0


def _show_sla(report: dict[str, Any], explain: bool) -> None:
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


def _read_models(app: TicketingApp, args: argparse.Namespace) -> Projector:
    """The read models, caught up with the event store (with progress if it is long)."""
    projector = Projector(app, engine_for(Settings.from_env(db=args.db).db))
    with _bar(not args.json) as bar:
        task = bar.add_task("updating read models", total=None)
        projector.catch_up(lambda n: bar.update(task, completed=n))
    return projector


def cmd_report_sla(app: TicketingApp, args: argparse.Namespace) -> int:
    projector = _read_models(app, args)
    as_of = (args.as_of or min(args.until, app.clock())).astimezone(UTC)
    window = {"since": args.since.astimezone(UTC), "until": args.until.astimezone(UTC),
              "as_of": as_of, "tenant": args.tenant}
    what_if = load_policy_file(args.policy) if args.policy else None
    with projector.engine.connect() as conn:
        recorded = sla_report(conn, projector.t, _recorded_policy(app), **window)
        other = (sla_report(conn, projector.t, lambda row: what_if if
                            row["tenant"] == what_if.id else None, **window)
                 if what_if else None)
    result: dict[str, Any] = {
        "from": window["since"].isoformat(), "to": window["until"].isoformat(),
        "as_of": as_of.isoformat(), "tenant": args.tenant,
        "rows": [row.as_dict() for row in recorded]}
    if what_if is not None and other is not None:
        result["what_if"] = {"policy": what_if.identity(),
                             "rows": [row.as_dict() for row in other]}
    if args.json:
        _print_json(result)
    else:
        _show_compliance(f"SLA compliance, clocks due {result['from']} – {result['to']},"
                         f" as of {result['as_of']}", result["rows"])
        if what_if is not None:
            _show_compliance(f"… re-evaluated under {what_if.id} {what_if.version}"
                             f" ({args.policy})", result["what_if"]["rows"])
    return 0


def _recorded_policy(app: TicketingApp) -> Callable[[dict[str, Any]], Policy | None]:
    def policy_of(row: dict[str, Any]) -> Policy | None:
        return app.policy_version(row["policy_id"], row["policy_version"], row["policy_hash"])
    return policy_of


def cmd_report_volume(app: TicketingApp, args: argparse.Namespace) -> int:
    projector = _read_models(app, args)
    with projector.engine.connect() as conn:
        rows = volume_report(conn, projector.t, since=args.since.date(),
                             until=args.until.date(), by=args.by, tenant=args.tenant)
    if args.json:
        _print_json({"from": args.since.date().isoformat(), "to": args.until.date().isoformat(),
                     "by": args.by, "tenant": args.tenant, "rows": rows})
        return 0
    columns = ("period", "tenant", "category", "channel", "priority", "created", "resolved",
               "closed", "backlog", "resolution_rate")
    _show_rows(f"ticket volume by {args.by}", rows, columns)
    return 0


def cmd_report_satisfaction(app: TicketingApp, args: argparse.Namespace) -> int:
    projector = _read_models(app, args)
    with projector.engine.connect() as conn:
        report = satisfaction_report(conn, projector.t, since=args.since.date(),
                                     until=args.until.date(), by=args.by, tenant=args.tenant)
    if args.json:
        _print_json({"from": args.since.date().isoformat(), "to": args.until.date().isoformat(),
                     "by": args.by, "tenant": args.tenant, **report})
        return 0
    columns = ("period", "tenant", "plan", "responses", "mean_score", "csat_percent",
               "nps_responses", "nps")
    _show_rows(f"satisfaction by {args.by}", report["satisfaction"], columns)
    sessions = ("period", "tenant", "sessions", "solved", "success_rate")
    _show_rows(f"self-service success by {args.by}", report["self_service"], sessions)
    return 0


def cmd_report_times(app: TicketingApp, args: argparse.Namespace) -> int:
    projector = _read_models(app, args)
    with projector.engine.connect() as conn:
        rows = times_report(conn, projector.t, _recorded_policy(app),
                            since=args.since.astimezone(UTC), until=args.until.astimezone(UTC),
                            tenant=args.tenant)
    if args.json:
        _print_json({"from": args.since.isoformat(), "to": args.until.isoformat(),
                     "tenant": args.tenant, "rows": rows})
        return 0
    render.table(
        "counted minutes to first response / resolution (n, mean, p50, p90)",
        ("tenant", "plan", "priority", "first response", "resolution"),
        ((r["tenant"], r["plan"], r["priority"], _spread(r["first_response"]),
          _spread(r["resolution"])) for r in rows))
    return 0


def _spread(figures: dict[str, Any]) -> str:
    if not figures["count"]:
        return "-"
    return f"{figures['count']}: {figures['mean']} / {figures['p50']} / {figures['p90']}"


def cmd_parked(app: TicketingApp, args: argparse.Namespace) -> int:
    """List parked events (exit 1 if any); --retry applies them again first."""
    projector = Projector(app, engine_for(Settings.from_env(db=args.db).db))
    if args.retry:
        applied, remaining = projector.retry_parked()
        render.note(f"applied {applied} parked event(s); {remaining} still parked")
    parked = [{"tenant": p["tenant"], "ticket_id": p["ticket_id"], "version": p["version"],
               "type": p["envelope"]["type"], "error": p["error"]}
              for p in projector.parked(args.tenant)]
    if args.json:
        _print_json(parked)
    else:
        render.table("parked events", ("tenant", "ticket", "version", "type", "error"),
                     ((p["tenant"], p["ticket_id"], p["version"], p["type"], p["error"])
                      for p in parked))
    return 1 if parked else 0


def cmd_replay(app: TicketingApp, args: argparse.Namespace) -> int:
    engine = engine_for(Settings.from_env(db=args.db).db)
    with _bar(not args.json) as bar:
        task = bar.add_task("replaying events into fresh read models", total=None)
        if args.from_start:
            applied = rebuild(app, engine, lambda n: bar.update(task, completed=n))
        else:
            applied = Projector(app, engine).catch_up(lambda n: bar.update(task, completed=n))
    if args.json:
        _print_json({"applied": applied, "from_start": args.from_start})
    else:
        render.note(f"applied {applied} events to the read models")
    return 0


def cmd_tick(app: TicketingApp, args: argparse.Namespace) -> int:
    """One JSON line per fired command (breaches, automatic escalations, auto-close);
    exit 2 naming each ticket its policy version cannot serve (the others still fire)."""
    timers = Timers(app, tenant=args.tenant)
    fired = timers.fire_until(args.until.astimezone(UTC))
    for fired_outcome in fired:
        print(render.json_text(fired_outcome.as_dict()))
    if not args.json:
        render.note(f"fired {len(fired)} time-driven command(s) due by"
                    f" {args.until.isoformat()}")
    for (tenant, ticket_id), problem in sorted(timers.unserviceable.items()):
        render.error("error", f"nothing fired for ticket {ticket_id} ({tenant}): {problem}")
    if timers.unserviceable:
        return 2
    return 1 if any(o.status == "rejected" for o in fired) else 0


def cmd_dead_letters(app: TicketingApp, args: argparse.Namespace) -> int:
    letters: list[dict[str, Any]] = [
        {"key": r.key, "message_id": r.message_id, "tenant": r.tenant,
         "ticket_id": r.ticket_id, "error": r.error,
         "recorded_at": r.recorded_at.isoformat(), "original": r.raw,
         "original_encoding": r.raw_encoding, "original_length": r.raw_length,
         "original_sha256": r.raw_sha256}
        for r in app.rejected() if args.tenant in (None, r.tenant)
    ]
    if args.json:
        _print_json(letters)
    else:
        render.table("dead letters", ("message", "ticket", "code", "message text"),
                     ((d["message_id"] or d["key"], d["ticket_id"],
                       (d["error"] or {}).get("code"),
                       (d["error"] or {}).get("message")) for d in letters))
    return 0


def _show_compliance(title: str, rows: list[dict[str, Any]]) -> None:
    render.table(
        f"{title} (met / breached / open)",
        ("tenant", "plan", "priority", "tickets", "first resp.", "%", "resolution", "%"),
        ((r["tenant"], r["plan"], r["priority"], r["tickets"],
          *_compliance(r["first_response"]), *_compliance(r["resolution"])) for r in rows),
    )


def cmd_demo(app: TicketingApp, args: argparse.Namespace) -> int:
    """Apply a seeded workload for both tenants, then print the reports. A caller
    confined to one tenant (TICKETFLOW_TENANT) is refused: it would write every tenant's."""
    confined = tenant_scope(None)
    if confined:
        raise SettingsError(f"{TENANT_ENV}={confined} confines this caller to one tenant,"
                            " and the demo writes a workload for every tenant; run it"
                            f" without {TENANT_ENV}")
    result = run_demo(app, args.seed, args.tickets, DEFAULT_START, args.days,
                      progress=not args.json)
    engine = engine_for(Settings.from_env(db=args.db).db)
    reports = demo_reports(app, engine, result, progress=not args.json)
    if args.json:
        _print_json({"from": result.start.isoformat(), "as_of": result.as_of.isoformat(),
                     "outcomes": dict(result.statuses),
                     "rejections": dict(result.rejections), **reports})
        return 0
    render.say(f"outcomes: {dict(result.statuses)}  rejections: "
               f"{dict(result.rejections) or 'none'}")
    window = f"{result.start.date()} – {result.as_of.date()}"
    _show_compliance(f"SLA compliance, clocks due {window}", reports["sla"])
    _show_rows(f"ticket volume by week, {window}", reports["volume"],
               ("period", "tenant", "created", "resolved", "closed", "backlog",
                "resolution_rate"))
    _show_rows("satisfaction by week", reports["satisfaction"],
               ("period", "tenant", "plan", "responses", "mean_score", "csat_percent", "nps"))
    _show_rows("self-service success by week", reports["self_service"],
               ("period", "tenant", "sessions", "solved", "success_rate"))
    render.table(
        "counted minutes to first response / resolution (n: mean / p50 / p90)",
        ("tenant", "plan", "priority", "first response", "resolution"),
        ((r["tenant"], r["plan"], r["priority"], _spread(r["first_response"]),
          _spread(r["resolution"])) for r in reports["times"]))
    return 0


def _show_rows(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    render.table(title, columns, ([row[c] for c in columns] for row in rows))


def cmd_serve(args: argparse.Namespace) -> int:
    """serve: every role; worker ROLE: one. Stops on SIGINT / SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    settings = Settings.from_env(db=args.db, kafka=args.kafka)
    roles = (args.role,) if getattr(args, "role", None) else ROLES
    return serve(settings, roles, partitions=args.partitions)


def cmd_publish(args: argparse.Namespace) -> int:
    """Validate and publish each line; print its message_id; exit 1 if any was invalid."""
    settings = Settings.from_env(db=args.db, kafka=args.kafka)
    invalid = False
    topics = Topics.named(settings.topic_prefix)
    with CommandClient(settings.kafka or "", topics, tenant=args.tenant,
                       **_options(settings)) as client, \
            _open_input(args.file) as stream:
        for line in bounded_lines(stream):
            try:
                if isinstance(line, Oversized):
                    raise InvalidMessage(f"message is {line.length} bytes; the limit is"
                                         f" {MAX_MESSAGE_BYTES}")
                message_id = client.send_document(json.loads(line))
                print(json.dumps({"message_id": message_id, "status": "published"}))
            except (Rejected, ValueError) as exc:
                invalid = True
                error = exc.as_dict() if isinstance(exc, Rejected) else {
                    "code": "invalid_message", "message": str(exc)}
                print(json.dumps({"message_id": None, "status": "invalid", "error": error}))
    return 1 if invalid else 0


def _options(settings: Settings) -> dict[str, Any]:
    config = kafka_client_config(settings.kafka)
    config.pop("bootstrap_servers")
    return config


def cmd_outcome(app: TicketingApp, args: argparse.Namespace) -> int:
    found = outcome(app, args.message_id, tenant=args.tenant)
    if found is None:
        _fail(args, {"code": "not_found", "message": f"no outcome recorded for {args.message_id}"
                     " yet (not received, or still queued)"})
        return 1
    _print_json({"message_id": found.message_id, "status": found.status,
                 "ticket_id": found.ticket_id,
                 "events": [{"type": t, "version": v} for t, v in found.events],
                 "error": found.error})
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    policy = load_policy_file(args.file)
    summary = {**policy.identity(), "plans": list(policy.plans),
               "calendars": list(policy.calendars)}
    if args.json:
        _print_json(summary)
    else:
        render.pairs(f"{args.file}: valid", summary)
    return 0


# -- helpers ----------------------------------------------------------------------------


def _compliance(tally: dict[str, Any]) -> tuple[str, str]:
    counts = f"{tally['met']}/{tally['breached']}/{tally['open']}"
    if tally["met"] + tally["breached"] + tally["open"] == 0:
        return "n/a", ""
    return counts, render.percent(tally["compliance_percent"])


def _open_input(name: str) -> IO[bytes]:
    if name == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)
    try:
        return open(name, "rb")
    except OSError as exc:
        raise SettingsError(f"cannot read {name}: {exc.strerror}") from exc


def _print_json(value: Any) -> None:
    print(render.json_text(value, indent=2))


def _fail(args: argparse.Namespace, error: dict[str, str]) -> None:
    if getattr(args, "json", False):
        _print_json({"error": error})
    else:
        render.error(error["code"], error["message"])


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    raise SystemExit(main())
