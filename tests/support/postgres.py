"""A private PostgreSQL cluster for the test session: initdb, pg_ctl start, stop.

Uses the server installed from Debian's packages (`apt-get install postgresql`). As
root, the cluster runs as the `postgres` OS user (PostgreSQL refuses to run as root).
Set TICKETFLOW_TEST_POSTGRES to a server URL (postgresql://user@host:port) to use an
existing server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(
        f"PostgreSQL's {name} was not found. Install the server: "
        "apt-get update && apt-get install -y postgresql"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self, base: Path | None = None, *, durable_commits: bool = False) -> None:
        """`durable_commits`: a commit returns once its WAL is written, so a crash of
        the server (stop_server("immediate")) loses no committed transaction."""
        # Its own directory: pytest's temp dirs are 0700 root, closed to `postgres`.
        self.base = base or Path(tempfile.mkdtemp(prefix="ticketflow-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        self.durable_commits = durable_commits

    @property
    def log_file(self) -> Path:
        """The server's log (pg_ctl -l): statements that failed are logged as ERROR."""
        return self.base / "server.log"

    @property
    def server_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        """initdb a fresh data directory, then start the server on it."""
        self.base.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        self.start_server()

    def start_server(self) -> None:
        """Start the server on the existing data directory (same port, same data)."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base}"
                   " -c fsync=off -c max_connections=200")
        if not self.durable_commits:
            options += " -c synchronous_commit=off"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file),
                  "-o", options, "-w", "-t", "60", "start")

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server and keep its data (`immediate` is a crash: no checkpoint)."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        status = [_bin("pg_ctl"), "-D", str(self.data), "status"]
        if self.as_postgres:
            status = ["runuser", "-u", "postgres", "--", *status]
        return subprocess.run(status, capture_output=True, check=False).returncode == 0

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its data."""
        if self.running():
            self.stop_server()
        shutil.rmtree(self.base, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A fresh, empty database on the server; returns its URL."""
    name = "tf_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"
