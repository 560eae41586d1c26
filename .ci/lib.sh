# Shared by .ci/run and every script in .ci/steps: sourced, never run.
# Pinned tools, and helpers to install what a fresh machine lacks.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOLANGCI_LINT=github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

step() { printf '\n== %s\n' "$*"; }

# apt_install PKG...: installs Debian packages that are missing.
apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ -z "${CI_APT_UPDATED:-}" ]; then
		apt-get update -qq
		export CI_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# lint_module DIR: the checks every module of the repository passes.
lint_module() {
	(
		cd "$1"
		[ "$1" = . ] || go mod tidy -diff
		go vet ./...
		staticcheck ./...
		golangci-lint run --config "$CI_ROOT/.golangci.yml" ./...
	)
}

# test_oldest DIR [go test flags]: vet and test the module in DIR with
# $GO_OLDEST, besides the current Go.
test_oldest() {
	local dir=$1
	shift
	(cd "$dir" && GOTOOLCHAIN=$GO_OLDEST go vet ./... && GOTOOLCHAIN=$GO_OLDEST go test -count=1 "$@" ./...)
}

# quiet_v: the output of go test -v without the lines of tests that passed.
quiet_v() { grep -Ev '^(=== (RUN|PAUSE|CONT)|\s+--- PASS)'; }

# The lowest Go every library module declares (go 1.25.0), tested besides
# the current one; the go command fetches it from the module proxy.
GO_OLDEST=go1.25.14
GORELEASE=golang.org/x/exp/cmd/gorelease@v0.0.0-20261113113407-e3970619a1a4

# The published modules, by directory, released together with one version.
PUBLISHED_MODULES=". redisstore pgstore otelcofidis"

# tag_of MODULE_DIR VERSION: the tag of a module's version.
tag_of() { if [ "$1" = . ]; then echo "$2"; else echo "$1/$2"; fi; }

# release_version: the version about to be released, from CHANGELOG.md: the
# topmost "## [vX.Y.Z]" heading not tagged yet; when every heading is
# tagged, the next patch of the latest tag (so that an API change needs a
# new heading, which says what kind of version it is).
release_version() {
	local v
	for v in $(grep -oE '^## \[v[0-9]+\.[0-9]+\.[0-9]+\]' CHANGELOG.md | tr -d '#[] '); do
		if ! git rev-parse -q --verify "refs/tags/$v" >/dev/null; then echo "$v"; return; fi
	done
	v=$(git tag --list 'v*' | sort -V | tail -n 1)
	[ -n "$v" ] || { echo "v0.0.1"; return; }
	local IFS=.; set -- ${v#v}; echo "v$1.$2.$(($3 + 1))"
}
