#!/usr/bin/env bash
# Short fuzz runs of every decoder of untrusted input (README: Fuzzing).
set -euo pipefail
. .ci/lib.sh
step "fuzz: every decoder of untrusted input, short runs (README: Fuzzing)"
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime="$3" "$1"; }
for t in FuzzParseRequest FuzzNotificationHandler; do fuzz . "$t" 20s; done
fuzz . FuzzParseTransactionKey 15s
for t in FuzzParseValues FuzzRouter FuzzParseRequestFastPath; do fuzz . "$t" 12s; done
for t in FuzzTransactionID FuzzParseStatus FuzzParseSubState FuzzNullStringUnmarshalJSON FuzzQueryUnescape; do fuzz . "$t" 6s; done
fuzz ./internal/clientip FuzzClientIP 12s
