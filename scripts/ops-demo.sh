#!/usr/bin/env bash
# A bounded 3-worker run on PostgreSQL + a local Kafka broker, for the runbook
# (docs/operations.md, "A 3-worker run, followed from its logs and metrics").
#
# Starts a private PostgreSQL (tests/support/postgres.py) and a local KRaft broker on
# free loopback ports in temp dirs; runs 3 `worker commands` (w1..w3), one relay and one
# projections worker with JSON logs; publishes 50 commands + 1 rejected one; SIGKILLs w2
# and restarts it with the same id; scrapes /metrics; SIGTERMs everything; stops the
# broker and the server and deletes their dirs.
#
# Usage: scripts/ops-demo.sh OUT_DIR     (logs and metric scrapes are left in OUT_DIR)
# Run from the repository root with its .venv installed. About 2 minutes.
set -euo pipefail

OUT=${1:?usage: scripts/ops-demo.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
TF="$ROOT/.venv/bin/ticketflow"
TMP=$(mktemp -d /tmp/ticketflow-opsdemo-XXXXXX)
chmod 755 "$TMP"   # the server runs as `postgres` when run as root
PG_BASE="$TMP/pg"
KAFKA_DIR="$TMP/kafka"
declare -A PIDS=()

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

KAFKA_PORT=$(free_port)
CONTROLLER_PORT=$(free_port)

cleanup() {
    for name in "${!PIDS[@]}"; do
        kill -TERM "${PIDS[$name]}" 2>/dev/null || true
    done
    for name in "${!PIDS[@]}"; do
        wait "${PIDS[$name]}" 2>/dev/null || true
    done
    "$TF" kafka stop --port "$KAFKA_PORT" --controller-port "$CONTROLLER_PORT" \
        --data-dir "$KAFKA_DIR" >/dev/null 2>&1 || true
    PYTHONPATH="$ROOT" "$PY" -c '
import sys; from pathlib import Path
from tests.support.postgres import PostgresCluster
PostgresCluster(Path(sys.argv[1])).stop()' "$PG_BASE" || true
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "== PostgreSQL"
DB=$(PYTHONPATH="$ROOT" "$PY" -c '
import sys; from pathlib import Path
from tests.support.postgres import PostgresCluster, create_database
cluster = PostgresCluster(Path(sys.argv[1])); cluster.start()
print(create_database(cluster.server_url))' "$PG_BASE")
echo "$DB"

echo "== Kafka on 127.0.0.1:$KAFKA_PORT"
"$TF" kafka start --port "$KAFKA_PORT" --controller-port "$CONTROLLER_PORT" \
    --data-dir "$KAFKA_DIR" --timeout 90

export TICKETFLOW_DB="$DB" TICKETFLOW_KAFKA="127.0.0.1:$KAFKA_PORT"
export TICKETFLOW_LOG_FORMAT=json TICKETFLOW_TOPIC_PREFIX="opsdemo."

# role worker-id metrics-port
start_worker() {
    local role=$1 id=$2 port=$3
    "$TF" worker "$role" --worker-id "$id" --metrics-port "$port" \
        >>"$OUT/$id.out" 2>>"$OUT/$id.log" &
    PIDS[$id]=$!
    echo "started $role $id (pid ${PIDS[$id]}, metrics :$port)"
}

scrape() {
    local label=$1
    for id in "${!PORTS[@]}"; do
        curl -s "http://127.0.0.1:${PORTS[$id]}/metrics" | grep '^ticketflow_' \
            >"$OUT/metrics-$label-$id.txt" || true
    done
}

declare -A PORTS=([w1]=$(free_port) [w2]=$(free_port) [w3]=$(free_port)
                  [relay]=$(free_port) [projections]=$(free_port))

echo "== workers"
start_worker commands w1 "${PORTS[w1]}"
sleep 5   # the first one creates the topics
start_worker commands w2 "${PORTS[w2]}"
start_worker commands w3 "${PORTS[w3]}"
start_worker relay relay "${PORTS[relay]}"
start_worker projections projections "${PORTS[projections]}"
sleep 20

echo "== commands"
"$PY" - "$OUT" <<'EOF'
import json, sys
from datetime import UTC, datetime, timedelta
out = sys.argv[1]
start = datetime.now(UTC) - timedelta(minutes=4)
agent = {"id": "agent-7", "role": "agent"}
customer = {"id": "user-42", "role": "customer"}
n = 0
def line(kind, ticket, actor, payload):
    global n
    n += 1
    at = (start + timedelta(seconds=n)).isoformat()
    return json.dumps({"message_id": f"ops-{n:04d}", "type": kind, "tenant": "personalysispro",
                       "ticket_id": ticket, "occurred_at": at, "actor": actor,
                       "payload": payload})
def ticket(i):
    t = f"T-{2000 + i}"
    yield line("create_ticket", t, customer, {
        "account_id": "acme", "plan": "professional", "timezone": "America/New_York",
        "channel": "email", "category": "technical", "subcategory": "performance",
        "priority": "high", "subject": "Exports time out", "description": "..."})
    yield line("acknowledge", t, agent, {})
    for k in range(3):
        yield line("add_comment", t, agent if k % 2 else customer, {"body": f"note {k}"})
with open(f"{out}/commands-1.jsonl", "w") as f:
    for i in range(1, 9):
        f.writelines(l + "\n" for l in ticket(i))
    # rejected by the domain (a customer may not acknowledge): a dead letter
    f.write(line("acknowledge", "T-2001", customer, {}) + "\n")
with open(f"{out}/commands-2.jsonl", "w") as f:
    for i in range(9, 11):
        f.writelines(l + "\n" for l in ticket(i))
EOF
"$TF" publish "$OUT/commands-1.jsonl" >"$OUT/publish-1.out"
sleep 15
scrape during

echo "== SIGKILL w2, restart it"
kill -KILL "${PIDS[w2]}"; wait "${PIDS[w2]}" 2>/dev/null || true
echo "{\"demo\": \"w2 SIGKILLed at $(date -u +%FT%TZ)\"}" >>"$OUT/w2.log"
sleep 3
start_worker commands w2 "${PORTS[w2]}"
sleep 15
"$TF" publish "$OUT/commands-2.jsonl" >"$OUT/publish-2.out"
sleep 15
scrape after-restart

echo "== SIGTERM"
for id in w1 w2 w3 relay projections; do kill -TERM "${PIDS[$id]}"; done
for id in w1 w2 w3 relay projections; do
    wait "${PIDS[$id]}" 2>/dev/null && echo "$id exit 0" || echo "$id exit $?"
    unset "PIDS[$id]"
done
echo "logs and metrics in $OUT"
