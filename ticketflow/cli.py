"""The `ticketflow` command line (SPEC §6): a parser, and one thin handler per command.

Every handler has one signature, `(session, args) -> int`. A `Session` opens what a run
needs, once and only when asked: the settings, the write service, the read models and
the query layer, scoped to `--tenant` (TICKETFLOW_TENANT). Reads go through the query
layer (`ticketflow.queries`), writes through the write service; the handlers parse,
call and print (`ticketflow.cli_views`).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import stat
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import PersistenceError

from ticketflow import answers, confinement, render
from ticketflow import cli_views as views
from ticketflow.bundles import BundleError, verify_bundle
from ticketflow.charts import review_svg
from ticketflow.checkpoints import CheckpointError, load_private_key, load_public_key
from ticketflow.cli_export import add_export_command
from ticketflow.cli_session import Session
from ticketflow.cli_webhooks import add_notification_report, add_webhook_commands
from ticketflow.consumers.group import worker_id
from ticketflow.domain.errors import AmbiguousId, InvalidMessage, Rejected
from ticketflow.domain.policy import PolicyError, load_policy_file
from ticketflow.domain.receipt import Oversized
from ticketflow.keys import private_key_pem, read_secret
from ticketflow.lines import bounded_lines
from ticketflow.logs import configure as configure_logs
from ticketflow.logs import set_worker
from ticketflow.producers.checkpoints import publish_checkpoint
from ticketflow.producers.sdk import CommandClient
from ticketflow.producers.topics import Topics
from ticketflow.projections.periods import BY, quarter, year
from ticketflow.projections.quality import GROUPS as QUALITY_GROUPS
from ticketflow.projections.replay import rebuild
from ticketflow.projections.timeline import DEFAULT_LIMIT, MAX_LIMIT
from ticketflow.schemas.commands import MAX_MESSAGE_BYTES
from ticketflow.serve import ROLES, serve
from ticketflow.settings import (
    KEY_ENV,
    SIGNING_KEY_ENV,
    TENANT_ENV,
    Bound,
    Settings,
    SettingsError,
    instant,
    zone,
)
from ticketflow.timers import Timers
from ticketflow.tools.demo import DEFAULT_START, demo_reports, run_demo
from ticketflow.tools.kafka_broker import add_kafka_commands

APPLY_BATCH = 200


Handler = Callable[[Session, argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    session: Session | None = None
    try:
        session = Session(args)
        return int(args.handler(session, args))
    except (SettingsError, PolicyError, AmbiguousId, CheckpointError) as exc:
        render.error("error", str(exc))
        return 2
    except PersistenceError as exc:
        render.error("error", f"the event store is unavailable: {exc}")
        render.note("Check --db (or TICKETFLOW_DB) and that the database server is running.")
        return 2
    except Rejected as exc:
        _fail(args, exc.as_dict())
        return 1
    finally:
        if session is not None:
            session.close()


def _scope(what: str = "another tenant's ticket or message is not_found"
           ) -> argparse.ArgumentParser:
    """--tenant on the commands that read, send or fire one tenant's data."""
    scope = argparse.ArgumentParser(add_help=False)
    scope.add_argument("--tenant", help=f"confine to this tenant: {what}"
                       " (env TICKETFLOW_TENANT)")
    return scope


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="event store URL (default sqlite:///ticketflow.db;"
                        " env TICKETFLOW_DB)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="ticketflow", description="Event-sourced support-ticket lifecycle engine."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    cmd = sub.add_parser(
        "apply", parents=[common, _scope()], help="apply commands from JSON Lines",
        description="The operator's tool: without --key, every command is trusted to be"
        " who it says it is (its tenant, actor and role). With --key, each command must"
        " stay inside the key's tenant, roles and actor, as over HTTP or signed Kafka.")
    cmd.add_argument("file", help="a .jsonl file, or - for standard input")
    cmd.add_argument("--key", metavar="SECRET_OR_FILE",
                     help="bound every command by this key (its secret, or a file holding"
                     f" it; env {KEY_ENV}); without it the input is trusted")
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
    cmd.add_argument("--checkpoint", metavar="FILE",
                     help="also prove the store holds exactly the events this signed"
                     " checkpoint covers (with --public-key)")
    cmd.add_argument("--public-key", metavar="PEM", help="the checkpoint signer's public key")
    cmd.set_defaults(handler=cmd_verify)

    _add_audit_commands(sub, common)
    _add_key_commands(sub, common)

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
    add_export_command(sub, [common, _scope("only its events are exported")])

    cmd = sub.add_parser("policy", help="validate a policy file")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(handler=cmd_policy)

    # The local broker is a tool with a command line of its own: its sub-commands set
    # `func(args)`, run here with no store.
    add_kafka_commands(sub).set_defaults(handler=cmd_kafka)
    return parser


