#!/usr/bin/env bash
# The core module with the lowest Go it declares (go 1.25.0): the go
# command fetches that toolchain from the module proxy like any module.
set -euo pipefail
. .ci/lib.sh
step "core module with $GO_OLDEST: vet and tests"
GOTOOLCHAIN=$GO_OLDEST go version
test_oldest .
