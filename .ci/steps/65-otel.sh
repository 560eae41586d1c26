#!/usr/bin/env bash
# The otelcofidis module: OpenTelemetry metrics and traces of a Router.
set -euo pipefail
. .ci/lib.sh
step "otelcofidis module: vet, lint, tests (race detector on), benchmark smoke run"
lint_module otelcofidis
(cd otelcofidis && go test -race -count=1 ./...)
# One iteration of each benchmark: they keep building and running.
out=$(cd otelcofidis && go test -run '^$' -bench . -benchtime=1x -count=1 ./... 2>&1) || { echo "$out"; exit 1; }

step "otelcofidis module with $GO_OLDEST: vet and tests"
test_oldest otelcofidis