def _add_key_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Keys: who may speak through HTTP, signed Kafka and `apply --key` (SPEC §8)."""
    keys = sub.add_parser("keys", help="issue, list and revoke keys").add_subparsers(
        title="keys commands", metavar="ACTION", required=True)
    cmd = keys.add_parser("create", parents=[common],
                          help="issue a key; its secret is printed once, never stored")
    cmd.add_argument("--tenant", required=True, help="the only tenant it may speak for")
    cmd.add_argument("--roles", required=True, type=lambda text: text.split(","),
                     help="the roles its commands may take, e.g. customer or agent,manager")
    cmd.add_argument("--actor", help="the only actor id its commands may name")
    cmd.add_argument("--name", default="", help="what it is for, e.g. email-gateway")
    cmd.add_argument("--expires", type=instant, help="it stops working at this instant")
    cmd.set_defaults(handler=cmd_keys_create)
    cmd = keys.add_parser("list", parents=[common], help="every key (never a secret)")
    cmd.add_argument("--tenant", help="only this tenant's keys")
    cmd.set_defaults(handler=cmd_keys_list)
    cmd = keys.add_parser("revoke", parents=[common],
                          help="revoke a key at once, in every process")
    cmd.add_argument("key_id")
    cmd.set_defaults(handler=cmd_keys_revoke)
    cmd = keys.add_parser("pem", help="a key's secret as a PKCS#8 PEM private key, for"
                          " signing Kafka commands with openssl (docs/kafka.md)")
    cmd.add_argument("secret", metavar="SECRET_OR_FILE")
    cmd.set_defaults(handler=cmd_keys_pem)


def _add_audit_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The audit log's signed checkpoints and per-ticket bundles (SPEC §13)."""
    cmd = sub.add_parser("checkpoint", parents=[common],
                         help=f"sign the audit log's tree head (key: ${SIGNING_KEY_ENV});"
                         " with Kafka configured, also publish it to support.checkpoints")
    cmd.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")
    cmd.add_argument("--kafka", help="bootstrap HOST:PORT (env TICKETFLOW_KAFKA)")
    cmd.set_defaults(handler=cmd_checkpoint)

    cmd = sub.add_parser("bundle", parents=[common, _scope()],
                         help="one ticket's events with inclusion proofs and a signed tree"
                         " head; `bundle verify FILE --public-key PEM` checks one")
    cmd.add_argument("target", nargs="+", metavar="ID | verify FILE")
    cmd.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")
    cmd.add_argument("--public-key", metavar="PEM", help="for `bundle verify`")
    cmd.set_defaults(handler=cmd_bundle)


