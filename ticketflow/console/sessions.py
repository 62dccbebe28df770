"""The console's sign-in sessions: a table beside the keys, never the secret.

Signing in with a key's secret makes a session: a random id (256 bits) that goes to
the browser in an HttpOnly, SameSite=Strict cookie, and a row keyed by the SHA-256 of
that id holding the key's id, a CSRF token and when the session ends. The secret is
used once, to authenticate, and kept nowhere; a copy of the table holds no cookie
that works. Every request reads the row and the key's row again, so signing out, a
revoked key or an expired key ends the session at once, in every process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Engine, MetaData, String, Table, delete, insert, select

from ticketflow.clock import Clock
from ticketflow.ddl import create_missing
from ticketflow.keys import Key, Keys

#: How long a session lasts after sign-in (the engine's clock), whatever it does.
LIFETIME = timedelta(hours=8)

metadata = MetaData()
sessions_table = Table(
    "ticketflow_console_sessions", metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),  # ISO 8601, UTC
    Column("expires_at", String(40), nullable=False),
)


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its key (read again on every request) and CSRF token."""

    key: Key
    csrf: str

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, engine: Engine, keys: Keys, clock: Clock,
                 lifetime: timedelta = LIFETIME) -> None:
        self.engine, self.keys, self.clock, self.lifetime = engine, keys, clock, lifetime
        self._created = False

    def _ensure_table(self) -> None:
        if not self._created:
            create_missing(self.engine, metadata)
            self._created = True

    def open(self, secret: str) -> tuple[str, Session]:
        """Sign in: (the session id for the cookie, the session); Unauthenticated if the
        secret is no active key's."""
        key = self.keys.authenticate(secret)
        self._ensure_table()
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions_table).where(
                sessions_table.c.expires_at < now.isoformat()))  # sweep ended sessions
            conn.execute(insert(sessions_table).values(
                id_sha256=_digest(session_id), key_id=key.key_id, csrf=csrf,
                created_at=now.isoformat(), expires_at=(now + self.lifetime).isoformat()))
        return session_id, Session(key, csrf)

    def find(self, session_id: str | None) -> Session | None:
        """The live session of this cookie value, with its key still active; None
        otherwise (unknown, signed out, ended, or its key revoked or expired)."""
        if not session_id or len(session_id) > 100:
            return None
        self._ensure_table()
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions_table).where(
                sessions_table.c.id_sha256 == _digest(session_id))).mappings().first()
        now = self.clock()
        if row is None or datetime.fromisoformat(row["expires_at"]) <= now:
            return None
        key = self.keys.get(row["key_id"])
        if key is None or key.state(now) != "active":
            return None
        return Session(key, row["csrf"])

    def close(self, session_id: str | None) -> None:
        """Sign out: the session's row is deleted, so its cookie opens nothing."""
        if not session_id:
            return
        self._ensure_table()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions_table).where(
                sessions_table.c.id_sha256 == _digest(session_id)))
