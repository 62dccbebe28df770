"""Tooling beside the engine, never part of it: nothing outside this package imports it
except the command line.

- `workload`, `texts` and `demo`: the seeded demo workload (`ticketflow demo`), generated from
  the engine's own lifecycle table, shipped policies and calendars;
- `kafka_broker`: a local single-node Kafka broker (`ticketflow kafka start|stop|status`),
  whose Maven pom and log4j2 configuration ship as package data (`broker/`);
- `soak`: the whole pipeline under a steady load, audited
  (`python -m ticketflow.tools.soak`);
- `workers`: `ticketflow worker ROLE` as a child process, for the soak, fault tests and
  benchmarks.
"""
