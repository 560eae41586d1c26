#!/usr/bin/env bash
# The README's first command, with its output checked.
set -euo pipefail
. .ci/lib.sh
step "quickstart: the README's first command, output checked"
out=$(go run ./examples/quickstart)
printf '%s\n' "$out"
[ "$(printf '%s\n' "$out" | grep -c ' verified=true ')" -eq 8 ] || { echo "quickstart: want 8 verified events"; exit 1; }
printf '%s\n' "$out" | grep -qx '8 events received; receiver stopped' || { echo "quickstart: no clean stop"; exit 1; }
