#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
#   - PostgreSQL server, Java, Maven, kcat, faketime and Chromium from Debian's packages,
#     where missing (the tests start private PostgreSQL clusters and a Kafka broker; kcat
#     is the non-Python client of the wire-format test; faketime moves the clock ahead;
#     the web console's tests drive Chromium with Playwright, never `playwright install`)
#   - a virtualenv with ticketflow and its dev tools
#   - the Apache Kafka broker's jars, fetched once by Maven into ~/.cache
#   - the official AsyncAPI parser (npm, pinned) into .cache/asyncapi
# Then: ruff, mypy and pytest; then the same tests again with the clock a year ahead, to
# prove that no outcome depends on the date the suite runs (TICKETFLOW_CLOCK_AHEAD=0
# skips those two passes in a quick local loop). Extra arguments go to every pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v kcat >/dev/null || missing+=(kcat)
command -v faketime >/dev/null || missing+=(faketime)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== python environment (.venv)"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -c constraints.txt -e '.[dev]'

echo "== the AsyncAPI parser (@asyncapi/parser, pinned) in .cache/asyncapi"
command -v node >/dev/null || { echo "node (Node.js 20+) is missing" >&2; exit 1; }
[ -d .cache/asyncapi/node_modules/@asyncapi/parser ] && \
  grep -q '"version": "3.6.6"' .cache/asyncapi/node_modules/@asyncapi/parser/package.json || \
  npm install --silent --no-audit --no-fund --ignore-scripts --save-exact \
    --prefix .cache/asyncapi @asyncapi/parser@3.6.6

echo "== Kafka broker jars"
.venv/bin/python -c "from ticketflow.tools.kafka_broker import LocalKafka; LocalKafka().fetch_jars()"

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
MYPY="$PWD/.venv/bin/mypy" bash scripts/typecheck.sh

echo "== AsyncAPI document (official parser; tests/integration/test_asyncapi_parser.py too)"
node scripts/asyncapi-validate.cjs schemas/asyncapi.json

# pytest exits 5 when a marker leaves nothing to run (e.g. only unit tests were asked for).
allowing_none() { local rc=0; "$@" || rc=$?; [ "$rc" = 5 ] && rc=0; return "$rc"; }

# Each pass runs as two halves side by side: the tests without Kafka or child processes
# in the background, the rest in the foreground. They share no test, and each has its
# own PostgreSQL cluster, ports and temporary directory; on two cores the pair takes
# about the time of the longer half, not of both (CI stays well inside its 45 minutes).
# The background half's output is shown when both are done.
#   side_by_side NAME [PREFIX...] -- [ENV...]
#     PREFIX runs the background half (e.g. under faketime), ENV is set for the other.
side_by_side() {
  local name=$1; shift
  local prefix=()
  while [ "$1" != -- ]; do prefix+=("$1"); shift; done
  shift
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  local ahead rc_bg=0 rc_fg=0 bg
  ahead=$(mktemp -d)
  echo "== pytest, $name: tests without Kafka or child processes (in the background;"
  echo "   its output follows the other half's)"
  allowing_none env "${prefix[@]}" .venv/bin/python -m pytest \
    -m "not kafka and not processes" --basetemp "$ahead/tmp" "$@" > "$ahead/output" 2>&1 &
  bg=$!
  echo "== pytest, $name: Kafka and child processes"
  allowing_none env "${envs[@]}" .venv/bin/python -m pytest -m "kafka or processes" \
    "$@" || rc_fg=$?
  wait "$bg" || rc_bg=$?
  echo "== pytest, $name: tests without Kafka or child processes, its output"
  cat "$ahead/output"
  rm -rf "$ahead"
  [ "$rc_bg" = 0 ] && [ "$rc_fg" = 0 ]
}

rc=0
side_by_side "today" -- -- "$@" || rc=1

if [ "${TICKETFLOW_CLOCK_AHEAD:-1}" != 0 ]; then
  # The same tests a year ahead. libfaketime moves the whole process 400 days ahead:
  # Python's clock, SQLite's, the tests' own. It cannot carry the tests with worker
  # processes (timed semaphore waits fail under it) or Kafka (a broker refuses records
  # from a year ahead), and the servers stay on real time; those move the engine's own
  # clock instead: every component that reads the time (timers, recorded_at, the soak's
  # stories, default as-of instants) in this process and in the workers it starts.
  side_by_side "a year from now (faketime +400d; the engine's clock, TICKETFLOW_CLOCK=+400d)" \
    FAKETIME_SKIP_CMDS=java,postgres,initdb,pg_ctl,pg_ctlcluster,chromium \
    faketime -f +400d -- TICKETFLOW_CLOCK=+400d -- "$@" || rc=1
fi
exit "$rc"
