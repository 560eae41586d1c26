#!/usr/bin/env bash
# The redisstore module against a real redis-server on loopback.
set -euo pipefail
. .ci/lib.sh
step "redis-server on loopback for the redisstore module"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server
REDIS_PORT=6399
REDIS_LOG="$(mktemp)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >"$REDIS_LOG" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then break; fi
	sleep 0.1
done
[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping)" = PONG ] || { echo "redis-server did not start:"; cat "$REDIS_LOG"; exit 1; }
export REDIS_ADDR="127.0.0.1:$REDIS_PORT"

step "redisstore module: vet, lint, contract suite (the Tracker's too), load test and reconciliation at scale (race detector on)"
lint_module redisstore
# The cluster tests need the cluster: 71-redis-cluster.sh runs them.
(cd redisstore && go test -race -count=1 -v -skip '^TestCluster' ./... 2>&1 | quiet_v)

step "redisstore on one redis-server: benchmarks run a few iterations (no timing is checked)"
(cd redisstore && go test -run '^$' -bench '^BenchmarkRouter$/^single$' -benchtime=100x .)

step "redisstore on one redis-server with $GO_OLDEST: vet and tests"
test_oldest redisstore -skip '^TestCluster'
