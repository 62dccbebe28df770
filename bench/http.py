"""HTTP: commands through `POST /v1/commands` at a steady rate and at saturation, beside
a plain FastAPI endpoint that saves one raw eventsourcing aggregate per request
(bench/plain_http.py), on SQLite and on PostgreSQL.

Both servers are separate uvicorn processes on 127.0.0.1; this process is the load.
Ours runs `ticketflow http` with a key (every request authenticated, bounded, parsed,
checked against the lifecycle and SLA policy, recorded with its receipt and audit-log
leaf); the plain one saves the same JSON body as one aggregate event.

- **Steady**: requests sent on a fixed schedule at `rate` per second; a request's
  latency is from the instant it was *due* to its answer, so a server that falls
  behind shows it (no coordinated omission). p50 and p99. Goal: p99 ≤ 50 ms at 200/s.
- **Saturation**: `clients` connections sending back to back for a while; completed
  requests per second, ours against the plain endpoint's. Goal: ≥ 0.5×.

Commands are comments spread over tickets created first (no timer falls due: they are
dated now by the engine's clock), so no two requests in flight race for one ticket
more than the spread allows.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx

from bench.common import Figures, alternate, compared, say
from bench.latency import percentile
from tests.support.kafka import free_ports
from ticketflow.clock import ENV as CLOCK_ENV
from ticketflow.clock import SystemClock, default_clock

TICKETS = 300
TENANT = "personalysispro"
CREATE = {"account_id": "bench", "plan": "professional", "timezone": "America/New_York",
          "channel": "email", "category": "technical", "subcategory": "performance",
          "priority": "low", "subject": "http bench", "description": "steady load"}
#: The rate limit ours runs with: far above what this machine can send.
UNLIMITED = "100000/second"


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "ticketflow.cli", *args], check=True,
                          capture_output=True, text=True, timeout=300, env=env)
    return done.stdout


@contextmanager
def server(kind: str, db: str, clock: SystemClock) -> Iterator[tuple[str, dict[str, str]]]:
    """A uvicorn process serving ours (`ticketflow http`, on `clock`) or the plain
    endpoint on a fresh database; yields its base URL and the headers every request
    carries."""
    (port,) = free_ports(1)
    headers: dict[str, str] = {}
    env = {**os.environ, "TICKETFLOW_RATE_LIMIT": UNLIMITED, CLOCK_ENV: clock.spec}
    if kind == "ours":
        issued = json.loads(_cli("keys", "create", "--db", db, "--tenant", TENANT,
                                 "--roles", "customer,agent", "--json", env=env))
        headers["Authorization"] = f"Bearer {issued['secret']}"
        command = [sys.executable, "-m", "ticketflow.cli", "http", "--db", db,
                   "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "bench.plain_http", "--db", db, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} server exited: "
                                   f"{process.stderr.read().decode() if process.stderr else ''}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not answer /healthz in 120 s")
            time.sleep(0.1)
        yield base, headers
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


class Commands:
    """Bodies for one server: tickets created first, then comments over them, dated now
    by `clock` (the engine's: TICKETFLOW_CLOCK, handed to the server too)."""

    def __init__(self, prefix: str, clock: SystemClock) -> None:
        self.prefix = prefix
        self.clock = clock
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def _document(self, message_id: str, type_: str, ticket: int, role: str,
                  payload: dict[str, Any]) -> bytes:
        return json.dumps({
            "message_id": message_id, "type": type_, "tenant": TENANT,
            "ticket_id": f"{self.prefix}-{ticket}",
            "occurred_at": self.clock().isoformat(),
            "actor": {"id": f"{role}-1", "role": role}, "payload": payload}).encode()

    def create(self, ticket: int) -> bytes:
        return self._document(f"{self.prefix}-c{ticket}", "create_ticket", ticket,
                              "customer", CREATE)

    def comment(self) -> bytes:
        with self.lock:
            n = next(self.counter)
        return self._document(f"{self.prefix}-m{n}", "add_comment", n % TICKETS, "agent",
                              {"body": f"update {n}", "visibility": "public"})


def _post(client: httpx.Client, base: str, headers: dict[str, str], body: bytes) -> None:
    answer = client.post(f"{base}/v1/commands", content=body,
                         headers={**headers, "Content-Type": "application/json"})
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")


def prepare(base: str, headers: dict[str, str], commands: Commands) -> None:
    with httpx.Client(timeout=30) as client:
        for ticket in range(TICKETS):
            _post(client, base, headers, commands.create(ticket))


def steady(base: str, headers: dict[str, str], commands: Commands, rate: int,
           count: int) -> Figures:
    """`count` requests due at `rate`/s; latency from each one's due instant."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(timeout=30, limits=limits) as client, \
            ThreadPoolExecutor(max_workers=48) as pool:
        start = time.perf_counter() + 0.1

        def send(due: float) -> None:
            _post(client, base, headers, commands.comment())
            latencies.append(time.perf_counter() - due)

        futures = []
        for n in range(count):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, due))
        for future in futures:
            future.result()
        seconds = time.perf_counter() - start
    return {"rate": rate, "requests": count, "achieved_per_second": round(count / seconds, 1),
            "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "max_ms": percentile(latencies, 1.0)}


def saturation(base: str, headers: dict[str, str], commands: Commands, clients: int,
               seconds: float) -> float:
    """Completed requests per second with `clients` connections sending back to back."""
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def client_loop(slot: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() < stop:
                _post(client, base, headers, commands.comment())
                done[slot] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(sum(done) / (time.perf_counter() - started), 1)


def run_backend(make_db: Callable[[], str], rate: int, count: int, clients: int,
                seconds: float) -> Figures:
    clock = default_clock()  # read once: an instant's clock starts when it is read
    with server("ours", make_db(), clock) as (ours, ours_headers), \
            server("plain", make_db(), clock) as (plain, plain_headers):
        ours_commands, plain_commands = Commands("H", clock), Commands("P", clock)
        say("  creating tickets on both servers")
        prepare(ours, ours_headers, ours_commands)
        prepare(plain, plain_headers, plain_commands)
        say(f"  steady {rate}/s × {count}")
        steady_plain = steady(plain, plain_headers, plain_commands, rate, count)
        steady_ours = steady(ours, ours_headers, ours_commands, rate, count)
        say(f"  saturation: {clients} clients × {seconds:.0f} s, alternating")
        best_ours, best_plain = alternate(
            lambda: saturation(ours, ours_headers, ours_commands, clients, seconds),
            lambda: saturation(plain, plain_headers, plain_commands, clients, seconds))
    return {
        "steady": {"ours": steady_ours, "plain": steady_plain, "goal_p99_ms": 50,
                   "goal_met": steady_ours["p99_ms"] <= 50},
        "saturation": compared(best_ours, best_plain, "requests/s", goal=0.5,
                               clients=clients, seconds=seconds),
    }


def run(makers: dict[str, Callable[[], str]], rate: int = 200, count: int = 2000,
        clients: int = 8, seconds: float = 10.0) -> Figures:
    results: Figures = {}
    for backend, make_db in makers.items():
        say(f"http on {backend}")
        results[backend] = run_backend(make_db, rate, count, clients, seconds)
    return results
