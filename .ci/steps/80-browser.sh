#!/usr/bin/env bash
# The redirect path in a real browser: the e2e module drives Debian's Chromium
# headless through a fake Cofidis journey page (README: Receiving redirects in
# a browser world; e2e/README.md).
set -euo pipefail
. .ci/lib.sh
step "chromium for the browser tests (Debian's package, unless CHROMIUM_PATH names one)"
if [ -z "${CHROMIUM_PATH:-}" ]; then
	apt_install chromium
	dpkg-query -W -f='chromium ${Version}\n' chromium
fi

step "e2e module: vet, lint, the redirect path in headless Chromium (race detector on)"
lint_module e2e
# The browser was installed above, so a test that finds none must fail, not
# skip: CI (set by the runner) says so. -v prints the headers the browser
# posted.
(cd e2e && CI="${CI:-true}" go test -race -count=1 -timeout 60s -v ./... 2>&1 | quiet_v)