def _add_report_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Reports from the read models, and their rebuild."""
    report = sub.add_parser("report", help="reports from the read models")
    kinds = report.add_subparsers(title="reports", metavar="REPORT")
    period = argparse.ArgumentParser(add_help=False)
    period.add_argument("--from", dest="since", type=Bound.parse, required=True,
                        help="an instant, or a date: its midnight (in --timezone)")
    period.add_argument("--to", dest="until", type=Bound.parse, required=True,
                        help="excluded; an instant, or a date: its midnight")
    period.add_argument("--tenant")
    period.add_argument("--timezone", type=zone, default=UTC, metavar="ZONE",
                        help="periods of --by in this IANA zone (default UTC)")

    cmd = kinds.add_parser("sla", parents=[common, period],
                           help="SLA compliance by tenant × plan × priority")
    cmd.add_argument("--as-of", type=instant,
                     help="evaluate at this instant (default: --to, or now if earlier)")
    cmd.add_argument("--policy", type=Path, help="also re-evaluate under this policy file")
    cmd.add_argument("--by", choices=BY, help="by period of the due instant too")
    _group_by_account(cmd)
    cmd.set_defaults(handler=cmd_report_sla)

    cmd = kinds.add_parser("volume", parents=[common, period],
                           help="created, resolved, closed and backlog by period")
    cmd.add_argument("--by", choices=BY, default="week")
    cmd.set_defaults(handler=cmd_report_volume)

    cmd = kinds.add_parser("satisfaction", parents=[common, period],
                           help="CSAT, NPS and self-service success by period")
    cmd.add_argument("--by", choices=BY, default="week")
    cmd.set_defaults(handler=cmd_report_satisfaction)

    cmd = kinds.add_parser("times", parents=[common, period],
                           help="mean, p50, p90 minutes to first response and resolution")
    cmd.add_argument("--by", choices=BY, help="by period of the met instant too")
    _group_by_account(cmd)
    cmd.set_defaults(handler=cmd_report_times)
    _add_quality_report(kinds, [common, period])
    add_notification_report(kinds, [common, period])

    cmd = sub.add_parser("suggest", parents=[common, _scope("its articles are searched")],
                         help="up to 5 knowledge-base articles for a user's text, best first")
    cmd.add_argument("text", help="what the user wrote (plain words, never search syntax)")
    cmd.set_defaults(handler=cmd_suggest)

    cmd = kinds.add_parser("review", parents=[common],
                           help="the quarterly service review, or the annual one (SPEC §12)")
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--quarter", help="e.g. 2026Q4: its three months")
    which.add_argument("--year", help="e.g. 2026: its four quarters")
    cmd.add_argument("--tenant")
    cmd.add_argument("-o", "--output", metavar="DIR",
                     help="also draw its chart there: review-<quarter or year>.svg")
    cmd.set_defaults(handler=cmd_report_review)

    cmd = kinds.add_parser("topics", parents=[common, period],
                           help="recurring ticket topics, flagged when no article covers them")
    cmd.add_argument("--by", choices=BY, help="in each period too, against the one before")
    cmd.set_defaults(handler=cmd_report_topics)

    cmd = kinds.add_parser("articles", parents=[common, period],
                           help="each article's views, deflections, links and CSAT")
    cmd.add_argument("--by", choices=BY, help="in each period too")
    cmd.set_defaults(handler=cmd_report_articles)

    cmd = sub.add_parser("parked", parents=[common, _scope()],
                         help="events the read models could not apply, held back")
    cmd.add_argument("--retry", action="store_true", help="apply them again, in order")
    cmd.set_defaults(handler=cmd_parked)

    cmd = sub.add_parser("replay", parents=[common], help="rebuild the read models")
    cmd.add_argument("--from-start", action="store_true",
                     help="rebuild from the first event (default: catch up)")
    cmd.set_defaults(handler=cmd_replay)


def _group_by_account(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--group", choices=("account",),
                     help="by tenant × account (and its manager), not plan × priority")


def _add_quality_report(kinds: Any, parents: list[argparse.ArgumentParser]) -> None:
    """`report quality` (issue 19): managers' reviews of resolved tickets."""
    cmd = kinds.add_parser("quality", parents=parents,
                           help="quality reviews: count, mean score, pass rate per rubric item")
    cmd.add_argument("--by", choices=BY, help="by period of the review too")
    cmd.add_argument("--group", choices=tuple(QUALITY_GROUPS),
                     help="by the tier (level) or agent (assignee) at resolution")
    cmd.set_defaults(handler=cmd_report_quality)


