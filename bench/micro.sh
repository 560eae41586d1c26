#!/usr/bin/env bash
# Micro-benchmarks of BENCHMARKS.md: the library's handlers against the
# hand-written baseline, interleaved run by run (so that a noisy machine
# hurts both sides alike) and summarised with benchstat.
#
#   bench/micro.sh [runs]     # default 10 runs; results in bench/results/
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-10}
out=bench/results
mkdir -p "$out"
export PATH="$(go env GOPATH)/bin:$PATH"
command -v benchstat >/dev/null ||
	go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

go test -c -o "$out/cofidis.test" .
: >"$out/micro.txt"
for i in $(seq "$runs"); do
	printf 'run %d/%d\r' "$i" "$runs" >&2
	"$out/cofidis.test" -test.run '^$' -test.benchmem -test.count 1 \
		-test.bench '^Benchmark(BaselineHandler|NotificationRoute|RouterNotification|RedirectRoute|ParseRequest|RequestConstruction|ParseTransactionKey|ParseStatus)$' \
		>>"$out/micro.txt"
done
echo >&2

benchstat "$out/micro.txt"
echo
echo "== library notification handler vs the hand-written baseline"
benchstat -col .name -filter '.name:(BaselineHandler OR NotificationHandler) .unit:(sec/op OR allocs/op)' "$out/micro.txt"
