"""`python -m bench`: every benchmark, each figure beside its same-run baseline, as JSON.

    python -m bench [--only write,audit_log,relay,projections,latency,growth,long_ticket,http]
                    [--events N]

Progress goes to stderr, the JSON document to stdout. The services (a private
PostgreSQL cluster and Kafka broker) are started here and stopped at the end; large
histories are built once and cached in ~/.cache/ticketflow/bench. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack

from bench import (
    audit_log,
    dataset,
    growth,
    http,
    latency,
    long_ticket,
    projections,
    relay,
    write,
)
from bench.common import Figures, emit, kafka, machine, postgres, say

BENCHMARKS = ("write", "audit_log", "relay", "projections", "latency", "growth", "long_ticket",
              "http")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help="comma-separated benchmarks to run (default: all)")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events replayed from the local log (default 1,000,000)")
    parser.add_argument("--kafka-events", type=int, default=250_000,
                        help="events relayed to Kafka and projected from it (default 250,000)")
    parser.add_argument("--rate", type=int, default=500,
                        help="commands per second of the latency benchmark (default 500)")
    parser.add_argument("--http-rate", type=int, default=200,
                        help="commands per second of the HTTP benchmark's steady load"
                        " (default 200)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)};"
                     f" choose from {', '.join(BENCHMARKS)}")
    started = time.perf_counter()
    document: Figures = {"machine": machine(), "results": {}}
    results = document["results"]
    with ExitStack() as services:
        fresh_pg = services.enter_context(postgres()) \
            if {"write", "audit_log", "latency", "growth", "http"} & set(chosen) \
            else None
        bootstrap = services.enter_context(kafka()) \
            if {"relay", "projections", "latency"} & set(chosen) else ""
        if "write" in chosen and fresh_pg:
            results["write"] = write.run({"sqlite": write.sqlite_maker(), "postgresql": fresh_pg})
        if "audit_log" in chosen:
            results["audit_log"] = audit_log.run(write.sqlite_maker(), 300, fresh_pg)
        # before the bulk Kafka work, on a broker that has nothing else to do
        if "latency" in chosen and fresh_pg:
            results["latency"] = latency.run(bootstrap, fresh_pg(), rate=args.rate)
        if "projections" in chosen:
            history, _ = dataset.history(args.events)
            results["projections"] = {"local": projections.local(history)}
        if {"relay", "projections"} & set(chosen):
            history, _ = dataset.history(args.kafka_events)
            results["relay"], topic, events = relay.run(history, bootstrap)
            if "projections" in chosen:
                results["projections"]["kafka"] = projections.from_kafka(bootstrap, topic, events)
        if "growth" in chosen and fresh_pg:
            results["growth"] = growth.run({"sqlite": write.sqlite_maker(),
                                            "postgresql": fresh_pg})
        if "long_ticket" in chosen:
            results["long_ticket"] = long_ticket.run()
        if "http" in chosen and fresh_pg:
            results["http"] = http.run({"sqlite": write.sqlite_maker(), "postgresql": fresh_pg},
                                       rate=args.http_rate)
    document["seconds"] = round(time.perf_counter() - started, 1)
    say(f"done in {document['seconds']} s")
    emit(document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
