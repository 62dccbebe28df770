"""A local single-node Apache Kafka broker (KRaft) for development and tests, without Docker.

The broker's jars come from Maven Central: ``broker/pom.xml`` (package data of
``ticketflow.tools``, so an installed wheel has it) pins the Kafka version and the log4j2
backend, and ``mvn ... copy-dependencies`` copies the runtime classpath into a cache::

    $TICKETFLOW_KAFKA_HOME (default ~/.cache/ticketflow/kafka)
    └── <kafka version>/
        ├── conf/               the packaged pom.xml and log4j2.properties, copied here
        ├── libs/               the jars, plus .complete once a copy finished
        └── data-<port>/        default data dir: server.properties, broker.log, broker.pid,
            └── kafka-logs/     the KRaft log dir, formatted on first start

Maven and the JVM read the copies in ``conf/``: the package may live in a zip or a
read-only site-packages. Once the jars are cached, starting a broker needs no network.

``ticketflow kafka start|stop|status`` (see :func:`add_kafka_commands`) drives :class:`LocalKafka`;
the integration tests start their own instance on free ports with a throw-away data dir.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CONTROLLER_PORT",
    "DEFAULT_PORT",
    "KafkaBrokerError",
    "LocalKafka",
    "add_kafka_commands",
    "default_home",
    "kafka_version",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
ENV_HOME = "TICKETFLOW_KAFKA_HOME"
ENV_PORT = "TICKETFLOW_KAFKA_PORT"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
LOG_TAIL_LINES = 30
_POM_MAVEN_NS = "{http://maven.apache.org/POM/4.0.0}"
_COMPLETE_MARKER = ".complete"

#: With SASL: the listener clients use, its mechanism, and the KRaft authorizer.
SASL_LISTENER = "SASL_PLAINTEXT"
SASL_MECHANISM = "PLAIN"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
DEFAULT_SUPER_USER = "admin"
_USER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: The files the broker needs, shipped inside the package (see pyproject's package-data).
BROKER_FILES = ("pom.xml", "log4j2.properties")

Echo = Callable[[str], None]


class KafkaBrokerError(RuntimeError):
    """The local broker could not be fetched, started or stopped."""


def _echo_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_home() -> Path:
    """``$TICKETFLOW_KAFKA_HOME``, else ``~/.cache/ticketflow/kafka``."""
    env = os.environ.get(ENV_HOME, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ticketflow" / "kafka"


def packaged_file(name: str) -> bytes:
    """One of `BROKER_FILES` as shipped in ``ticketflow/tools/broker/``."""
    try:
        return (resources.files("ticketflow.tools") / "broker" / name).read_bytes()
    except OSError as exc:
        raise KafkaBrokerError(
            f"ticketflow/tools/broker/{name} is missing from the installed package ({exc});"
            " reinstall ticketflow"
        ) from exc


def kafka_version(pom: bytes | None = None) -> str:
    """The Kafka version pinned by ``<kafka.version>`` in the packaged pom.xml."""
    try:
        root = ET.fromstring(packaged_file("pom.xml") if pom is None else pom)
    except ET.ParseError as exc:
        raise KafkaBrokerError(f"cannot read the broker's pom.xml: {exc}") from exc
    node = root.find(f"{_POM_MAVEN_NS}properties/{_POM_MAVEN_NS}kafka.version")
    if node is None or not (node.text or "").strip():
        raise KafkaBrokerError("the broker's pom.xml has no <properties><kafka.version>")
    return (node.text or "").strip()


def _write_if_changed(path: Path, content: bytes) -> None:
    """Write atomically, and only when different: another process may be reading it."""
    with contextlib.suppress(OSError):
        if path.read_bytes() == content:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    staging.write_bytes(content)
    staging.replace(path)


def new_cluster_id() -> str:
    """A random KRaft cluster id, as ``kafka-storage random-uuid`` makes it.

    Kafka's ``Uuid.randomUuid()`` is a random (v4) UUID rendered as URL-safe base64 without
    padding, re-drawn when it would start with '-'. Making it here saves a JVM start.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def read_users(path: Path) -> dict[str, str]:
    """SASL/PLAIN users from a file of ``name=password`` lines (``#`` comments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KafkaBrokerError(f"cannot read the SASL users file {path}: {exc}") from exc
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, password = line.partition("=")
        if not equals:
            raise KafkaBrokerError(f"{path}:{number}: write each user as name=password")
        users[name.strip()] = password.strip()
    return users


def _checked_users(users: Mapping[str, str], super_user: str) -> dict[str, str]:
    """The users, refused if a name or password could break out of the JAAS line."""
    for name, password in users.items():
        if not _USER_NAME.fullmatch(name):
            raise KafkaBrokerError(f"SASL user {name!r}: use 1-64 letters, digits, '.', '_', '-'")
        if not password or any(c in password for c in '"\\;') or not password.isprintable():
            raise KafkaBrokerError(f"SASL user {name}: the password must be non-empty printable"
                                   " text without '\"', '\\' or ';'")
    if super_user not in users:
        raise KafkaBrokerError(f"the super user {super_user!r} is not among the SASL users")
    return dict(users)


def sasl_client_options(username: str, password: str) -> dict[str, str]:
    """kafka-python options for a SASL_PLAINTEXT/PLAIN login."""
    return {"security_protocol": SASL_LISTENER, "sasl_mechanism": SASL_MECHANISM,
            "sasl_plain_username": username, "sasl_plain_password": password}


def _metadata_answers(bootstrap: str, timeout: float = 5.0,
                      options: Mapping[str, Any] | None = None) -> bool:
    """True when a Kafka metadata request to ``bootstrap`` is answered."""
    # Heavy import, only when needed. Imported from kafka.admin, not kafka: mypy run from the
    # repository root resolves `kafka` to the repo's kafka/ folder (a namespace package).
    from kafka.admin import KafkaAdminClient  # noqa: PLC0415
    from kafka.errors import KafkaConfigurationError  # noqa: PLC0415

    millis = max(int(timeout * 1000), 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="ticketflow-kafka-probe",
            request_timeout_ms=millis,
            bootstrap_timeout_ms=millis,
            reconnect_backoff_max_ms=500,
            **(options or {}),
        )
    except KafkaConfigurationError:  # a bug here, not a broker that is not ready yet
        raise
    except Exception:  # NoBrokersAvailable, connection errors, timeouts
        return False
    try:
        admin.list_topics()
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            admin.close()
    return True


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            text = "".join(deque(handle, maxlen=lines)).rstrip()
    except OSError:
        return "(no broker log)"
    return text or "(the broker log is empty)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped yet) still answers kill(0).
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _is_kafka_process(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a JVM running kafka.Kafka."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():  # no procfs: trust the pid file
        return True
    try:
        return b"kafka.Kafka" in cmdline.read_bytes()
    except OSError:
        return False


class LocalKafka:
    """One local single-node KRaft broker (combined broker + controller) on loopback.

    ``home`` holds the jar cache (``<home>/<version>/libs``); ``data_dir`` (default
    ``<home>/<version>/data-<port>``) holds the generated server.properties, the broker log,
    the pid file and the KRaft log dir.

    With ``sasl_users`` (name → password) the client port is a SASL_PLAINTEXT listener
    (mechanism PLAIN, those users) and the KRaft ``StandardAuthorizer`` decides every
    request: ``allow.everyone.if.no.acl.found=false``, so a user may do only what an ACL
    grants it, except ``super_user`` (the broker's own login, and the operator's for
    creating topics and ACLs), who may do everything. There is no anonymous listener.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        controller_port: int | None = None,
        home: Path | str | None = None,
        data_dir: Path | str | None = None,
        host: str = DEFAULT_HOST,
        num_partitions: int = 6,
        echo: Echo | None = _echo_stderr,
        sasl_users: Mapping[str, str] | None = None,
        super_user: str = DEFAULT_SUPER_USER,
    ) -> None:
        self.port = int(port)
        self.controller_port = int(controller_port) if controller_port else self.port + 1
        if self.controller_port == self.port:
            raise KafkaBrokerError("the client and controller ports must differ")
        self.host = host
        self.num_partitions = num_partitions
        self.packaged = {name: packaged_file(name) for name in BROKER_FILES}
        self.version = kafka_version(self.packaged["pom.xml"])
        self.home = Path(home).expanduser() if home else default_home()
        self.conf_dir = self.home / self.version / "conf"
        self.pom = self.conf_dir / "pom.xml"
        self.log4j_config = self.conf_dir / "log4j2.properties"
        self.libs_dir = self.home / self.version / "libs"
        self.data_dir = (
            Path(data_dir).expanduser()
            if data_dir
            else self.home / self.version / f"data-{self.port}"
        )
        self.log_dir = self.data_dir / "kafka-logs"
        self.properties_file = self.data_dir / "server.properties"
        self.log_file = self.data_dir / "broker.log"
        self.pid_file = self.data_dir / "broker.pid"
        self._echo = echo
        self._proc: subprocess.Popen[bytes] | None = None
        self.sasl_users = _checked_users(sasl_users, super_user) if sasl_users else None
        self.super_user = super_user

    # -- small helpers ---------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"{self.host}:{self.port}"

    def client_options(self, user: str | None = None) -> dict[str, str]:
        """kafka-python options to log in as ``user`` (default: the super user); none
        without SASL."""
        if self.sasl_users is None:
            return {}
        name = user or self.super_user
        if name not in self.sasl_users:
            raise KafkaBrokerError(f"no SASL user {name!r} on this broker")
        return sasl_client_options(name, self.sasl_users[name])

    def _say(self, message: str) -> None:
        if self._echo is not None:
            self._echo(message)

    def _pom_digest(self) -> str:
        return hashlib.sha256(self.packaged["pom.xml"]).hexdigest()

    def _write_conf(self) -> None:
        """Copy the packaged pom and log4j2 configuration to `conf_dir`, for Maven and Java."""
        for name, content in self.packaged.items():
            _write_if_changed(self.conf_dir / name, content)

    def jars_cached(self) -> bool:
        """True when a complete copy of the jars for the current pom is in the cache."""
        marker = self.libs_dir / _COMPLETE_MARKER
        try:
            return marker.read_text().split("\n", 1)[0].strip() == self._pom_digest()
        except OSError:
            return False

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        lock_path = self.home / self.version / ".fetch.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _tool(name: str, hint: str) -> str:
        path = shutil.which(name)
        if path is None:
            raise KafkaBrokerError(f"`{name}` not found on PATH: {hint}")
        return path

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME", "").strip()
        if java_home and (Path(java_home) / "bin" / "java").is_file():
            return str(Path(java_home) / "bin" / "java")
        return self._tool(
            "java", "install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre)"
        )

    def _classpath(self) -> str:
        return str(self.libs_dir / "*")

    def _log4j_option(self) -> str:
        return f"-Dlog4j2.configurationFile={self.log4j_config}"

    # -- jars ------------------------------------------------------------------------------

    def fetch_jars(self) -> Path:
        """Copy the broker's runtime jars from Maven into the cache (once); return the dir."""
        if self.jars_cached():
            return self.libs_dir
        with self._lock():
            if self.jars_cached():  # another process finished the copy while we waited
                return self.libs_dir
            mvn = self._tool("mvn", "install Maven 3.6+ (e.g. apt-get install maven)")
            self._write_conf()
            self._say(f"fetching Kafka {self.version} jars (first run only)…")
            started = time.monotonic()
            staging = self.libs_dir.with_name(f"libs.tmp-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            command = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(self.pom),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ]
            result = subprocess.run(
                command,
                cwd=self.conf_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            jars = sorted(p.name for p in staging.glob("*.jar")) if staging.is_dir() else []
            if result.returncode != 0 or not any(j.startswith("kafka_") for j in jars):
                shutil.rmtree(staging, ignore_errors=True)
                output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-40:])
                raise KafkaBrokerError(
                    f"fetching the Kafka {self.version} jars failed (mvn exit "
                    f"{result.returncode}): {' '.join(command)}\n{output}\n"
                    "Check that Maven Central is reachable (or ~/.m2/settings.xml points to a "
                    "mirror)."
                )
            shutil.rmtree(self.libs_dir, ignore_errors=True)
            staging.rename(self.libs_dir)
            (self.libs_dir / _COMPLETE_MARKER).write_text(
                self._pom_digest() + "\n" + "\n".join(jars) + "\n"
            )
            size = sum(p.stat().st_size for p in self.libs_dir.glob("*.jar"))
            self._say(
                f"fetched {len(jars)} jars ({size / 2**20:.0f} MiB) into {self.libs_dir} "
                f"in {time.monotonic() - started:.1f} s"
            )
        return self.libs_dir

    # -- configuration ---------------------------------------------------------------------

    def server_properties(self) -> dict[str, str]:
        """The broker configuration (combined KRaft broker + controller, one node)."""
        listener = "PLAINTEXT" if self.sasl_users is None else SASL_LISTENER
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": (
                f"{listener}://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"{listener}://{self.host}:{self.port}",
            "inter.broker.listener.name": listener,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": f"CONTROLLER:{listener},{listener}:{listener}",
            **self._sasl_properties(),
            "log.dirs": str(self.log_dir),
            "num.partitions": str(self.num_partitions),
            # Topics are created by ticketflow with their configuration (retention of
            # support.ticket-events); a producer racing ahead must not create them.
            "auto.create.topics.enable": "false",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
        }

    def _sasl_properties(self) -> dict[str, str]:
        """SASL/PLAIN on both listeners (the broker logs in to its controller as the super
        user) and the KRaft authorizer, denying whatever no ACL allows."""
        if self.sasl_users is None:
            return {}
        admin = self.sasl_users[self.super_user]
        users = " ".join(f'user_{name}="{password}"' for name, password in self.sasl_users.items())
        jaas = (f'{PLAIN_LOGIN} required username="{self.super_user}" password="{admin}" '
                f"{users};")
        return {
            "sasl.enabled.mechanisms": SASL_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SASL_MECHANISM,
            "sasl.mechanism.controller.protocol": SASL_MECHANISM,
            f"listener.name.{SASL_LISTENER.lower()}.plain.sasl.jaas.config": jaas,
            "listener.name.controller.plain.sasl.jaas.config": jaas,
            "authorizer.class.name": AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{self.super_user}",
        }

    def _write_properties(self) -> None:
        lines = [
            "# Generated by ticketflow.tools.kafka_broker on every start; edits are overwritten.",
            *(f"{key}={value}" for key, value in self.server_properties().items()),
        ]
        self.properties_file.touch(mode=0o600)  # it may hold the SASL passwords
        self.properties_file.chmod(0o600)
        self.properties_file.write_text("\n".join(lines) + "\n")

    def _format_storage(self) -> None:
        """Format the KRaft log dir with a fresh cluster id (first start only)."""
        if (self.log_dir / "meta.properties").is_file():
            return
        cluster_id = new_cluster_id()
        self._say(f"formatting {self.log_dir} (cluster id {cluster_id})")
        result = subprocess.run(
            [
                self._java(),
                "-Xmx256m",
                self._log4j_option(),
                "-cp",
                self._classpath(),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self.properties_file),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaBrokerError(
                f"formatting the Kafka log dir {self.log_dir} failed (exit {result.returncode}):"
                f"\n{(result.stdout + result.stderr).strip()}"
            )

    # -- process state ---------------------------------------------------------------------

    def pid(self) -> int | None:
        """The broker's pid from the pid file, if that process is alive and is Kafka."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._proc is not None and self._proc.pid == pid:
            return pid if self._proc.poll() is None else None
        if _pid_alive(pid) and _is_kafka_process(pid):
            return pid
        return None

    def status(self) -> bool:
        """True when the broker's process is alive AND its client port accepts connections."""
        return self.pid() is not None and _port_open(self.host, self.port)

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return _pid_alive(pid)

    def _kill(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            try:
                os.killpg(pid, sig)  # the broker leads its own process group
            except PermissionError:
                os.kill(pid, sig)

    # -- start / stop ----------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> int | None:
        """Start the broker (fetching jars and formatting storage if needed); return its pid.

        Returns once the client port accepts connections and answers a metadata request. When
        a broker this instance did not start (no pid file in ``data_dir``) already answers on
        the port, says so and returns None.
        """
        started = time.monotonic()
        running = self.pid()
        if running is not None:
            if _port_open(self.host, self.port) and self._answers():
                self._say(f"Kafka is already running on {self.bootstrap} (pid {running})")
                return running
            self._say(f"Kafka (pid {running}) is starting; waiting for {self.bootstrap}")
            self._wait_ready(running, started + timeout, kill_on_timeout=False)
            return running
        if _port_open(self.host, self.port):
            if self._answers():
                self._say(
                    f"a Kafka broker is already running on {self.bootstrap}, but not from "
                    f"{self.data_dir} (docker compose? another --data-dir?): using it; "
                    "`ticketflow kafka stop` will not stop it"
                )
                return None
            raise KafkaBrokerError(
                f"port {self.bootstrap} is taken by another program; pick another --port"
            )
        if not _port_bindable(self.host, self.controller_port):
            raise KafkaBrokerError(
                f"the controller port {self.host}:{self.controller_port} is taken; pick another "
                "controller port (ticketflow kafka start --controller-port N)"
            )

        self.fetch_jars()
        self._write_conf()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        self._write_properties()
        self._format_storage()
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))

        command = [
            self._java(),
            *JVM_OPTIONS,
            self._log4j_option(),
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.properties_file),
        ]
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # detached: survives the CLI, own process group
            )
        pid = self._proc.pid
        self.pid_file.write_text(f"{pid}\n")
        self._wait_ready(pid, started + timeout, kill_on_timeout=True)
        self._say(
            f"Kafka {self.version} started on {self.bootstrap} (pid {pid}) "
            f"in {time.monotonic() - started:.1f} s; log: {self.log_file}"
        )
        return pid

    def _wait_ready(self, pid: int, deadline: float, kill_on_timeout: bool) -> None:
        while True:
            if not self._alive(pid):
                self.pid_file.unlink(missing_ok=True)
                self._reap()
                raise KafkaBrokerError(self._failure("exited during startup"))
            if _port_open(self.host, self.port) and self._answers():
                return
            if time.monotonic() >= deadline:
                if kill_on_timeout:
                    self._kill(pid, signal.SIGKILL)
                    self._reap()
                    self.pid_file.unlink(missing_ok=True)
                raise KafkaBrokerError(self._failure("did not become ready in time"))
            time.sleep(0.25)

    def _answers(self) -> bool:
        return _metadata_answers(self.bootstrap, options=self.client_options())

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)

    def _failure(self, what: str) -> str:
        return (
            f"the local Kafka broker on {self.bootstrap} {what}.\n"
            f"--- last {LOG_TAIL_LINES} lines of {self.log_file} ---\n"
            f"{_tail(self.log_file)}\n---\n"
            f"Check: java -version is 17+; ports {self.port} and {self.controller_port} are free "
            f"(ss -ltnp); {self.libs_dir} holds the jars (delete it to re-fetch); "
            f"{self.log_dir} was formatted for this node (delete it to start a fresh cluster); "
            "on a slow or busy machine, a longer start timeout."
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker, SIGKILL it after ``timeout`` s. True if a broker was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self._say(f"Kafka is not running on {self.bootstrap}")
            return False
        started = time.monotonic()
        self._say(f"stopping Kafka (pid {pid})…")
        self._kill(pid, signal.SIGTERM)
        deadline = started + timeout
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._alive(pid):
            self._say(f"Kafka (pid {pid}) ignored SIGTERM for {timeout:.0f} s; sending SIGKILL")
            self._kill(pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 10
            while self._alive(pid) and time.monotonic() < kill_deadline:
                time.sleep(0.1)
        self._reap()
        self.pid_file.unlink(missing_ok=True)
        self._say(f"Kafka stopped in {time.monotonic() - started:.1f} s")
        return True


# -- command line ----------------------------------------------------------------------------


def _env_port() -> int:
    raw = os.environ.get(ENV_PORT, "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        return int(raw)
    except ValueError as exc:
        raise KafkaBrokerError(f"{ENV_PORT}={raw!r} is not a port number") from exc


def _broker_from_args(args: argparse.Namespace) -> LocalKafka:
    port = args.port if args.port is not None else _env_port()
    users_file = getattr(args, "sasl_users", None)
    return LocalKafka(
        port=port,
        controller_port=args.controller_port,
        home=args.home,
        data_dir=args.data_dir,
        sasl_users=read_users(users_file) if users_file else None,
        super_user=getattr(args, "super_user", DEFAULT_SUPER_USER),
    )


def _cmd_start(args: argparse.Namespace) -> int:
    try:
        broker = _broker_from_args(args)
        broker.start(timeout=args.timeout)
    except KafkaBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(broker.bootstrap)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    try:
        _broker_from_args(args).stop(timeout=args.timeout)
    except KafkaBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        broker = _broker_from_args(args)
    except KafkaBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pid = broker.pid()
    running = pid is not None and _port_open(broker.host, broker.port)
    if getattr(args, "json", False):
        import json  # noqa: PLC0415

        info: dict[str, Any] = {
            "running": running,
            "bootstrap": broker.bootstrap,
            "pid": pid,
            "version": broker.version,
            "data_dir": str(broker.data_dir),
            "log": str(broker.log_file),
        }
        print(json.dumps(info))
    elif running:
        print(f"Kafka {broker.version} is running on {broker.bootstrap} (pid {pid})")
    elif pid is not None:
        print(f"Kafka (pid {pid}) is not answering on {broker.bootstrap}; see {broker.log_file}")
    elif _port_open(broker.host, broker.port):
        print(
            f"Kafka is not running from {broker.data_dir}, but something answers on "
            f"{broker.bootstrap}"
        )
    else:
        print(f"Kafka is not running on {broker.bootstrap}")
    return 0 if running else 1


def add_kafka_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``kafka start|stop|status`` to an argparse sub-parsers object.

    Each leaf sets ``func(args) -> int`` (the exit status); ``status`` exits 1 when the broker
    is down.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"client port on {DEFAULT_HOST} (default ${ENV_PORT} or {DEFAULT_PORT})",
    )
    common.add_argument(
        "--controller-port",
        type=int,
        default=None,
        help="KRaft controller port (default: client port + 1)",
    )
    common.add_argument(
        "--home",
        type=Path,
        default=None,
        help=f"jar cache and data root (default ${ENV_HOME} or ~/.cache/ticketflow/kafka)",
    )
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="broker data dir (default <home>/<version>/data-<port>)",
    )

    kafka = subparsers.add_parser(
        "kafka",
        help="local single-node Apache Kafka (KRaft) for development and tests",
        description="A local single-node Apache Kafka broker (KRaft) on 127.0.0.1, no Docker.",
    )
    commands = kafka.add_subparsers(dest="kafka_command", metavar="{start,stop,status}")
    commands.required = True

    start = commands.add_parser("start", parents=[common], help="start the broker (detached)")
    start.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    start.add_argument(
        "--sasl-users",
        type=Path,
        default=None,
        metavar="FILE",
        help="a SASL_PLAINTEXT (PLAIN) listener instead of PLAINTEXT, for the users of FILE"
        " (name=password lines), with ACLs enforced (docs/security.md)",
    )
    start.add_argument(
        "--super-user",
        default=DEFAULT_SUPER_USER,
        help=f"with --sasl-users: the user allowed everything (default {DEFAULT_SUPER_USER})",
    )
    start.set_defaults(func=_cmd_start)

    stop = commands.add_parser("stop", parents=[common], help="stop the broker")
    stop.add_argument(
        "--timeout", type=float, default=30.0, help="seconds after SIGTERM before SIGKILL"
    )
    stop.set_defaults(func=_cmd_stop)

    status = commands.add_parser(
        "status", parents=[common], help="exit 0 if the broker is running, 1 if not"
    )
    status.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    status.set_defaults(func=_cmd_status)
    return kafka


def main(argv: list[str] | None = None) -> int:
    """``python -m ticketflow.tools.kafka_broker start|stop|status`` (as ``ticketflow kafka``)."""
    parser = argparse.ArgumentParser(prog="python -m ticketflow.tools.kafka_broker")
    subparsers = parser.add_subparsers(dest="command")
    add_kafka_commands(subparsers)
    args = parser.parse_args(["kafka", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
