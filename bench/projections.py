"""Projections: a replay of the whole history into every read model, from the local
log (SQLite) and from Kafka, against the plain read rate of the same source.

Local: `ticketflow replay --from-start` (fresh tables, swapped in at the end) over a
history of ~1 M ticket and session events, against reading the same events with
eventsourcing's `select_notifications` and nothing else. Kafka: the Kafka projection
runner (a consumer group writing rows and offsets in one transaction) over the
events the relay published, against a plain kafka-python consumer polling the same
records. Each replay runs in a child process, so its peak memory is its own.
"""

from __future__ import annotations

import multiprocessing
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from kafka.consumer import KafkaConsumer

from bench.common import Figures, compared, peak_rss_mib, rate, say
from ticketflow.bootstrap import build_app
from ticketflow.consumers.projections import KafkaProjectionRunner
from ticketflow.event_log import STREAM_TOPICS
from ticketflow.projections.db import engine_for
from ticketflow.projections.replay import rebuild
from ticketflow.settings import Settings


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    """Run target(*args) in a fresh process (which may start its own: not a daemon);
    its result plus its peak memory and that of the processes it started."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(pool.submit(_measured, target, *args).result())


def _measured(target: Any, *args: Any) -> dict[str, Any]:
    result = target(*args)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {**result, "peak_rss_mib": peak_rss_mib(),
            "helper_processes_peak_rss_mib": round(children, 1)}


def read_log(path: str) -> dict[str, Any]:
    with build_app(Settings(db=f"sqlite:///{path}")) as app:
        started, count, position = time.perf_counter(), 0, 0
        while records := app.recorder.select_notifications(position + 1, 10_000,
                                                           topics=STREAM_TOPICS):
            count += len(records)
            position = records[-1].id
        return {"events": count, "seconds": time.perf_counter() - started}


def replay_log(path: str) -> dict[str, Any]:
    url = f"sqlite:///{path}"
    with build_app(Settings(db=url)) as app:
        started = time.perf_counter()
        count = rebuild(app, engine_for(url))
        return {"events": count, "seconds": time.perf_counter() - started}


def local(history: Path) -> Figures:
    """Replay from the event store's own log, on a private copy of the history."""
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-replay-"))
    copy = folder / "store.db"
    shutil.copyfile(history, copy)
    try:
        say("projections: plain read of the local log")
        plain = in_child(read_log, str(copy))
        say(f"projections: replay of {plain['events']:,} events into every read model")
        ours = in_child(replay_log, str(copy))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return compared(rate(ours["events"], ours["seconds"]), rate(plain["events"], plain["seconds"]),
                    "events/s", events=ours["events"], seconds=round(ours["seconds"], 1),
                    goal_seconds_for_1m=40,
                    seconds_per_1m=round(ours["seconds"] * 1e6 / ours["events"], 1),
                    peak_rss_mib=ours["peak_rss_mib"],
                    replay_process_peak_rss_mib=ours["helper_processes_peak_rss_mib"],
                    baseline_peak_rss_mib=plain["peak_rss_mib"])


def consume_plain(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             max_poll_records=2000)
    try:
        count, started = 0, time.perf_counter()
        while count < events:
            for records in consumer.poll(timeout_ms=500).values():
                count += len(records)
        return {"events": count, "seconds": time.perf_counter() - started}
    finally:
        consumer.close()


def consume_projections(bootstrap: str, topic: str, events: int, url: str) -> dict[str, Any]:
    with build_app(Settings(db=url)) as app:
        runner = KafkaProjectionRunner.subscribe(app, engine_for(url),
                                                 {"bootstrap_servers": bootstrap}, _Topics(topic))
        try:
            count, started = 0, time.perf_counter()
            while count < events:
                count += runner.run_once()
            return {"events": count, "seconds": time.perf_counter() - started}
        finally:
            runner.close()


class _Topics:
    """Just the event topic, for the runner's subscribe()."""

    def __init__(self, ticket_events: str) -> None:
        self.ticket_events = ticket_events


def from_kafka(bootstrap: str, topic: str, events: int) -> Figures:
    folder = Path(tempfile.mkdtemp(prefix="ticketflow-bench-kafka-rm-"))
    try:
        say(f"projections: plain consume of {events:,} records")
        plain = in_child(consume_plain, bootstrap, topic, events)
        say("projections: Kafka projection runner over the same records")
        ours = in_child(consume_projections, bootstrap, topic, events,
                        f"sqlite:///{folder / 'read-models.db'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return compared(rate(ours["events"], ours["seconds"]), rate(plain["events"], plain["seconds"]),
                    "events/s", events=ours["events"], seconds=round(ours["seconds"], 1),
                    peak_rss_mib=ours["peak_rss_mib"], baseline_peak_rss_mib=plain["peak_rss_mib"])
