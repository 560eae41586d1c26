#!/usr/bin/env bash
# gofmt, go vet, staticcheck and golangci-lint on the core module.
set -euo pipefail
. .ci/lib.sh
step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
step "go vet, staticcheck, golangci-lint (pinned, .golangci.yml)"
lint_module .
