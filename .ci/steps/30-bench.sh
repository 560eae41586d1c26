#!/usr/bin/env bash
# Benchmarks compile and run a few iterations; no timing is checked.
set -euo pipefail
. .ci/lib.sh
step "benchmarks compile and run a few iterations (no timing is checked; see BENCHMARKS.md)"
go test -run '^$' -bench . -benchtime=100x ./...
go run ./bench/loadgen -rounds 1 -warmup 0s -duration 1s
go run ./bench/loadgen -modes flood-unlimited,flood -rounds 1 -warmup 0s -duration 1s
