"""Settings from the command line and the environment, and the database URL mapping."""

from __future__ import annotations

import argparse
import base64
import binascii
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from ticketflow.clock import DEFAULT_MAX_SKEW, ClockSettingError, SystemClock
from ticketflow.clock import ENV as CLOCK_ENV

DEFAULT_DB = "sqlite:///ticketflow.db"
#: eventsourcing's SQLite factory, its connections keeping their compiled statements
#: (ticketflow.sqlite_store; named, not imported: the settings load before the store).
SQLITE_FACTORY = "ticketflow.sqlite_store:StatementCachingFactory"


class SettingsError(ValueError):
    """A setting is unusable; the message says what to change."""


def clock_from_env() -> SystemClock:
    """The clock TICKETFLOW_CLOCK names (the system clock when unset)."""
    try:
        return SystemClock.parse(os.environ.get(CLOCK_ENV))
    except ClockSettingError as exc:
        raise SettingsError(str(exc)) from None


MAX_SKEW_ENV = "TICKETFLOW_MAX_CLOCK_SKEW"


def max_skew_from_env() -> timedelta:
    """TICKETFLOW_MAX_CLOCK_SKEW: a duration such as `5m`, `90s`, `1h` (default 5 min)."""
    text = os.environ.get(MAX_SKEW_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_SKEW
    try:
        skew = SystemClock.parse("+" + text.lstrip("+")).offset
    except ClockSettingError:
        raise SettingsError(f"{MAX_SKEW_ENV}={text!r} is not a duration: write it like"
                            " '5m', '90s' or '1h'") from None
    return skew


#: Per-key request limits of the HTTP API (`limits` notation: "50/second",
#: "50/second;2000/hour"; "none" turns them off).
RATE_LIMIT_ENV = "TICKETFLOW_RATE_LIMIT"
DEFAULT_RATE_LIMIT = "50/second"


def rate_limit_from_env() -> str:
    return os.environ.get(RATE_LIMIT_ENV, "").strip() or DEFAULT_RATE_LIMIT


class Secret(str):
    """A password: itself to whoever uses it, hidden from repr, str() of a container, and
    so from logs (kafka-python logs its admin client's whole configuration)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<hidden>'"


#: Who ticketflow is on the broker (docs/security.md, "SASL and ACLs").
SECURITY_PROTOCOL_ENV = "TICKETFLOW_KAFKA_SECURITY_PROTOCOL"
SASL_MECHANISM_ENV = "TICKETFLOW_KAFKA_SASL_MECHANISM"
SASL_USERNAME_ENV = "TICKETFLOW_KAFKA_SASL_USERNAME"
SASL_PASSWORD_ENV = "TICKETFLOW_KAFKA_SASL_PASSWORD"
SASL_PASSWORD_FILE_ENV = "TICKETFLOW_KAFKA_SASL_PASSWORD_FILE"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaLogin:
    """A SASL login to the broker: its protocol, mechanism, username and password (never
    shown: `repr` hides it, and the option handed to kafka-python is a `Secret`)."""

    username: str
    password: str = field(repr=False)
    mechanism: str = "PLAIN"
    security_protocol: str = "SASL_PLAINTEXT"

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS[2:]:
            raise SettingsError(f"{SECURITY_PROTOCOL_ENV}={self.security_protocol!r}: a SASL"
                                f" login needs {' or '.join(SECURITY_PROTOCOLS[2:])}")
        if self.mechanism not in SASL_MECHANISMS:
            raise SettingsError(f"{SASL_MECHANISM_ENV}={self.mechanism!r}: use one of"
                                f" {', '.join(SASL_MECHANISMS)}")
        if not self.username or not self.password:
            raise SettingsError(f"a SASL login needs both {SASL_USERNAME_ENV} and a password"
                                f" ({SASL_PASSWORD_ENV} or {SASL_PASSWORD_FILE_ENV})")

    def options(self) -> dict[str, Any]:
        """The kafka-python options of this login."""
        return {"security_protocol": self.security_protocol, "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": Secret(self.password)}


def kafka_login_from_env() -> KafkaLogin | None:
    """TICKETFLOW_KAFKA_SASL_USERNAME with TICKETFLOW_KAFKA_SASL_PASSWORD (or _FILE, a
    file holding it), TICKETFLOW_KAFKA_SASL_MECHANISM (default PLAIN) and
    TICKETFLOW_KAFKA_SECURITY_PROTOCOL (default SASL_PLAINTEXT); none: no login."""
    username = os.environ.get(SASL_USERNAME_ENV, "").strip()
    password = os.environ.get(SASL_PASSWORD_ENV, "")
    password_file = os.environ.get(SASL_PASSWORD_FILE_ENV, "").strip()
    if password and password_file:
        raise SettingsError(f"set {SASL_PASSWORD_ENV} or {SASL_PASSWORD_FILE_ENV}, not both")
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{SASL_PASSWORD_FILE_ENV}: cannot read {password_file}:"
                                f" {exc.strerror}") from None
    if not username and not password:
        return None
    return KafkaLogin(username, password,
                      mechanism=os.environ.get(SASL_MECHANISM_ENV, "").strip() or "PLAIN",
                      security_protocol=(os.environ.get(SECURITY_PROTOCOL_ENV, "").strip()
                                         or "SASL_PLAINTEXT"))


REQUIRE_KEYS_ENV = "TICKETFLOW_REQUIRE_KEYS"


def require_keys_from_env() -> bool:
    """TICKETFLOW_REQUIRE_KEYS: 1/true/yes/on (or 0/false/no/off; unset: off)."""
    text = os.environ.get(REQUIRE_KEYS_ENV, "").strip().lower()
    if not text:
        return False
    flag = _FLAGS.get(text)
    if flag is None:
        raise SettingsError(f"{REQUIRE_KEYS_ENV}={text!r}: write 1 (commands from Kafka"
                            " must be signed with a key) or 0")
    return flag


#: An operator's leave for webhooks on loopback, private or link-local addresses (SSRF).
WEBHOOK_PRIVATE_ENV = "TICKETFLOW_WEBHOOK_ALLOW_PRIVATE"


def webhook_private_targets_from_env() -> bool:
    """TICKETFLOW_WEBHOOK_ALLOW_PRIVATE: 1/true/yes/on (or 0/false/no/off; unset: off)."""
    text = os.environ.get(WEBHOOK_PRIVATE_ENV, "").strip().lower()
    if not text:
        return False
    flag = _FLAGS.get(text)
    if flag is None:
        raise SettingsError(f"{WEBHOOK_PRIVATE_ENV}={text!r}: write 1 (webhooks may target"
                            " loopback, private and link-local addresses) or 0")
    return flag


#: A key's secret (tfk_…), or a file holding it: what `apply` and `publish` use when
#: given no --key (SPEC §8).
KEY_ENV = "TICKETFLOW_KEY"
#: The file of the Ed25519 private key (PEM) that signs checkpoints and bundles.
SIGNING_KEY_ENV = "TICKETFLOW_SIGNING_KEY"


def key_from_env() -> str | None:
    return os.environ.get(KEY_ENV) or None


def signing_key_from_env() -> str | None:
    return os.environ.get(SIGNING_KEY_ENV) or None


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    kafka: str | None = None
    policies_dir: Path | None = None
    topic_prefix: str = ""
    #: The engine's clock (recorded_at, what the timers find due, default as-of instants).
    clock: SystemClock = field(default_factory=clock_from_env)
    #: How far ahead of `clock` a command may be dated (SPEC §5).
    max_skew: timedelta = field(default_factory=max_skew_from_env)
    #: Each HTTP API key's request limits (TICKETFLOW_RATE_LIMIT).
    rate_limit: str = field(default_factory=rate_limit_from_env)
    #: The engine's SASL login to the broker, if any.
    kafka_login: KafkaLogin | None = field(default_factory=kafka_login_from_env)
    #: Commands from support.commands must be signed with a key (SPEC §8).
    require_keys: bool = field(default_factory=require_keys_from_env)
    #: Webhooks may target loopback, private and link-local addresses (SSRF guard off).
    webhook_private_targets: bool = field(default_factory=webhook_private_targets_from_env)
    #: The key `apply` and `publish` speak with when given no --key (TICKETFLOW_KEY).
    key: str | None = field(default_factory=key_from_env, repr=False)
    #: Where the checkpoint and bundle signing key is (TICKETFLOW_SIGNING_KEY).
    signing_key: str | None = field(default_factory=signing_key_from_env)

    def kafka_config(self) -> dict[str, Any]:
        """kafka-python settings for this engine's clients (`kafka_client_config`)."""
        return kafka_client_config(self.kafka, self.kafka_login)

    @classmethod
    def from_env(cls, db: str | None = None, kafka: str | None = None) -> Settings:
        policies = os.environ.get("TICKETFLOW_POLICIES")
        return cls(
            db=db or os.environ.get("TICKETFLOW_DB") or DEFAULT_DB,
            kafka=kafka or os.environ.get("TICKETFLOW_KAFKA"),
            policies_dir=Path(policies) if policies else None,
            topic_prefix=os.environ.get("TICKETFLOW_TOPIC_PREFIX", ""),
            clock=clock_from_env(),
            max_skew=max_skew_from_env(),
            rate_limit=rate_limit_from_env(),
            kafka_login=kafka_login_from_env(),
            require_keys=require_keys_from_env(),
            webhook_private_targets=webhook_private_targets_from_env(),
            key=key_from_env(),
            signing_key=signing_key_from_env(),
        )




#: Environment variables passed to the kafka-python clients, for real clusters:
#: TICKETFLOW_KAFKA_OPT_SECURITY_PROTOCOL=SASL_SSL → security_protocol="SASL_SSL", etc.
KAFKA_OPTION_PREFIX = "TICKETFLOW_KAFKA_OPT_"
KAFKA_CLIENTS = (KafkaProducer, KafkaConsumer, KafkaAdminClient)
#: Options whose value is a Python object (a class, a callable): not settable as text.
_OBJECT_OPTIONS = frozenset({
    "bootstrap_servers", "kafka_client", "selector", "metric_reporters", "socket_options",
    "ssl_context", "sasl_oauth_token_provider", "partitioner", "partition_assignment_strategy",
    "default_offset_commit_callback", "key_serializer", "value_serializer",
    "key_deserializer", "value_deserializer"})
#: Options kafka-python defaults to None whose value is not text.
_NONE_DEFAULT_TYPES: dict[str, type] = {"api_version": tuple, "receive_buffer_bytes": int,
                                        "send_buffer_bytes": int}
_FLAGS = {"true": True, "1": True, "yes": True, "on": True,
          "false": False, "0": False, "no": False, "off": False}


def kafka_client_config(bootstrap: str | None,
                        login: KafkaLogin | None = None) -> dict[str, Any]:
    """kafka-python settings: servers, the SASL `login` (default: the one
    TICKETFLOW_KAFKA_SASL_* name), and every TICKETFLOW_KAFKA_OPT_<NAME>, typed as
    kafka-python expects ('false' → False, '30000' → 30000, '3.6' → (3, 6)). A name no
    kafka-python client knows is refused, so a typo is not silently a plain connection;
    so is an OPT_ that a login also sets. Each client takes the options it accepts
    (`options_for`)."""
    if not bootstrap:
        raise SettingsError(
            "no Kafka given: pass --kafka HOST:PORT or set TICKETFLOW_KAFKA"
            " (start a local broker with `ticketflow kafka start`)"
        )
    config: dict[str, Any] = {"bootstrap_servers": bootstrap.split(",")}
    for name, value in sorted(os.environ.items()):
        if name.startswith(KAFKA_OPTION_PREFIX):
            key = name.removeprefix(KAFKA_OPTION_PREFIX).lower()
            config[key] = _kafka_option(name, key, value)
    login = login or kafka_login_from_env()
    if login is not None:
        twice = sorted(set(login.options()) & set(config))
        if twice:
            raise SettingsError(
                f"{', '.join(KAFKA_OPTION_PREFIX + key.upper() for key in twice)}: set by the"
                f" SASL login ({SASL_USERNAME_ENV} …) too; keep one of them")
        config.update(login.options())
    if isinstance(config.get("sasl_plain_password"), str):
        config["sasl_plain_password"] = Secret(config["sasl_plain_password"])
    return config


def options_for(client: type, config: dict[str, Any]) -> dict[str, Any]:
    """The part of `config` this kafka-python client class accepts (a consumer-only
    option would make a producer refuse to start)."""
    accepted: dict[str, Any] = client.DEFAULT_CONFIG  # type: ignore[attr-defined]
    return {key: value for key, value in config.items() if key in accepted}


@cache
def _kafka_defaults() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for client in KAFKA_CLIENTS:
        merged.update(client.DEFAULT_CONFIG)
    return merged


def _kafka_option(name: str, key: str, text: str) -> Any:
    defaults = _kafka_defaults()
    if key not in defaults:
        raise SettingsError(f"{name}: kafka-python has no option {key!r}; see the security"
                            " and SASL/TLS settings in docs/security.md")
    if key in _OBJECT_OPTIONS:
        raise SettingsError(f"{name}: {key} takes a Python object; it cannot be set from the"
                            " environment")
    kind = _NONE_DEFAULT_TYPES.get(key) or type(defaults[key])
    try:
        return _parsed(text, kind)
    except ValueError:
        wanted = _KIND_NAMES.get(kind, "text")
        raise SettingsError(f"{name}={text!r}: {key} takes {wanted}") from None


_KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number",
               tuple: "a version like 3.6"}


