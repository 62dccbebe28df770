"""Tooling beside the engine, never part of it: the engine does not import this package;
the command line, the tests and the benchmarks do (tests/unit/test_architecture.py).

- `workload`, `texts` and `demo` (with `demo_accounts` and `demo_webhooks`): the seeded
  demo workload (`ticketflow demo`), generated from the engine's own lifecycle table,
  shipped policies and calendars;
- `kafka_broker`: a local single-node Kafka broker (`ticketflow kafka start|stop|status`),
  whose Maven pom and log4j2 configuration ship as package data (`broker/`);
- `soak`: the whole pipeline under a steady load, audited
  (`python -m ticketflow.tools.soak`);
- `workers`: `ticketflow worker ROLE` as a child process, for the soak, fault tests and
  benchmarks;
- `asyncapi`: the AsyncAPI document of the Kafka door, generated from the code
  (`python -m ticketflow.tools.asyncapi` writes `schemas/asyncapi.json`).
"""
