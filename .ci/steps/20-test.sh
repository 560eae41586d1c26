#!/usr/bin/env bash
# The README's test command.
set -euo pipefail
. .ci/lib.sh
step "tests: the README's test command (race detector on)"
go test -race -count=1 ./...
