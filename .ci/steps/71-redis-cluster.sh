#!/usr/bin/env bash
# The redisstore module against a real Redis Cluster on loopback: three
# masters, three replicas, and a failover. Arguments are passed to go test
# (bash .ci/steps/71-redis-cluster.sh -run TestCluster_failover -args -cluster.client=defaults).
set -euo pipefail
. .ci/lib.sh
step "Redis Cluster on loopback (3 masters + 3 replicas) for the redisstore module"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server
redis_major=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
[ "${redis_major:-0}" -ge 7 ] || { echo "redis-server 7 or later needed, found: $(redis-server --version)"; exit 1; }

CLUSTER_PORTS=(7301 7302 7303 7304 7305 7306) # cluster bus: port + 10000
CLUSTER_DIR="$(mktemp -d)"
CLUSTER_PIDS=()
stop_cluster() {
	for pid in "${CLUSTER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${CLUSTER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$CLUSTER_DIR"
}
trap stop_cluster EXIT
cluster_logs() {
	for port in "${CLUSTER_PORTS[@]}"; do echo "-- node $port:"; tail -n 20 "$CLUSTER_DIR/$port.log"; done
}
# wait_for DESCRIPTION COMMAND...: runs COMMAND every 0.1s until it succeeds,
# for at most 30s.
wait_for() {
	local what=$1
	shift
	for _ in $(seq 1 300); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "timed out waiting for $what"
	cluster_logs
	exit 1
}

# A 2s node timeout (Redis' default is 15s) keeps the failover test short.
# DEBUG is allowed on loopback for the test's -cluster.failure=hang.
for port in "${CLUSTER_PORTS[@]}"; do
	mkdir "$CLUSTER_DIR/$port"
	redis-server --bind 127.0.0.1 --port "$port" --dir "$CLUSTER_DIR/$port" \
		--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
		--appendonly no --save '' --enable-debug-command local >"$CLUSTER_DIR/$port.log" 2>&1 &
	CLUSTER_PIDS+=($!)
done
node_up() { [ "$(redis-cli -p "$1" ping)" = PONG ]; }
for port in "${CLUSTER_PORTS[@]}"; do wait_for "node $port to start" node_up "$port"; done
addrs=()
for port in "${CLUSTER_PORTS[@]}"; do addrs+=("127.0.0.1:$port"); done
redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 ||
	{ cat "$CLUSTER_DIR/create.log"; cluster_logs; exit 1; }
cluster_ok() { redis-cli -p "$1" cluster info | grep -q '^cluster_state:ok'; }
replica_synced() {
	local info
	info=$(redis-cli -p "$1" info replication)
	! grep -q '^role:slave' <<<"$info" || grep -q '^master_link_status:up' <<<"$info"
}
for port in "${CLUSTER_PORTS[@]}"; do
	wait_for "cluster_state:ok on node $port" cluster_ok "$port"
	wait_for "node $port's replication link" replica_synced "$port"
done
redis-cli -p "${CLUSTER_PORTS[0]}" cluster nodes | awk '{print "  " $2, $3, $9}'
REDIS_CLUSTER_ADDRS=$(IFS=,; echo "${addrs[*]}")
export REDIS_CLUSTER_ADDRS

step "redisstore on the cluster: benchmarks run a few iterations (no timing is checked)"
(cd redisstore && go test -run '^$' -bench '^BenchmarkRouter$/^cluster$' -benchtime=100x .)

step "redisstore on the cluster: contract suite, key placement, routing, round trips, load, a failover and reconciliation at scale (race detector on)"
(cd redisstore && go test -race -count=1 -v -run '^TestCluster' . "$@" 2>&1 | quiet_v)
