package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	t.Parallel()
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{
			name: "go install at a tag",
			info: &debug.BuildInfo{GoVersion: "go1.25.3", Main: debug.Module{Path: "github.com/cofidis-go/cofidis", Version: "v1.2.0"},
				Settings: vcs("-buildmode", "exe", "CGO_ENABLED", "0")},
			want: "version: v1.2.0\ngo: go1.25.3\n",
		},
		{
			name: "go build in a modified checkout, settings in any order",
			info: &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20260301100000-0123456789ab+dirty"},
				Settings: vcs("vcs.modified", "true", "vcs", "git", "vcs.time", "2026-03-01T10:00:00Z",
					"vcs.revision", "0123456789abcdef0123456789abcdef01234567")},
			want: "version: v0.0.0-20260301100000-0123456789ab+dirty\n" +
				"revision: 0123456789abcdef0123456789abcdef01234567\n" +
				"time: 2026-03-01T10:00:00Z\n" +
				"modified: true\n" +
				"go: go1.26.0\n",
		},
		{
			name: "built without VCS stamping",
			info: &debug.BuildInfo{GoVersion: "go1.25.0", Main: debug.Module{Version: "(devel)"}},
			want: "version: (devel)\ngo: go1.25.0\n",
		},
		{
			name: "test binary: no version, no Go version",
			info: &debug.BuildInfo{},
			want: "version: (devel)\ngo: " + runtime.Version() + "\n",
		},
		{
			name: "no build info",
			want: "version: unknown\ngo: " + runtime.Version() + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := formatVersion(tc.info); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := cli(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "version: ") || lines[len(lines)-1] != "go: "+runtime.Version() {
		t.Errorf("output:\n%s", stdout)
	}
	if code, _, stderr := cli(t, "version", "extra"); code != 2 || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, stderr %q; want 2", code, stderr)
	}
}
