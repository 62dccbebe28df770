"""Settings from the command line and the environment, and the database URL mapping."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_DB = "sqlite:///ticketflow.db"


class SettingsError(ValueError):
    """A setting is unusable; the message says what to change."""


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    kafka: str | None = None
    policies_dir: Path | None = None
    topic_prefix: str = ""

    @classmethod
    def from_env(cls, db: str | None = None, kafka: str | None = None) -> Settings:
        policies = os.environ.get("TICKETFLOW_POLICIES")
        return cls(
            db=db or os.environ.get("TICKETFLOW_DB") or DEFAULT_DB,
            kafka=kafka or os.environ.get("TICKETFLOW_KAFKA"),
            policies_dir=Path(policies) if policies else None,
            topic_prefix=os.environ.get("TICKETFLOW_TOPIC_PREFIX", ""),
        )


#: Environment variables passed to every kafka-python client, for real clusters:
#: TICKETFLOW_KAFKA_OPT_SECURITY_PROTOCOL=SASL_SSL → security_protocol="SASL_SSL", etc.
KAFKA_OPTION_PREFIX = "TICKETFLOW_KAFKA_OPT_"
_INTEGER_OPTIONS = {"request_timeout_ms", "max_poll_records", "session_timeout_ms",
                    "max_poll_interval_ms", "linger_ms", "batch_size"}


def kafka_client_config(bootstrap: str | None) -> dict[str, Any]:
    """kafka-python settings shared by every client: servers plus pass-through options."""
    if not bootstrap:
        raise SettingsError(
            "no Kafka given: pass --kafka HOST:PORT or set TICKETFLOW_KAFKA"
            " (start a local broker with `ticketflow kafka start`)"
        )
    config: dict[str, Any] = {"bootstrap_servers": bootstrap.split(",")}
    for name, value in os.environ.items():
        if name.startswith(KAFKA_OPTION_PREFIX):
            key = name.removeprefix(KAFKA_OPTION_PREFIX).lower()
            config[key] = int(value) if key in _INTEGER_OPTIONS else value
    return config


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
            "POSTGRES_CONNECT_TIMEOUT": "10",
        }
    raise SettingsError(
        f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://USER@HOST/DB"
    )


def instant(text: str) -> datetime:
    """ISO-8601 with a UTC offset ('Z' allowed); a bare date means 00:00 UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 instant") from None
    if value.tzinfo is None:
        if "T" in text or " " in text:
            raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. {text}Z")
        value = value.replace(tzinfo=UTC)
    return value
