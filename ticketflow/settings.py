"""Settings from the command line and the environment, and the database URL mapping."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_DB = "sqlite:///ticketflow.db"


class SettingsError(ValueError):
    """A setting is unusable; the message says what to change."""


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    kafka: str | None = None
    policies_dir: Path | None = None

    @classmethod
    def from_env(cls, db: str | None = None, kafka: str | None = None) -> Settings:
        policies = os.environ.get("TICKETFLOW_POLICIES")
        return cls(
            db=db or os.environ.get("TICKETFLOW_DB") or DEFAULT_DB,
            kafka=kafka or os.environ.get("TICKETFLOW_KAFKA"),
            policies_dir=Path(policies) if policies else None,
        )


def eventstore_env(url: str) -> dict[str, str]:
    """Map `sqlite:///path` or `postgresql://user:pw@host:port/db` to eventsourcing's env."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise SettingsError(f"{url!r}: name a file, e.g. sqlite:///ticketflow.db")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30"}
    if scheme in {"postgres", "postgresql"}:
        if not parts.path.strip("/"):
            raise SettingsError(f"{url!r}: name a database, e.g. postgresql://host/ticketflow")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.strip("/")),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "4",
        }
    raise SettingsError(
        f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://USER@HOST/DB"
    )
