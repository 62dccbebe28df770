"""Webhooks (SPEC §10): where a tenant's notifications are delivered, how a delivery is
signed, and the delivery log.

A webhook is a tenant's http(s) URL with a secret of its own (shown once, when it is
added) and, optionally, the rules it wants. Tables beside the events, like the keys:
`ticketflow_webhooks` (configuration), `ticketflow_deliveries` (one row per notification
and webhook: pending, delivered or dead, its attempts, when it is next due),
`ticketflow_delivery_attempts` (every attempt: when, the answer or the error) and
`ticketflow_webhook_position` (how far the delivery worker has read the log).

Signing, the scheme Stripe and GitHub use: the header
`Ticketflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
over the exact body bytes. A receiver recomputes it with its secret (`verify`), compares
in constant time, and refuses a timestamp further than its tolerance (default 5 min)
from its own clock, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from eventsourcing.persistence import Cipher
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    inspect,
    select,
    text,
    update,
)

from ticketflow.clock import Clock
from ticketflow.ddl import create_missing
from ticketflow.domain.errors import NotFound

SIGNATURE_HEADER = "Ticketflow-Signature"
NOTIFICATION_HEADER = "Ticketflow-Notification-Id"
WEBHOOK_HEADER = "Ticketflow-Webhook-Id"
#: A receiver refuses a signature whose timestamp is further than this from its clock.
TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
#: A secret sealed with the store's cipher, as the table keeps it (see `seal`).
SEALED_PREFIX = "sealed:v1:"
MAX_URL_CHARS = 2000
STATUSES = ("pending", "delivered", "dead")

metadata = MetaData()
webhooks_table = Table(
    "ticketflow_webhooks", metadata,
    Column("webhook_id", String(32), primary_key=True),
    Column("tenant", String(200), nullable=False, index=True),
    Column("url", Text, nullable=False),
    # HMAC needs it: kept (sealed with the store's cipher where it has one), never shown again
    Column("secret", Text, nullable=False),
    Column("rules", Text, nullable=False),  # comma-separated; empty: every rule
    Column("created_at", String(40), nullable=False),
    Column("removed_at", String(40)),
)
deliveries_table = Table(
    "ticketflow_deliveries", metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("webhook_id", String(32), primary_key=True),
    Column("tenant", String(200), nullable=False),
    Column("ticket_id", String(200), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("at", String(40), nullable=False),  # the notification's instant
    Column("position", Integer, nullable=False),  # its record in the log (to read it)
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(40)),  # UTC ISO-8601 (sorts as text)
    Column("last_error", Text),
    Column("delivered_at", String(40)),
)
attempts_table = Table(
    "ticketflow_delivery_attempts", metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("webhook_id", String(32), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("at", String(40), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
)
position_table = Table(
    "ticketflow_webhook_position", metadata,
    Column("name", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
)


class WebhookError(ValueError):
    """A webhook that cannot be registered (the message says why)."""


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    tenant: str
    url: str
    secret: str
    rules: tuple[str, ...]
    created_at: str
    removed_at: str | None

    def wants(self, rule: str) -> bool:
        return not self.rules or rule in self.rules

    def as_dict(self) -> dict[str, Any]:
        """What `webhooks list` shows: never the secret."""
        return {"webhook_id": self.webhook_id, "tenant": self.tenant, "url": self.url,
                "rules": list(self.rules), "created_at": self.created_at,
                "removed_at": self.removed_at}


def utc_text(at: datetime) -> str:
    """An instant as the delivery log keeps it: UTC, fixed width (compared as text)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host, or WebhookError."""
    if len(url) > MAX_URL_CHARS:
        raise WebhookError(f"a webhook URL is at most {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"{url[:200]!r} is not an http:// or https:// URL with a host")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise WebhookError("a webhook URL may not hold spaces or control characters")
    return url


class PrivateTarget(OSError):
    """A webhook's host is (or resolves to) an address that is not public."""


