package main

import (
	"cmp"
	"context"
	"flag"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

func versionCommand() command {
	return command{
		name: "version",
		usage: `Usage: cofidis version

Prints what this program was built from, one "key: value" per line:

  version:  the module version: vX.Y.Z when installed with
            'go install github.com/cofidis-go/cofidis/cmd/cofidis@vX.Y.Z',
            a pseudo-version (v0.0.0-<time>-<revision>, "+dirty" when
            modified) when built in a git checkout with VCS stamping, or
            "(devel)" when built without it
  revision: the commit it was built from (vcs.revision)
  time:     that commit's time (vcs.time)
  modified: whether the checkout had uncommitted changes (vcs.modified)
  go:       the Go version that built it

revision, time and modified are printed only when the build recorded them:
'go build' in a git checkout does (unless -buildvcs=false), 'go install
...@vX.Y.Z' does not.
`,
		setup: func(*flag.FlagSet) func(context.Context, env) error {
			return func(_ context.Context, e env) error {
				info, _ := debug.ReadBuildInfo()
				_, err := io.WriteString(e.stdout, formatVersion(info))
				return err
			}
		},
	}
}

// formatVersion returns what cofidis version prints for the build info
// info, nil when the program has none: "key: value" lines in a fixed order,
// the vcs.* ones only when recorded.
func formatVersion(info *debug.BuildInfo) string {
	if info == nil {
		return "version: unknown\ngo: " + runtime.Version() + "\n"
	}
	var b strings.Builder
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	// The main module's version is empty in test binaries.
	line("version", cmp.Or(info.Main.Version, "(devel)"))
	for _, s := range []struct{ setting, key string }{
		{"vcs.revision", "revision"},
		{"vcs.time", "time"},
		{"vcs.modified", "modified"},
	} {
		for _, bs := range info.Settings {
			if bs.Key == s.setting && bs.Value != "" {
				line(s.key, bs.Value)
				break
			}
		}
	}
	line("go", cmp.Or(info.GoVersion, runtime.Version()))
	return b.String()
}
