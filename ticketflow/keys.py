"""Keys: who is speaking, and what they may say (SPEC §8).

A key belongs to one tenant and bounds every command sent with it: the command's
tenant must be the key's, its `actor.role` one of the key's roles, and its `actor.id`
the key's actor where one is set; anything else is `forbidden`. Reads with a key see
its tenant only.

The secret is `tfk_<key id>_<seed>`, the seed 32 random bytes (base64url). It is an
Ed25519 private key: the store keeps only its public key, which is both the secret's
hash (a one-way function of it, computed by `cryptography`) and what checks a signed
Kafka message (`sign`, `Keys.verified`) — so the database never holds anything that
can speak for a key. A bearer secret is checked by deriving its public key again and
comparing in constant time; the key's row is read on every check, so a revocation or
an expiry holds at once in every process.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    RowMapping,
    String,
    Table,
    insert,
    select,
    update,
)

from ticketflow.clock import Clock
from ticketflow.ddl import create_missing
from ticketflow.domain.errors import Forbidden, NotFound, Unauthenticated
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.timers import SYSTEM_ACTOR
from ticketflow.logs import event
from ticketflow.queries import Scope
from ticketflow.schemas.commands import CommandBase

log = logging.getLogger(__name__)

PREFIX = "tfk_"
#: Kafka headers of a signed command (docs/kafka.md, "Signed commands").
KEY_ID_HEADER = "ticketflow-key-id"
SIGNATURE_HEADER = "ticketflow-signature"
SEED_BYTES = 32
MAX_SECRET_CHARS = 128
MAX_NAME_CHARS = 200

metadata = MetaData()
keys_table = Table(
    "ticketflow_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("roles", String(64), nullable=False),  # comma-separated
    Column("actor", String(128)),
    Column("name", String(MAX_NAME_CHARS), nullable=False),
    Column("public_key", String(64), nullable=False),  # hex of the raw Ed25519 key
    Column("created_at", String(40), nullable=False),  # ISO 8601, UTC
    Column("expires_at", String(40)),
    Column("revoked_at", String(40)),
)


@dataclass(frozen=True)
class Key:
    """A key as stored: never its secret."""

    key_id: str
    tenant: str
    roles: tuple[str, ...]
    actor: str | None
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    public_key: bytes

    def admit(self, command: CommandBase) -> None:
        """Raise Forbidden unless the command is one this key may send."""
        if command.tenant != self.tenant:
            raise Forbidden(f"key {self.key_id} is for tenant {self.tenant}; it cannot"
                            f" send commands for another tenant")
        if command.actor.role not in self.roles:
            raise Forbidden(f"key {self.key_id} may act as {', '.join(self.roles)};"
                            f" not as {command.actor.role}")
        if self.actor is not None and command.actor.id != self.actor:
            raise Forbidden(f"key {self.key_id} speaks for actor {self.actor} only")

    @property
    def bound_tenant(self) -> str:
        """The tenant a rejection of a command sent with this key is kept under."""
        return self.tenant

    def refusal(self) -> Unauthenticated | None:
        return None

    def scope(self) -> Scope:
        return Scope(self.tenant)

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def as_dict(self, now: datetime) -> dict[str, object]:
        return {"key_id": self.key_id, "tenant": self.tenant, "roles": list(self.roles),
                "actor": self.actor, "name": self.name, "state": self.state(now),
                "created_at": self.created_at.isoformat(),
                "expires_at": _iso(self.expires_at), "revoked_at": _iso(self.revoked_at)}


@dataclass(frozen=True)
class Refused:
    """Bounds of a message whose sender could not be authenticated: it is rejected
    with `rejection` (kept by its digest, under no tenant: it used up no id)."""

    rejection: Unauthenticated
    bound_tenant: None = None

    def refusal(self) -> Unauthenticated | None:
        return self.rejection

    def admit(self, command: CommandBase) -> None:
        raise self.rejection


#: What `TicketingApp.apply` may be given as a message's bounds: None is trusted.
Bounds = Key | Refused


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_secret(secret: str) -> tuple[str, Ed25519PrivateKey]:
    """(key id, private key) of a secret; ValueError if it is not one."""
    if len(secret) > MAX_SECRET_CHARS or not secret.startswith(PREFIX):
        raise ValueError("not a ticketflow key secret")
    key_id, _, seed = secret[len(PREFIX):].partition("_")
    try:
        raw = _unb64(seed)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a ticketflow key secret") from exc
    if not key_id.isalnum() or len(raw) != SEED_BYTES:
        raise ValueError("not a ticketflow key secret")
    return key_id, Ed25519PrivateKey.from_private_bytes(raw)


def read_secret(secret_or_file: str) -> str:
    """A secret given as itself or as a file holding it (first line)."""
    if secret_or_file.startswith(PREFIX):
        return secret_or_file
    lines = Path(secret_or_file).read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines else ""


def _public_bytes(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def sign(secret: str, body: bytes) -> list[tuple[str, bytes]]:
    """The Kafka headers that sign `body` (the message value, exactly) with a key."""
    key_id, private = parse_secret(secret)
    signature = base64.b64encode(private.sign(body))
    return [(KEY_ID_HEADER, key_id.encode("ascii")), (SIGNATURE_HEADER, signature)]


def private_key_pem(secret: str) -> bytes:
    """The secret as a PKCS#8 PEM private key (for `openssl pkeyutl -sign`)."""
    _, private = parse_secret(secret)
    return private.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