def _add_service_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The commands that talk to Kafka, and `outcome`."""
    kafka = argparse.ArgumentParser(add_help=False)
    kafka.add_argument("--kafka", help="bootstrap HOST:PORT (env TICKETFLOW_KAFKA)")

    running = argparse.ArgumentParser(add_help=False)
    running.add_argument("--worker-id", help="this worker's id in its consumer groups (static"
                       " membership: a restart gets its partitions back without a"
                       " rebalance); env TICKETFLOW_WORKER_ID; unique per process")
    running.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on"
                       " http://0.0.0.0:PORT/metrics")

    cmd = sub.add_parser("serve", parents=[common, kafka, running],
                         help="run the command consumer, outbox relay and timers")
    cmd.add_argument("--partitions", type=int, default=6, help="for topics it creates")
    cmd.add_argument("--http", type=_count(1, 65535), metavar="PORT",
                     help="also serve the HTTP API on this port (of --http-host)")
    cmd.add_argument("--http-host", default="127.0.0.1",
                     help="the address the HTTP API listens on (default 127.0.0.1)")
    cmd.set_defaults(handler=cmd_serve)

    cmd = sub.add_parser("http", parents=[common],
                         help="serve the HTTP API (SPEC §9) and the web console (/ui/) on"
                         " the store, no Kafka needed; every /v1 request and every console"
                         " sign-in needs a key (ticketflow keys create)")
    cmd.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    cmd.add_argument("--port", type=_count(1, 65535), default=8080,
                     help="listen port (default 8080)")
    cmd.set_defaults(handler=cmd_http)

    cmd = sub.add_parser("worker", parents=[common, kafka, running], help="run one role")
    cmd.add_argument("role", choices=ROLES)
    cmd.add_argument("--partitions", type=int, default=6, help="for topics it creates")
    cmd.set_defaults(handler=cmd_serve)

    cmd = sub.add_parser("publish", parents=[common, kafka, _scope()],
                         help="publish commands from JSON Lines to support.commands")
    cmd.add_argument("file", help="a .jsonl file, or - for standard input")
    cmd.add_argument("--key", metavar="SECRET_OR_FILE",
                     help="sign every command with this key (its secret, or a file holding"
                     f" it; env {KEY_ENV}), as an engine with TICKETFLOW_REQUIRE_KEYS=1"
                     " requires")
    cmd.set_defaults(handler=cmd_publish)

    cmd = sub.add_parser("outcome", parents=[common, _scope()], help="what became of a message")
    cmd.add_argument("message_id")
    cmd.set_defaults(handler=cmd_outcome)
    add_webhook_commands(sub, common, _scope())  # where notifications are delivered


# -- handlers ---------------------------------------------------------------------------


def cmd_apply(session: Session, args: argparse.Namespace) -> int:
    """One JSON line out per command line in; exit 1 if any line was rejected.

    Lines are applied in batches, one transaction each (same outcomes as one by one);
    a batch ends early when the input has no more lines ready, so a pipe or terminal
    feeding lines one at a time gets each answer at once."""
    app, tenant = session.app, session.scope.tenant
    secret = args.key or session.settings.key
    key = session.keys.authenticate(read_secret(secret)) if secret else None
    any_rejected = False
    with _open_input(args.file) as stream:
        for batch in _batches(stream, APPLY_BATCH):
            refused = [confinement.refused(app, line, tenant) for line in batch]
            applied = iter(app.apply_batch([line for line, no in zip(batch, refused,
                                                                     strict=True) if not no],
                                           bounds=key))
            outcomes = [refusal or next(applied) for refusal in refused]
            for answer in session.queries.with_suggestions(
                    batch, [outcome.as_dict() for outcome in outcomes]):
                any_rejected |= answer["status"] == "rejected"
                print(render.json_text(answer))
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


def cmd_keys_create(session: Session, args: argparse.Namespace) -> int:
    if args.tenant not in session.app.policies:
        raise SettingsError(f"no tenant {args.tenant!r}; tenants:"
                            f" {', '.join(sorted(session.app.policies))}")
    try:
        key, secret = session.keys.create(args.tenant, args.roles, args.actor, args.name,
                                          args.expires)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if args.json:
        print(render.json_text({"key_id": key.key_id, "secret": secret}))
    else:
        views.key_created(key.key_id, secret)
    return 0


def cmd_keys_list(session: Session, args: argparse.Namespace) -> int:
    now = session.settings.clock()
    found = [key.as_dict(now) for key in session.keys.list(args.tenant)]
    if args.json:
        print(render.json_text(found))
    else:
        views.keys(found)
    return 0


def cmd_keys_revoke(session: Session, args: argparse.Namespace) -> int:
    key = session.keys.revoke(args.key_id)
    if args.json:
        print(render.json_text(key.as_dict(session.settings.clock())))
    else:
        render.note(f"key {key.key_id} revoked at {key.revoked_at}")
    return 0


def cmd_keys_pem(session: Session, args: argparse.Namespace) -> int:
    """No store: the secret (or its file) in, the PEM out."""
    try:
        sys.stdout.write(private_key_pem(read_secret(args.secret)).decode("ascii"))
    except (OSError, ValueError) as exc:
        render.error("error", f"{exc}; give a key's secret (tfk_…) or a file holding it")
        return 2
    return 0


def cmd_ticket(session: Session, args: argparse.Namespace) -> int:
    """Now: the aggregate from the event store; --as-of: folded from the timeline."""
    ticket, held = session.queries.ticket(args.ticket_id, args.as_of)
    views.held(args.ticket_id, held.versions)
    state = answers.ticket_state(ticket, args.as_of, session.queries.account(ticket))
    if args.json:
        views.json_out(state)
    else:
        render.pairs(f"ticket {args.ticket_id}", state)
    return 0


def cmd_timeline(session: Session, args: argparse.Namespace) -> int:
    """A page of the timeline read model (--json: {"events", "next"}, as the HTTP API),
    or with --all every event, streamed. `verify` compares these rows with the store."""
    queries = session.queries
    if not args.all:
        page, held = queries.timeline(args.ticket_id, args.after, args.limit)
        if args.json:
            views.json_out(page.as_dict())
        else:
            views.timeline_page(args.ticket_id, page, args.limit)
        views.held(args.ticket_id, held.versions)
        return 0
    for page in queries.timeline_pages(args.ticket_id, args.after, args.limit):
        if args.json:
            sys.stdout.write("".join(json.dumps(e, ensure_ascii=False) + "\n"
                                     for e in page.events))
            sys.stdout.flush()
        elif page.events:
            views.timeline(args.ticket_id, page.events)
    return 0


def cmd_verify(session: Session, args: argparse.Namespace) -> int:
    """Hash chains, positions and receipts of the event store, and the snapshots and
    timeline rows served in its place (ticketflow.verification); with --checkpoint, the
    store against a signed checkpoint of the audit log too (ticketflow.checkpoint_verification)."""
    if (args.checkpoint is None) != (args.public_key is None):
        raise SettingsError("--checkpoint and --public-key go together")
    logged = []
    if args.checkpoint is not None:
        text = _read_text(args.checkpoint)
        logged = [f.as_dict() for f in session.queries.audit(
            text, load_public_key(args.public_key))]
    found = session.queries.verify(args.ticket_id)
    if args.json:
        views.json_out(answers.verification(found, None if args.checkpoint is None
                                            else logged))
    else:
        views.findings(found)
        if args.checkpoint is not None:
            views.log_findings(logged)
    return 1 if found or logged else 0


def cmd_checkpoint(session: Session, args: argparse.Namespace) -> int:
    """Sign the audit log's current tree head (size, root, time, key id) with the
    Ed25519 key at TICKETFLOW_SIGNING_KEY (ticketflow.checkpoints)."""
    head = session.queries.checkpoint(_signing_key(session.settings))
    _write_text(args.output, head.text())
    if session.settings.kafka:
        topic, partition, offset = publish_checkpoint(
            session.settings.kafka_config(), head, session.settings.topic_prefix)
        render.note(f"published to {topic} (partition {partition}, offset {offset})")
    return 0


def cmd_bundle(session: Session, args: argparse.Namespace) -> int:
    """`bundle ID`: one ticket's events, inclusion proofs and a signed tree head;
    `bundle verify FILE --public-key PEM`: check one, with no database (ticketflow.bundles)."""
    if args.target[0] == "verify" and len(args.target) == 2:
        if args.public_key is None:
            raise SettingsError("bundle verify needs --public-key PEM")
        try:
            bundle = json.loads(_read_text(args.target[1]))
        except ValueError as exc:
            raise SettingsError(f"{args.target[1]}: not JSON ({exc})") from None
        problems = verify_bundle(bundle, load_public_key(args.public_key))
        if args.json:
            views.json_out({"ok": not problems, "problems": problems})
        else:
            views.bundle_problems(problems)
        return 1 if problems else 0
    if len(args.target) != 1:
        raise SettingsError("usage: bundle ID [-o FILE] | bundle verify FILE --public-key PEM")
    try:
        bundle = session.queries.bundle(args.target[0], _signing_key(session.settings))
    except BundleError as exc:
        render.error("error", str(exc))
        return 1
    _write_text(args.output, json.dumps(bundle, ensure_ascii=False, indent=1) + "\n")
    return 0


def _signing_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.signing_key is None:
        raise SettingsError(f"set {SIGNING_KEY_ENV} to an Ed25519 private key in PEM"
                            " (openssl genpkey -algorithm ed25519 -out key.pem)")
    return load_private_key(settings.signing_key)


def _read_text(name: str) -> str:
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{name}: cannot read it ({exc})") from None


def _write_text(name: str | None, text: str) -> None:
    if name is None:
        sys.stdout.write(text)
    else:
        Path(name).write_text(text, encoding="utf-8")


def cmd_sla(session: Session, args: argparse.Namespace) -> int:
    report = session.queries.sla(args.ticket_id, args.as_of, args.explain)
    if args.json:
        views.json_out(report)
    else:
        views.sla(report, args.explain)
    return 0


def cmd_report_sla(session: Session, args: argparse.Namespace) -> int:
    what_if = load_policy_file(args.policy) if args.policy else None
    zone = args.timezone
    result = session.queries.report_sla(args.since.at(zone), args.until.at(zone), args.as_of,
                                        what_if,
                                        by=args.by, zone=args.timezone, group=args.group)
    if args.json:
        views.json_out(result)
        return 0
    views.compliance(f"SLA compliance, clocks due {result['from']} – {result['to']},"
                     f" as of {result['as_of']}", result["rows"])
    views.tiers(f"tier goals, stints decided {result['from']} – {result['to']}, as of"
                f" {result['as_of']}", result["tiers"])
    if what_if is not None:
        views.compliance(f"… re-evaluated under {what_if.id} {what_if.version}"
                         f" ({args.policy})", result["what_if"]["rows"])
        views.tiers(f"… tier goals under {what_if.id} {what_if.version}",
                    result["what_if"]["tiers"])
    return 0


def cmd_report_volume(session: Session, args: argparse.Namespace) -> int:
    result = session.queries.report_volume(*_dates(args), args.by,
                                           args.timezone)
    if args.json:
        views.json_out(result)
        return 0
    views.rows(f"ticket volume by {args.by}", result["rows"],
               ("period", "tenant", "category", "channel", "priority", "created", "resolved",
                "closed", "backlog", "resolution_rate"))
    return 0


def cmd_report_satisfaction(session: Session, args: argparse.Namespace) -> int:
    result = session.queries.report_satisfaction(*_dates(args),
                                                 args.by, args.timezone)
    if args.json:
        views.json_out(result)
        return 0
    views.rows(f"satisfaction by {args.by}", result["satisfaction"],
               ("period", "tenant", "plan", "responses", "mean_score", "csat_percent",
                "nps_responses", "nps"))
    views.rows(f"self-service success by {args.by}", result["self_service"],
               ("period", "tenant", "sessions", "solved", "success_rate"))
    return 0


def cmd_report_times(session: Session, args: argparse.Namespace) -> int:
    zone = args.timezone
    result = session.queries.report_times(args.since.at(zone), args.until.at(zone), args.by,
                                          zone, group=args.group)
    if args.json:
        views.json_out(result)
    else:
        views.times("counted minutes to first response / resolution (n, mean, p50, p90)",
                    result["rows"])
        views.tiers("tier goals, stints decided in the window (or each period), as of its"
                    " end or now", result["tiers"])
    return 0


def cmd_report_quality(session: Session, args: argparse.Namespace) -> int:
    """Response quality (issue 19): managers' reviews of resolved tickets."""
    zone = args.timezone
    result = session.queries.report_quality(args.since.at(zone), args.until.at(zone), args.by,
                                            zone, group=args.group)
    if args.json:
        views.json_out(result)
    else:
        views.quality("response quality: each ticket's latest review", result["rows"],
                      args.group)
    return 0


