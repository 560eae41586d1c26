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