def public_address(address: str) -> bool:
    """Whether an IP address is a public unicast one: not loopback, private, link-local
    (cloud metadata at 169.254.169.254), shared, reserved, unspecified or multicast; an
    IPv4 address written as IPv6 (::ffff:a.b.c.d) is judged as itself."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_target(url: str, private_targets: bool = False) -> str:
    """`check_url`, and unless `private_targets` (an operator's
    TICKETFLOW_WEBHOOK_ALLOW_PRIVATE=1), a host that is not plainly internal: an IP
    address must be public, and `localhost` (or a name under it) is refused. A name is
    judged again, by the addresses it resolves to, at every delivery (`public_connection`):
    what it resolves to now says nothing of what it will resolve to then."""
    check_url(url)
    if private_targets:
        return url
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        public = public_address(host)
    except ValueError:  # a name, not an address
        public = not (host == "localhost" or host.endswith(".localhost"))
    if not public:
        raise WebhookError(f"{host} is not a public address: a webhook may not target the"
                           " engine's own host or network (an operator allows it with"
                           " TICKETFLOW_WEBHOOK_ALLOW_PRIVATE=1)")
    return url


def public_connection(address: tuple[str, int], timeout: Any = None,
                      source_address: Any = None) -> socket.socket:
    """`socket.create_connection` to a public address only: every address the host
    resolves to must be public (else PrivateTarget), and the connection goes to one of
    those very addresses (no second lookup that a rebinding name could answer otherwise)."""
    host, port = address
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in found:
        if not public_address(str(sockaddr[0])):
            raise PrivateTarget(f"{host} resolves to {sockaddr[0]}, not a public address"
                                " (an operator allows it with"
                                " TICKETFLOW_WEBHOOK_ALLOW_PRIVATE=1)")
    error: OSError = OSError(f"{host} resolves to no address")
    for *_, sockaddr in found:
        try:
            return socket.create_connection((str(sockaddr[0]), int(sockaddr[1])), timeout,
                                             source_address)
        except OSError as exc:
            error = exc
    raise error


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Ticketflow-Signature` header's value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float,
           tolerance: float = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: the header's HMAC matches the body and its timestamp is
    within `tolerance` seconds of the receiver's clock (`now`, unix seconds)."""
    fields = dict(part.partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).partition("v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class SecretKeyError(ValueError):
    """A webhook's sealed secret cannot be opened: no cipher key, or not the right one."""


def seal(cipher: Cipher | None, webhook_id: str, secret: str) -> str:
    """A webhook's secret as the table keeps it: with a cipher (the store's, from
    TICKETFLOW_CIPHER_KEY), `sealed:v1:` and base64 of its AES-GCM encryption of
    "<webhook id>:<secret>" (so a sealed secret copied onto another webhook's row does
    not open there); without one, the secret itself."""
    if cipher is None:
        return secret
    sealed = cipher.encrypt(f"{webhook_id}:{secret}".encode())
    return SEALED_PREFIX + base64.b64encode(sealed).decode("ascii")


def unseal(cipher: Cipher | None, webhook_id: str, stored: str) -> str:
    """The secret of a table row (`seal` undone). A secret kept in clear (a store
    without a key, or a webhook added before secrets were sealed) is used as it is."""
    if not stored.startswith(SEALED_PREFIX):
        return stored
    if cipher is None:
        raise SecretKeyError(f"webhook {webhook_id}'s secret is sealed with the store's key:"
                             " set TICKETFLOW_CIPHER_KEY")
    try:
        opened = cipher.decrypt(base64.b64decode(stored[len(SEALED_PREFIX):])).decode()
    except ValueError:  # StoreCipher's CipherKeyError is one too
        raise SecretKeyError(f"webhook {webhook_id}'s secret cannot be opened with"
                             " TICKETFLOW_CIPHER_KEY (not the store's key, or the row was"
                             " changed)") from None
    owner, _, secret = opened.partition(":")
    if owner != webhook_id:
        raise SecretKeyError(f"webhook {webhook_id}'s row holds another webhook's secret")
    return secret


def ensure_tables(engine: Engine) -> None:
    """The webhooks' tables, made if missing (one process at a time: ticketflow.ddl)."""
    create_missing(engine, metadata, _widen_secret)


def _widen_secret(conn: Connection) -> None:
    """A table made before secrets were sealed held them in VARCHAR(80), too short for a
    sealed one on PostgreSQL (SQLite does not enforce lengths): make it text."""
    if conn.dialect.name != "postgresql":
        return
    column = next(c for c in inspect(conn).get_columns("ticketflow_webhooks")
                  if c["name"] == "secret")
    if getattr(column["type"], "length", None) is not None:
        conn.execute(text("ALTER TABLE ticketflow_webhooks ALTER COLUMN secret TYPE text"))


class Webhooks:
    """The webhooks of one store, and their delivery log. `cipher`: the store's
    (`app.event_log.mapper.cipher`, from TICKETFLOW_CIPHER_KEY), which seals the secrets
    in the table; None keeps them in clear."""

    def __init__(self, engine: Engine, clock: Clock, cipher: Cipher | None = None, *,
                 private_targets: bool = False) -> None:
        """`private_targets`: URLs on loopback, private or link-local addresses may be
        registered (TICKETFLOW_WEBHOOK_ALLOW_PRIVATE; `check_target`)."""
        self.engine, self.clock, self.cipher = engine, clock, cipher
        self.private_targets = private_targets
        ensure_tables(engine)

    def add(self, tenant: str, url: str, rules: Iterable[str] = ()) -> tuple[Webhook, str]:
        """Register a URL; returns the webhook and its secret (shown once)."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        url = check_target(url, self.private_targets)
        webhook = Webhook("wh" + secrets.token_hex(8), tenant, url, secret,
                          tuple(dict.fromkeys(rules)), self.clock().isoformat(), None)
        with self.engine.begin() as conn:
            conn.execute(webhooks_table.insert().values(
                webhook_id=webhook.webhook_id, tenant=tenant, url=webhook.url,
                secret=seal(self.cipher, webhook.webhook_id, secret),
                rules=",".join(webhook.rules), created_at=webhook.created_at))
        return webhook, secret

    def registered(self, tenant: str | None = None, *, removed: bool = False
                   ) -> list[Webhook]:
        query = select(webhooks_table).order_by(webhooks_table.c.created_at,
                                                webhooks_table.c.webhook_id)
        if tenant is not None:
            query = query.where(webhooks_table.c.tenant == tenant)
        if not removed:
            query = query.where(webhooks_table.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return [_webhook(row, self.cipher) for row in conn.execute(query).mappings()]

    def get(self, webhook_id: str, tenant: str | None = None) -> Webhook:
        """A registered webhook (of `tenant`): another tenant's is not found, like a
        missing or removed one."""
        found = [w for w in self.registered(tenant) if w.webhook_id == webhook_id]
        if not found:
            raise NotFound(f"webhook {webhook_id} not found")
        return found[0]

    def remove(self, webhook_id: str, tenant: str | None = None) -> Webhook:
        """Stop delivering to it (its log stays); another tenant's is not found."""
        found = [w for w in self.registered(tenant) if w.webhook_id == webhook_id]
        if not found:
            raise NotFound(f"webhook {webhook_id} not found")
        with self.engine.begin() as conn:
            conn.execute(update(webhooks_table)
                         .where(webhooks_table.c.webhook_id == webhook_id)
                         .values(removed_at=self.clock().isoformat()))
            conn.execute(update(deliveries_table)
                         .where(and_(deliveries_table.c.webhook_id == webhook_id,
                                     deliveries_table.c.status == "pending"))
                         .values(status="dead", next_attempt_at=None,
                                 last_error="the webhook was removed"))
        return found[0]

    def deliveries(self, tenant: str | None = None, status: str | None = None,
                   limit: int = 1000, webhook_id: str | None = None) -> list[dict[str, Any]]:
        """The delivery log (or one webhook's), newest notifications first."""
        query = select(deliveries_table).order_by(deliveries_table.c.at.desc(),
                                                  deliveries_table.c.notification_id)
        if tenant is not None:
            query = query.where(deliveries_table.c.tenant == tenant)
        if status is not None:
            query = query.where(deliveries_table.c.status == status)
        if webhook_id is not None:
            query = query.where(deliveries_table.c.webhook_id == webhook_id)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query.limit(limit)).mappings()]

    def attempts(self, notification_id: str, webhook_id: str) -> list[dict[str, Any]]:
        query = select(attempts_table).where(and_(
            attempts_table.c.notification_id == notification_id,
            attempts_table.c.webhook_id == webhook_id)).order_by(attempts_table.c.attempt)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def resend(self, notification_id: str, webhook_id: str, tenant: str | None = None) -> None:
        """Deliver a dead (or delivered) notification again, from the next step on."""
        where = and_(deliveries_table.c.notification_id == notification_id,
                     deliveries_table.c.webhook_id == webhook_id)
        if tenant is not None:
            where = and_(where, deliveries_table.c.tenant == tenant)
        live = select(webhooks_table.c.webhook_id).where(
            and_(webhooks_table.c.webhook_id == webhook_id, webhooks_table.c.removed_at.is_(None)))
        if tenant is not None:  # another tenant's webhook is not found, like a missing one
            live = live.where(webhooks_table.c.tenant == tenant)
        with self.engine.begin() as conn:
            if conn.execute(live).first() is None:
                raise NotFound(f"webhook {webhook_id} not found")
            done = conn.execute(update(deliveries_table).where(where).values(
                status="pending", attempts=0, next_attempt_at=utc_text(self.clock())))
        if done.rowcount == 0:
            raise NotFound(f"no delivery of notification {notification_id} to {webhook_id}")

    def outcomes(self, tenant: str | None = None) -> dict[str, dict[str, int]]:
        """Deliveries by notification id: how many webhooks are at each status."""
        query = select(deliveries_table.c.notification_id, deliveries_table.c.status,
                       func.count()).group_by(deliveries_table.c.notification_id,
                                              deliveries_table.c.status)
        if tenant is not None:
            query = query.where(deliveries_table.c.tenant == tenant)
        found: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for notification, status, count in conn.execute(query):
                found.setdefault(notification, {})[status] = count
        return found