def cmd_report_review(session: Session, args: argparse.Namespace) -> int:
    """SPEC §12: a quarter by month (`--quarter 2026Q4`), a year by quarter (`--year`)."""
    try:
        name, (since, until), by = ((args.quarter, quarter(args.quarter), "month")
                                    if args.quarter else (args.year, year(args.year), "quarter"))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    result = session.queries.review(name, since, until, by)
    if args.output:
        chart = Path(args.output) / f"review-{name}.svg"
        chart.parent.mkdir(parents=True, exist_ok=True)
        _write_text(str(chart), review_svg(result))
    if args.json:
        views.json_out(result)
    else:
        views.review(result)
        if args.output:
            render.note(f"chart: {Path(args.output) / f'review-{name}.svg'}")
    return 0


def cmd_report_topics(session: Session, args: argparse.Namespace) -> int:
    result = session.queries.report_topics(*_dates(args), args.by,
                                           args.timezone)
    if args.json:
        views.json_out(result)
        return 0
    period = ("period",) if args.by else ()
    views.rows("recurring ticket topics (candidate: no article covers it)",
               result["categories"], (*period, "tenant", "category", "subcategory",
                                      "tickets", "previous", "trend", "articles", "candidate"))
    views.rows("frequent words in ticket subjects", result["terms"],
               (*period, "tenant", "term", "tickets", "previous", "trend", "article",
                "candidate"))
    return 0


