#!/usr/bin/env bash
# The router examples module (net/http, chi, gin, echo).
set -euo pipefail
. .ci/lib.sh
step "router examples (own module: net/http, chi, gin, echo)"
lint_module examples/routers
(cd examples/routers && go test -race -count=1 ./...)