def _parsed(text: str, kind: type) -> Any:
    if kind is bool:
        flag = _FLAGS.get(text.strip().lower())
        if flag is None:
            raise ValueError(text)
        return flag
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is tuple:
        return tuple(int(part) for part in text.split("."))
    return text


#: Optional encryption at rest of the event store (eventsourcing's AES-GCM cipher):
#: a base64 key of 16, 24 or 32 bytes. See docs/security.md for generating and keeping it.
CIPHER_KEY_ENV = "TICKETFLOW_CIPHER_KEY"
CIPHER_TOPIC = "ticketflow.cipher:StoreCipher"
GENERATE_KEY = ("python -c 'import base64, os; print(base64.b64encode(os.urandom(32))"
                ".decode())'")


def cipher_env(key: str | None) -> dict[str, str]:
    """eventsourcing's CIPHER_TOPIC / CIPHER_KEY for a TICKETFLOW_CIPHER_KEY (none: {})."""
    if not key:
        return {}
    try:
        size = len(base64.b64decode(key.strip(), validate=True))
    except (binascii.Error, ValueError):
        size = -1
    if size not in (16, 24, 32):
        raise SettingsError(f"{CIPHER_KEY_ENV} is not a base64 AES key of 16, 24 or 32 bytes;"
                            f" generate one with: {GENERATE_KEY}")
    return {"CIPHER_TOPIC": CIPHER_TOPIC, "CIPHER_KEY": key.strip()}


