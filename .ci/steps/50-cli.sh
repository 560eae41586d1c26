#!/usr/bin/env bash
# The developer CLI runs.
set -euo pipefail
. .ci/lib.sh
step "cofidis CLI smoke"
go run ./cmd/cofidis -h >/dev/null
go run ./cmd/cofidis urls -base https://shop.example/payments -query order=A-1 >/dev/null
go run ./cmd/cofidis version