def cmd_report_articles(session: Session, args: argparse.Namespace) -> int:
    result = session.queries.report_articles(*_dates(args), args.by,
                                             args.timezone)
    if args.json:
        views.json_out(result)
        return 0
    views.rows("knowledge-base articles: effectiveness", result["rows"],
               (*(("period",) if args.by else ()), "tenant", "article_id", "title", "shown",
                "viewed", "deflections", "deflection_rate", "links", "resolved_links",
                "csat_responses", "csat_percent"))
    return 0


def cmd_suggest(session: Session, args: argparse.Namespace) -> int:
    """Up to 5 of the tenant's articles for a user's text (SPEC §11)."""
    if session.scope.tenant is None:
        raise SettingsError(f"name the tenant whose articles to search: --tenant T (or"
                            f" {TENANT_ENV})")
    result = session.queries.suggest(args.text)
    if args.json:
        views.json_out(result)
    else:
        views.rows("suggested articles", result["suggestions"], ("rank", "article_id", "title"))
    return 0


def cmd_parked(session: Session, args: argparse.Namespace) -> int:
    """List parked events (exit 1 if any); --retry applies them again first. Both
    confined to --tenant."""
    if args.retry:
        projector = session.read_models.projector
        applied, remaining = projector.retry_parked(session.scope.tenant)
        render.note(f"applied {applied} parked event(s); {remaining} still parked")
    parked = session.queries.parked()
    if args.json:
        views.json_out(parked)
    else:
        views.parked(parked)
    return 1 if parked else 0