class Keys:
    """The keys of one store (a table beside its events)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine, self.clock = engine, clock
        self._created = False

    def _ensure_table(self) -> None:
        if not self._created:
            create_missing(self.engine, metadata)  # one process at a time
            self._created = True

    def create(self, tenant: str, roles: Iterable[str], actor: str | None = None,
               name: str = "", expires_at: datetime | None = None) -> tuple[Key, str]:
        """Issue a key; returns it and its secret (shown once, never stored)."""
        roles = tuple(dict.fromkeys(roles))
        unknown = [r for r in roles if r not in set(Role)]
        if not roles or unknown:
            raise ValueError(f"roles must be among {', '.join(Role)}; got"
                             f" {', '.join(unknown) or 'none'}")
        if actor == SYSTEM_ACTOR:
            raise ValueError(f"the actor {SYSTEM_ACTOR} is the engine's own timer's")
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"a key's name is at most {MAX_NAME_CHARS} characters")
        now = self.clock()
        if expires_at is not None and expires_at <= now:
            raise ValueError("--expires is not in the future")
        self._ensure_table()
        seed = secrets.token_bytes(SEED_BYTES)
        key_id = "k" + secrets.token_hex(8)
        public = _public_bytes(Ed25519PrivateKey.from_private_bytes(seed))
        key = Key(key_id, tenant, roles, actor, name, now, expires_at, None, public)
        with self.engine.begin() as connection:
            connection.execute(insert(keys_table).values(
                key_id=key_id, tenant=tenant, roles=",".join(roles), actor=actor, name=name,
                public_key=public.hex(), created_at=now.isoformat(),
                expires_at=_iso(expires_at), revoked_at=None))
        event(log, "key_created", key_id=key_id, tenant=tenant, roles=list(roles))
        return key, f"{PREFIX}{key_id}_{_b64(seed)}"

    def list(self, tenant: str | None = None) -> list[Key]:
        self._ensure_table()
        query = select(keys_table).order_by(keys_table.c.created_at, keys_table.c.key_id)
        if tenant is not None:
            query = query.where(keys_table.c.tenant == tenant)
        with self.engine.connect() as connection:
            return [_key(row) for row in connection.execute(query).mappings()]

    def get(self, key_id: str) -> Key | None:
        self._ensure_table()
        with self.engine.connect() as connection:
            row = connection.execute(select(keys_table).where(
                keys_table.c.key_id == key_id)).mappings().first()
        return _key(row) if row is not None else None

    def revoke(self, key_id: str) -> Key:
        """Revoke a key from now on; revoking it again changes nothing."""
        key = self.get(key_id)
        if key is None:
            raise NotFound(f"no key {key_id}; `ticketflow keys list` shows them")
        if key.revoked_at is None:
            now = self.clock()
            with self.engine.begin() as connection:
                connection.execute(update(keys_table).where(
                    keys_table.c.key_id == key_id, keys_table.c.revoked_at.is_(None),
                ).values(revoked_at=now.isoformat()))
            event(log, "key_revoked", key_id=key_id, tenant=key.tenant)
        return self.get(key_id) or key

    def authenticate(self, secret: str | None) -> Key:
        """The active key whose secret this is; Unauthenticated otherwise."""
        if not secret:
            raise Unauthenticated("no key: send one (Authorization: Bearer <secret>)")
        try:
            key_id, private = parse_secret(secret)
        except ValueError:
            raise Unauthenticated("not a valid key") from None
        key = self.get(key_id)
        if key is None or not hmac.compare_digest(_public_bytes(private), key.public_key):
            raise Unauthenticated("not a valid key")
        return self._active(key)

    def verified(self, headers: Sequence[tuple[str, bytes]] | None, body: bytes,
                 read: dict[str, Key | None] | None = None) -> Key:
        """The active key that signed this message (its Kafka headers); Unauthenticated
        if it is unsigned, badly signed, or its key is unknown, revoked or expired.
        `read`: keys already read for this batch of messages (each key's row is read
        once a batch, not once a message)."""
        found = dict(headers or ())
        key_id, signature = found.get(KEY_ID_HEADER), found.get(SIGNATURE_HEADER)
        if key_id is None or signature is None:
            raise Unauthenticated(f"unsigned: this engine requires each command signed with"
                                  f" a key (headers {KEY_ID_HEADER}, {SIGNATURE_HEADER})")
        try:
            key = self._read(key_id.decode("ascii"), read) if len(key_id) <= 32 else None
            raw_signature = base64.b64decode(signature, validate=True)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            raise Unauthenticated("badly signed: unreadable key id or signature") from None
        if key is None:
            raise Unauthenticated("signed with an unknown key")
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw_signature, body)
        except InvalidSignature:
            raise Unauthenticated(f"badly signed: the signature does not match the message"
                                  f" and key {key.key_id}") from None
        return self._active(key)

    def _read(self, key_id: str, read: dict[str, Key | None] | None) -> Key | None:
        if read is None:
            return self.get(key_id)
        if key_id not in read:
            read[key_id] = self.get(key_id)
        return read[key_id]

    def _active(self, key: Key) -> Key:
        state = key.state(self.clock())
        if state != "active":
            raise Unauthenticated(f"key {key.key_id} is {state}")
        return key


def _key(row: RowMapping) -> Key:
    get = row.__getitem__

    def instant(name: str) -> datetime | None:
        value = get(name)
        return datetime.fromisoformat(value) if value else None

    return Key(key_id=get("key_id"), tenant=get("tenant"), roles=tuple(get("roles").split(",")),
               actor=get("actor"), name=get("name"),
               created_at=datetime.fromisoformat(get("created_at")),
               expires_at=instant("expires_at"), revoked_at=instant("revoked_at"),
               public_key=bytes.fromhex(get("public_key")))
