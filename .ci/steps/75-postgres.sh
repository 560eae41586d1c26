#!/usr/bin/env bash
# The pgstore module against a throwaway PostgreSQL cluster on loopback:
# lint, contract suite, transactional completion and the crash test.
set -euo pipefail
. .ci/lib.sh
step "PostgreSQL on loopback for the pgstore module"

# pg_bindir prints the bin directory of the newest PostgreSQL installed
# from Debian's packages (/usr/lib/postgresql/<version>/bin).
pg_bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}
PG_BIN=$(pg_bindir) || { apt_install postgresql; PG_BIN=$(pg_bindir); }

# initdb refuses to run as root: as root, the cluster belongs to the
# postgres user that the package creates.
as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A port nobody listens on, from PGSTORE_PORT (5439 by default) up: several
# runs may share a machine.
PG_PORT=${PGSTORE_PORT:-5439}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 20); do
	port_free "$PG_PORT" && break
	PG_PORT=$((PG_PORT + 1))
done

PG_DIR=$(mktemp -d)
cleanup() {
	as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$PG_DIR"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"

as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
	{ cat "$PG_DIR/initdb.log"; exit 1; }
# Loopback only, the socket in the temporary directory. fsync and
# synchronous commits are off: the crash test kills the receiver's
# replicas, never the database, and nothing here outlives the step.
if ! as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
	start >/dev/null; then
	echo "PostgreSQL did not start:"; cat "$PG_DIR/server.log"; exit 1
fi
as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres cofidis
"$PG_BIN/postgres" --version
export PGSTORE_URL="postgres://postgres@127.0.0.1:$PG_PORT/cofidis?sslmode=disable"

step "pgstore module: vet, lint, contract suite, transactional completion, crash test (race detector on)"
lint_module pgstore
(cd pgstore && go test -race -count=1 -v ./... 2>&1 | quiet_v)

step "pgstore: benchmarks run a few iterations (no timing is checked)"
(cd pgstore && go test -run '^$' -bench '^BenchmarkRouter$' -benchtime=100x .)

# The crash test is about killed processes, not the toolchain: it runs once,
# above.
step "pgstore module with $GO_OLDEST: vet and tests"
test_oldest pgstore -skip '^TestCrash'