def cmd_replay(session: Session, args: argparse.Namespace) -> int:
    with session.bar("replaying events into fresh read models") as progress:
        if args.from_start:
            applied = rebuild(session.app, session.engine, progress)
        else:
            applied = session.read_models.projector.catch_up(progress)
    if args.json:
        views.json_out({"applied": applied, "from_start": args.from_start})
    else:
        render.note(f"applied {applied} events to the read models")
    return 0


def cmd_tick(session: Session, args: argparse.Namespace) -> int:
    """One JSON line per fired command (breaches, automatic escalations, auto-close);
    exit 2 naming each ticket its policy version cannot serve (the others still fire)."""
    timers = Timers(session.app, tenant=session.scope.tenant)
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


def cmd_dead_letters(session: Session, args: argparse.Namespace) -> int:
    letters = session.queries.dead_letters()
    if args.json:
        views.json_out(letters)
    else:
        views.dead_letters(letters)
    return 0


def cmd_demo(session: Session, args: argparse.Namespace) -> int:
    """Apply a seeded workload for both tenants, then print the reports. A caller
    confined to one tenant (TICKETFLOW_TENANT) is refused: it would write every tenant's."""
    if session.scope.tenant:
        raise SettingsError(f"{TENANT_ENV}={session.scope.tenant} confines this caller to one"
                            " tenant, and the demo writes a workload for every tenant; run it"
                            f" without {TENANT_ENV}")
    result = run_demo(session.app, args.seed, args.tickets, DEFAULT_START, args.days,
                      progress=session.show_progress)
    reports = demo_reports(session.app, session.engine, result, progress=session.show_progress)
    start = result.start.date()
    name = f"{start.year}Q{(start.month - 1) // 3 + 1}"
    reports["review"] = session.queries.review(name, *quarter(name), "month", result.as_of)
    if args.json:
        views.json_out({"from": result.start.isoformat(), "as_of": result.as_of.isoformat(),
                        "outcomes": dict(result.statuses),
                        "rejections": dict(result.rejections), **reports})
    else:
        views.demo(result, reports)
    return 0


