#!/usr/bin/env bash
# The README's first command, with its output checked.
set -euo pipefail
. .ci/lib.sh
step "quickstart: the README's first command, output checked"
out=$(go run ./examples/quickstart)
printf '%s\n' "$out"
[ "$(printf '%s\n' "$out" | grep -c ' verified=true ')" -eq 9 ] || { echo "quickstart: want 9 verified events"; exit 1; }
printf '%s\n' "$out" | grep -q '^  reconciliation .* to_confirm .* verified=true ' || { echo "quickstart: no decision recovered by reconciliation"; exit 1; }
printf '%s\n' "$out" | grep -qx '9 events received; receiver stopped' || { echo "quickstart: no clean stop"; exit 1; }
