#!/usr/bin/env bash
# The API gate: gorelease (pinned) on every published module, against its
# latest release tag, or -base=none before the first one, for the version
# CHANGELOG.md announces. A change that breaks the API without the version
# saying so fails here.
#
# gorelease loads a module as its users would: from a proxy, without
# replace directives. So this step works on a throwaway clone of HEAD, where
# .ci/releaseproxy publishes every module at its tags and at the version
# being released into a local proxy, and the nested modules drop their
# replace directive and resolve the core from that proxy, as users will.
# It also uses a module cache of its own: the proxy publishes the working
# tree under a version number (the one being released) that an earlier run
# on the same machine may have cached with other contents, and the go
# command never downloads a cached version again.
set -euo pipefail
. .ci/lib.sh
step "API gate: gorelease on every published module (HEAD, as its users will get it)"
go install "$GORELEASE"
version=$(release_version)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
git clone -q "$CI_ROOT" "$work/repo"
(cd "$work/repo/.ci/releaseproxy" && go run . -repo ../.. -out "$work/proxy" -version "$version" $PUBLISHED_MODULES)
upstream=$(go env GOPROXY)
export GONOSUMDB=github.com/cofidis-go GOFLAGS= GOMODCACHE="$work/modcache"
# use_proxy_without MODULE_DIR: the proxy, minus the version of the module
# gorelease is about to check, which would otherwise "already exist".
use_proxy_without() {
	local view="$work/proxy-${1//\//-}" path
	rm -rf "$view"
	cp -r "$work/proxy" "$view"
	path=$(cd "$work/repo/$1" && go list -m)
	rm -f "$view/$path/@v/$version".*
	sed -i "/^${version}\$/d" "$view/$path/@v/list"
	export GOPROXY="file://$view,$upstream"
}
cd "$work/repo"
for m in $PUBLISHED_MODULES; do
	[ "$m" = . ] && continue
	use_proxy_without "$m"
	(cd "$m" && go mod edit -dropreplace=github.com/cofidis-go/cofidis && go mod tidy)
done
git -c user.name=ci -c user.email=ci@localhost commit -q -am "as published: no replace directive"
for m in $PUBLISHED_MODULES; do
	base=none
	latest=$(git tag --list "$(tag_of "$m" 'v*')" | sed "s#^$m/##" | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
	[ -n "$latest" ] && base=$latest
	printf '\n-- %s: %s (base %s)\n' "$m" "$(tag_of "$m" "$version")" "$base"
	use_proxy_without "$m"
	(cd "$m" && gorelease -base="$base" -version="$version")
done