def cmd_serve(session: Session, args: argparse.Namespace) -> int:
    """serve: every role; worker ROLE: one. Stops on SIGINT / SIGTERM."""
    configure_logs()
    worker = worker_id(args.worker_id)
    set_worker(worker)
    roles = (args.role,) if getattr(args, "role", None) else ROLES
    http = None
    if getattr(args, "http", None):
        from ticketflow.http.server import Background  # noqa: PLC0415 - only when asked

        http = Background(session.settings, args.http_host, args.http)
    return serve(session.settings, roles, partitions=args.partitions, worker=worker,
                 metrics_port=args.metrics_port, beside=http)


def cmd_http(session: Session, args: argparse.Namespace) -> int:
    """The HTTP API in the foreground until SIGINT / SIGTERM (ticketflow.http)."""
    from ticketflow.http.server import run  # noqa: PLC0415 - the web stack, only here

    configure_logs()
    return run(session.settings, args.host, args.port, app=session.app)


def cmd_publish(session: Session, args: argparse.Namespace) -> int:
    """Validate and publish each line; print its message_id; exit 1 if any was invalid."""
    settings = session.settings
    invalid = False
    topics = Topics.named(settings.topic_prefix)
    key = args.key or settings.key
    try:
        client = CommandClient(settings.kafka or "", topics, tenant=session.scope.tenant,
                               key=key, **_options(settings))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"--key: {exc}; give a key's secret (tfk_…) or a file holding"
                            " it") from None
    with client, \
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
    config = settings.kafka_config()
    config.pop("bootstrap_servers")
    return config


def cmd_outcome(session: Session, args: argparse.Namespace) -> int:
    views.json_out(answers.outcome(session.queries.outcome(args.message_id)))
    return 0


def cmd_kafka(session: Session, args: argparse.Namespace) -> int:
    """`ticketflow kafka start|stop|status` (ticketflow.tools.kafka_broker): no store."""
    return int(args.func(args))


def cmd_policy(session: Session, args: argparse.Namespace) -> int:
    policy = load_policy_file(args.file)
    summary = {**policy.identity(), "plans": list(policy.plans),
               "calendars": list(policy.calendars)}
    if args.json:
        views.json_out(summary)
    else:
        render.pairs(f"{args.file}: valid", summary)
    return 0


# -- helpers ----------------------------------------------------------------------------


def _dates(args: argparse.Namespace) -> tuple[date, date]:
    """The dates (of --timezone) of a report counted by day."""
    return args.since.date_in(args.timezone), args.until.date_in(args.timezone)


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


def _open_input(name: str) -> IO[bytes]:
    if name == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)
    try:
        return open(name, "rb")
    except OSError as exc:
        raise SettingsError(f"cannot read {name}: {exc.strerror}") from exc


def _fail(args: argparse.Namespace, error: dict[str, str]) -> None:
    if getattr(args, "json", False):
        views.json_out({"error": error})
    else:
        render.error(error["code"], error["message"])


if __name__ == "__main__":
    raise SystemExit(main())
