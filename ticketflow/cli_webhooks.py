"""`ticketflow webhooks …` and `ticketflow report notifications` (SPEC §10): register
where a tenant's notifications go, read the delivery log, re-send a dead letter, count
notifications by rule and delivery outcome. Handlers take the command line's session."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ticketflow import cli_views as views
from ticketflow import render
from ticketflow.settings import TENANT_ENV, SettingsError
from ticketflow.webhooks import STATUSES, WebhookError, Webhooks

if TYPE_CHECKING:
    from ticketflow.cli_session import Session


def add_webhook_commands(sub: Any, common: argparse.ArgumentParser,
                         scope: argparse.ArgumentParser) -> None:
    hooks = sub.add_parser("webhooks", help="where notifications are delivered, and the"
                           " delivery log").add_subparsers(title="webhooks commands",
                                                           metavar="ACTION", required=True)
    cmd = hooks.add_parser("add", parents=[common, scope],
                           help="register an http(s) URL for a tenant's notifications; its"
                           " signing secret is printed once")
    cmd.add_argument("url")
    cmd.add_argument("--rules", type=lambda text: [r for r in text.split(",") if r],
                     default=[], help="only these rules' notifications (default: every rule)")
    cmd.set_defaults(handler=cmd_webhooks_add)
    cmd = hooks.add_parser("list", parents=[common, scope], help="the webhooks (no secret)")
    cmd.add_argument("--removed", action="store_true", help="also the removed ones")
    cmd.set_defaults(handler=cmd_webhooks_list)
    cmd = hooks.add_parser("remove", parents=[common, scope],
                           help="stop delivering to a webhook (its log stays)")
    cmd.add_argument("webhook_id")
    cmd.set_defaults(handler=cmd_webhooks_remove)
    cmd = hooks.add_parser("deliveries", parents=[common, scope],
                           help="the delivery log, newest first")
    cmd.add_argument("--status", choices=STATUSES, help="only these (dead: the dead letters)")
    cmd.add_argument("--limit", type=int, default=1000)
    cmd.set_defaults(handler=cmd_webhooks_deliveries)
    cmd = hooks.add_parser("resend", parents=[common, scope],
                           help="deliver a notification to a webhook again (a dead letter)")
    cmd.add_argument("notification_id")
    cmd.add_argument("webhook_id")
    cmd.set_defaults(handler=cmd_webhooks_resend)


def add_notification_report(kinds: Any, parents: list[argparse.ArgumentParser]) -> None:
    cmd = kinds.add_parser("notifications", parents=parents,
                           help="notifications by tenant × rule × channel, and their webhook"
                           " deliveries by outcome")
    cmd.set_defaults(handler=cmd_report_notifications)


def _webhooks(session: Session) -> Webhooks:
    return Webhooks(session.engine, session.settings.clock, session.app.event_log.mapper.cipher,
                    private_targets=session.settings.webhook_private_targets)


def cmd_webhooks_add(session: Session, args: argparse.Namespace) -> int:
    tenant = session.scope.tenant
    policies = session.app.policies
    if tenant is None:
        raise SettingsError(f"name the webhook's tenant: --tenant T (or {TENANT_ENV})")
    unknown = sorted(set(args.rules) - set(policies[tenant].notifications.rules))
    if unknown:
        raise SettingsError(f"no rule {', '.join(unknown)} in {tenant}'s policy; rules:"
                            f" {', '.join(sorted(policies[tenant].notifications.rules))}")
    try:
        webhook, secret = _webhooks(session).add(tenant, args.url, args.rules)
    except WebhookError as exc:
        raise SettingsError(str(exc)) from None
    if args.json:
        print(render.json_text({**webhook.as_dict(), "secret": secret}))
    else:
        render.pairs("webhook added", {"webhook id": webhook.webhook_id, "url": webhook.url,
                                       "secret": secret})
        render.note("The secret is shown this once: keep it now. Every delivery carries"
                    " `Ticketflow-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of"
                    " \"<t>.<body>\">` made with it (docs/notifications.md).")
    return 0


def cmd_webhooks_list(session: Session, args: argparse.Namespace) -> int:
    found = [w.as_dict() for w in _webhooks(session).registered(session.scope.tenant,
                                                           removed=args.removed)]
    if args.json:
        print(render.json_text(found))
    else:
        views.rows("webhooks", [{**w, "rules": ",".join(w["rules"]) or "(all)"} for w in found],
                   ("webhook_id", "tenant", "url", "rules", "created_at", "removed_at"))
    return 0


def cmd_webhooks_remove(session: Session, args: argparse.Namespace) -> int:
    webhook = _webhooks(session).remove(args.webhook_id, session.scope.tenant)
    if args.json:
        print(render.json_text(webhook.as_dict()))
    else:
        render.note(f"webhook {webhook.webhook_id} removed; its pending deliveries are dead")
    return 0


def cmd_webhooks_deliveries(session: Session, args: argparse.Namespace) -> int:
    found = _webhooks(session).deliveries(session.scope.tenant, args.status, args.limit)
    if args.json:
        print(render.json_text(found))
    else:
        views.rows("deliveries", found, ("at", "tenant", "ticket_id", "rule", "webhook_id",
                                         "status", "attempts", "last_error", "notification_id"))
    return 0


def cmd_webhooks_resend(session: Session, args: argparse.Namespace) -> int:
    _webhooks(session).resend(args.notification_id, args.webhook_id, session.scope.tenant)
    if not args.json:
        render.note(f"notification {args.notification_id} is due to {args.webhook_id} again")
    return 0


def cmd_report_notifications(session: Session, args: argparse.Namespace) -> int:
    zone = args.timezone
    result = session.queries.report_notifications(args.since.at(zone), args.until.at(zone))
    if args.json:
        views.json_out(result)
    else:
        views.rows(f"notifications {result['from']} – {result['to']}", result["rows"],
                   ("tenant", "rule", "channel", "notifications", "delivered", "pending",
                    "dead", "undelivered"))
    return 0