#: The tenant a caller is confined to on the read commands (`--tenant` wins if equal).
TENANT_ENV = "TICKETFLOW_TENANT"


def tenant_scope(flag: str | None) -> str | None:
    """The caller's tenant scope: --tenant, else TICKETFLOW_TENANT. A --tenant other
    than TICKETFLOW_TENANT is refused: the environment confines the caller."""
    confined = os.environ.get(TENANT_ENV) or None
    if confined and flag and flag != confined:
        raise SettingsError(f"{TENANT_ENV}={confined} confines this caller to tenant"
                            f" {confined}; --tenant {flag} is refused")
    return flag or confined


def eventstore_env(url: str, cipher_key: str | None = None) -> dict[str, str]:
    """Map `sqlite:///path` or `postgresql://user:pw@host:port/db` to eventsourcing's env,
    with the cipher of `cipher_key` (default: TICKETFLOW_CIPHER_KEY, if set)."""
    return {**_persistence_env(url),
            **cipher_env(cipher_key or os.environ.get(CIPHER_KEY_ENV))}


def _persistence_env(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise SettingsError(f"{url!r}: name a file, e.g. sqlite:///ticketflow.db")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": SQLITE_FACTORY, "SQLITE_DBNAME": path,
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


@dataclass(frozen=True)
class Bound:
    """A report's --from or --to (an HTTP report's `from` or `to`): an instant, or a
    bare date, which is its midnight in the report's --timezone (UTC by default)."""

    instant: datetime
    day: date | None

    @classmethod
    def parse(cls, text: str) -> Bound:
        bare = "T" not in text and " " not in text and len(text.strip()) == 10
        return cls(instant(text), date.fromisoformat(text.strip()) if bare else None)

    def at(self, zone: tzinfo) -> datetime:
        if self.day is None:
            return self.instant
        return datetime.combine(self.day, datetime.min.time(), zone).astimezone(UTC)

    def date_in(self, zone: tzinfo) -> date:
        return self.day or self.instant.astimezone(zone).date()


def zone(name: str) -> tzinfo:
    """An IANA time zone by name (UTC as the `UTC` object, as reports compare it)."""
    try:
        return UTC if name in ("UTC", "Z") else ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):  # also a folder, a long name
        raise argparse.ArgumentTypeError(f"{name!r} is not an IANA time zone") from None
