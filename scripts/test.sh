#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
#   - PostgreSQL server, Java, Maven and kcat from Debian's packages, where missing
#     (the tests start private PostgreSQL clusters and a Kafka broker; kcat is the
#     non-Python client of the wire-format test)
#   - a virtualenv with ticketflow and its dev tools
#   - the Apache Kafka broker's jars, fetched once by Maven into ~/.cache
# Then: ruff, mypy and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v kcat >/dev/null || missing+=(kcat)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== python environment (.venv)"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -c constraints.txt -e '.[dev]'

echo "== Kafka broker jars"
.venv/bin/python -c "from ticketflow.kafka_broker import LocalKafka; LocalKafka().fetch_jars()"

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
MYPY="$PWD/.venv/bin/mypy" bash scripts/typecheck.sh

echo "== pytest"
.venv/bin/python -m pytest "$@"