def _webhook(row: Any, cipher: Cipher | None) -> Webhook:
    rules = tuple(rule for rule in row["rules"].split(",") if rule)
    return Webhook(row["webhook_id"], row["tenant"], row["url"],
                   unseal(cipher, row["webhook_id"], row["secret"]), rules,
                   row["created_at"], row["removed_at"])


def notification_report(documents: Iterable[dict[str, Any]], outcomes: dict[str, dict[str, int]],
                        start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Notifications whose instant is in [start, end), by tenant × rule × channel: how
    many, and their webhook deliveries by outcome (delivered, pending, dead); a
    notification no webhook wanted counts under `undelivered`."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for document in documents:
        at = datetime.fromisoformat(document["at"])
        if not start <= at < end:
            continue
        key = (document["tenant"], document["rule"], document["channel"])
        row = rows.setdefault(key, {"tenant": key[0], "rule": key[1], "channel": key[2],
                                    "notifications": 0, "delivered": 0, "pending": 0,
                                    "dead": 0, "undelivered": 0})
        row["notifications"] += 1
        found = outcomes.get(document["notification_id"], {})
        for status in STATUSES:
            row[status] += found.get(status, 0)
        row["undelivered"] += 0 if found else 1
    return [rows[key] for key in sorted(rows)]
