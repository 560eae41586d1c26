#!/usr/bin/env bash
# Short fuzz runs of every decoder of untrusted input (README: Fuzzing).
#
# Budgets are execution counts (-fuzztime=Nx), not durations. With a duration, Go's fuzz
# coordinator (before Go 1.27, golang/go#75804) can report the end of -fuzztime itself as
# "context deadline exceeded" and fail a target that found nothing; a count sets no deadline.
# A real failing input still fails the step, and is written to testdata/fuzz/.
# The counts are about 6 to 20 seconds of fuzzing each on two cores.
set -euo pipefail
. .ci/lib.sh
step "fuzz: every decoder of untrusted input, short runs (README: Fuzzing)"
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime="$3" "$1"; }
for t in FuzzParseRequest FuzzNotificationHandler; do fuzz . "$t" 200000x; done
fuzz . FuzzParseTransactionKey 150000x
for t in FuzzParseValues FuzzRouter FuzzParseRequestFastPath; do fuzz . "$t" 120000x; done
for t in FuzzTransactionID FuzzParseStatus FuzzParseSubState FuzzNullStringUnmarshalJSON FuzzQueryUnescape; do fuzz . "$t" 60000x; done
fuzz ./internal/clientip FuzzClientIP 120000x
