"""`ticketflow worker ROLE` as a child process, for harnesses: the soak, the fault
tests and the latency benchmark start, kill and stop the pipeline's roles with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ticketflow.clock import ENV as CLOCK_ENV
from ticketflow.settings import Settings


class WorkerProcess:
    """`ticketflow worker ROLE` as a child process, for harnesses (the soak, fault tests).

    The child dies with the thread that started it (`setpriv --pdeathsig`), so a
    harness that is itself killed leaves no orphan; its output goes to `log_path`.
    """

    def __init__(self, role: str, settings: Settings, log_path: Path, *,
                 partitions: int = 6, env: dict[str, str] | None = None) -> None:
        self.role, self.settings, self.log_path = role, settings, log_path
        self.partitions = partitions
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "ticketflow.cli", "worker", self.role,
                "--db", self.settings.db, "--kafka", self.settings.kafka or "",
                "--partitions", str(self.partitions)]

    def start(self) -> WorkerProcess:
        env = {**os.environ, "TICKETFLOW_TOPIC_PREFIX": self.settings.topic_prefix,
               CLOCK_ENV: self.settings.clock.spec, **self.env}
        if self.settings.policies_dir is not None:
            env["TICKETFLOW_POLICIES"] = str(self.settings.policies_dir)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(_dying_with_parent(self.argv()), env=env,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        self.starts += 1
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last commit, as a crash or the OOM killer would."""
        if self.process is not None and self.running:
            self.process.kill()
        self._reap(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (finish the current step and close), SIGKILL after `timeout`."""
        if self.process is None:
            return None
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self._reap(timeout=30)

    def _reap(self, timeout: float) -> int | None:
        return None if self.process is None else self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _dying_with_parent(argv: list[str]) -> list[str]:
    """Prefix util-linux `setpriv --pdeathsig KILL` where it exists (Linux)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *argv] if setpriv else argv
