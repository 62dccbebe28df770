"""ticketflow as a user installs it: `pip wheel .` into a fresh virtualenv, run from a
folder outside the repository, so nothing can come from the source tree. The demo,
the local Kafka broker (whose Maven pom is package data) and `ticketflow http`'s web
console (its templates and static files are package data) must work from there.

Dependencies come from pip's cache (or PyPI), pinned by constraints.txt; the broker's
jars from the Maven cache (~/.cache/ticketflow, fetched by scripts/test.sh), so after
the first fetch nothing here needs the network but pip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.kafka import free_ports
from tests.support.waiting import until_healthy
from ticketflow.tools.kafka_broker import LocalKafka

pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "TICKETFLOW_DB", "TICKETFLOW_KAFKA"}}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def source_tree(dest: Path) -> Path:
    """What a source distribution holds: pyproject, the readme and the folders its
    package-dir maps (a stale build/ or anything else in the checkout stays behind)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    folders = {Path(d).parts[0] for d in config["tool"]["setuptools"]["package-dir"].values()}
    dest.mkdir()
    for name in ("pyproject.toml", config["project"]["readme"]):
        shutil.copy2(REPO / name, dest / name)
    for folder in sorted(folders):
        shutil.copytree(REPO / folder, dest / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("wheel")
    source, dist, venv = source_tree(root / "src"), root / "dist", root / "venv"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    ok(run([*pip, "wheel", str(source), "--no-deps", "-q", "-w", str(dist)], cwd=root))
    (wheel,) = dist.glob("ticketflow-*.whl")
    ok(run([sys.executable, "-m", "venv", str(venv)], cwd=root))
    ok(run([str(venv / "bin" / "pip"), "--disable-pip-version-check", "install", "-q",
            "-c", str(REPO / "constraints.txt"), str(wheel)], cwd=root))
    return venv / "bin"


@pytest.fixture
def broker_ports(tmp_path: Path) -> Iterator[tuple[list[str], LocalKafka]]:
    """Free ports and a data dir for `ticketflow kafka`; whatever the test does, a
    broker started there is stopped at the end (by its pid file)."""
    port, controller = free_ports(2)
    data_dir = tmp_path / "kafka"
    args = ["--port", str(port), "--controller-port", str(controller), "--data-dir", str(data_dir)]
    cleanup = LocalKafka(port=port, controller_port=controller, data_dir=data_dir, echo=None)
    try:
        yield args, cleanup
    finally:
        cleanup.stop()


def test_the_demo_and_the_local_broker_run_from_an_installed_wheel(
    installed: Path, broker_ports: tuple[list[str], LocalKafka], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = ok(run([str(installed / "python"), "-c",
                    "import ticketflow.tools; print(ticketflow.tools.__file__)"], cwd=elsewhere))
    assert Path(where.strip()).is_relative_to(installed.parent), "not the installed copy"

    db = f"sqlite:///{elsewhere / 'demo.db'}"
    demo = json.loads(ok(run([str(installed / "ticketflow"), "demo", "--tickets", "50",
                              "--days", "3", "--db", db, "--json"], cwd=elsewhere)))
    assert demo["outcomes"]["accepted"] > 50 and demo["rejections"] == {}
    assert {row["tenant"] for row in demo["sla"]} == {"personalysispro", "growgrebuddy"}
    assert sum(row["created"] for row in demo["volume"]) == 50
    assert demo["satisfaction"] and demo["self_service"] and demo["times"]

    kafka, (args, broker) = [str(installed / "ticketflow"), "kafka"], broker_ports
    started = ok(run([*kafka, "start", *args], cwd=elsewhere))
    assert started.strip() == broker.bootstrap
    status = json.loads(ok(run([*kafka, "status", "--json", *args], cwd=elsewhere)))
    assert status["running"] is True and status["bootstrap"] == broker.bootstrap
    assert status["version"] == broker.version
    ok(run([*kafka, "stop", *args], cwd=elsewhere))
    assert run([*kafka, "status", *args], cwd=elsewhere).returncode == 1
    assert not broker.status()


CONSOLE = REPO / "ticketflow" / "console"


def test_ticketflow_http_serves_the_console_from_an_installed_wheel(installed: Path,
                                                                    tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = Path(ok(run([str(installed / "python"), "-c", "import ticketflow.console;"
                         " print(ticketflow.console.__file__)"], cwd=elsewhere)).strip()).parent
    assert where.is_relative_to(installed.parent), "not the installed copy"
    for folder in ("templates", "static"):  # every file shipped, as it is in the tree
        shipped = {p.name: p.read_bytes() for p in (where / folder).iterdir()}
        assert shipped == {p.name: p.read_bytes() for p in (CONSOLE / folder).iterdir()}

    db = f"sqlite:///{elsewhere / 'console.db'}"
    key = json.loads(ok(run([str(installed / "ticketflow"), "keys", "create", "--tenant",
                             "personalysispro", "--roles", "agent", "--json", "--db", db],
                            cwd=elsewhere)))
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "TICKETFLOW_DB"}}
    server = subprocess.Popen([str(installed / "ticketflow"), "http", "--port", str(port),
                               "--db", db], cwd=elsewhere, env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        until_healthy(server, url, timeout=60)
        for static in sorted((CONSOLE / "static").iterdir()):
            served = httpx.get(f"{url}/ui/static/{static.name}")
            assert (served.status_code, served.content) == (200, static.read_bytes()), static
        with httpx.Client(base_url=url) as browser:  # every page renders its template
            token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/ui/sign-in").text)
            assert token is not None
            signed_in = browser.post("/ui/sign-in", data={"csrf": token.group(1),
                                                          "secret": key["secret"]},
                                     follow_redirects=True)
            assert signed_in.status_code == 200 and "No ticket matches" in signed_in.text
            for page, heading in (("dashboards", "Dashboards"), ("operations", "Dead letters"),
                                  ("ticket?id=T-1", "No ticket &#39;T-1&#39;.")):
                answer = browser.get(f"/ui/{page}")
                assert heading in answer.text, (page, answer.status_code)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors.decode()
