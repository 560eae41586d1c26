package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cofidis-go/cofidis/cofidistest"
)

// listenRun is a 'cofidis listen' running in process on 127.0.0.1:0.
type listenRun struct {
	t      *testing.T
	start  listening
	base   string // http://<listening address>
	lines  chan string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int

	stopOnce sync.Once
	code     int
	rest     []string
}

// startListen runs listen with args and waits for its startup line. It is
// stopped at the end of the test if stop was not called.
func startListen(t *testing.T, args ...string) *listenRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	outR, outW := io.Pipe()
	l := &listenRun{t: t, lines: make(chan string, 1000), stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		l.done <- run(ctx, append([]string{"listen", "-addr", "127.0.0.1:0"}, args...), outW, l.stderr)
		outW.Close()
	}()
	go func() {
		// Lines are printed before the answer: read them at once, so that
		// a sender never waits for the test.
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		close(l.lines)
		_, _ = io.Copy(io.Discard, outR)
	}()
	t.Cleanup(func() { l.stop() })
	if err := json.Unmarshal([]byte(l.next()), &l.start); err != nil {
		t.Fatalf("startup line: %v", err)
	}
	l.base = "http://" + l.start.Listening
	return l
}

// next returns the next line on stdout.
func (l *listenRun) next() string {
	l.t.Helper()
	line, ok := <-l.lines
	if !ok {
		l.t.Fatalf("listen stopped; stderr:\n%s", l.stderr.String())
	}
	return line
}

// stop interrupts listen and returns its exit status and the lines it
// printed that next did not return.
func (l *listenRun) stop() (code int, rest []string) {
	l.stopOnce.Do(func() {
		l.cancel()
		for line := range l.lines {
			l.rest = append(l.rest, line)
		}
		l.code = <-l.done
	})
	return l.code, l.rest
}

// eventFields decodes an event line into its members.
func eventFields(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return m
}

func TestListenRecord(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "recordings")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Numbering goes on after the files already there.
	for _, name := range []string{"000041-notificationUrlOther.json", "notes.txt", "7-x.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := startListen(t, "-record", dir)
	if want := "do not share them or commit them"; !strings.Contains(l.stderr.String(), want) || !strings.Contains(l.stderr.String(), "level=WARN") {
		t.Errorf("no warning on stderr when recording starts:\n%s", l.stderr.String())
	}

	code, stdout, stderr := cli(t, "send", "-url", l.start.URLs.NotificationURLPending, "-status", "pending", "-substate", "signed")
	if code != 0 {
		t.Fatalf("send: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	l.next()
	// A request the receiver rejects is recorded too, before its answer.
	res, err := http.Post(l.base+"/elsewhere", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path answered %d, want 404", res.StatusCode)
	}
	for _, name := range []string{"000042-notificationUrlPending.json", "000043-unknown.json"} {
		rec, err := readRecording(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(rec.RemoteAddr, "127.0.0.1:") || rec.ReceivedAt.IsZero() || rec.Host != wireText(l.start.Listening) {
			t.Errorf("%s: remoteAddr %q, receivedAt %v, host %q", name, rec.RemoteAddr, rec.ReceivedAt, rec.Host)
		}
	}

	// A request that cannot be recorded is answered 500 and not processed.
	if runtime.GOOS != "windows" { // which cannot remove an open directory
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		code, stdout, _ = cli(t, "send", "-url", l.start.URLs.NotificationURLOther, "-status", "Refused")
		if code != 1 || !strings.Contains(stdout, "< 500 Internal Server Error") {
			t.Errorf("unrecordable request: exit %d\n%s", code, stdout)
		}
	}
	code, rest := l.stop()
	if code != 0 || len(rest) != 0 {
		t.Errorf("exit %d, lines after the first event: %q", code, rest)
	}
	if runtime.GOOS != "windows" && !strings.Contains(l.stderr.String(), "request not recorded; answered 500") {
		t.Errorf("stderr lacks the recording failure:\n%s", l.stderr.String())
	}
}

func TestListenRecordFailures(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "listen", "-addr", "127.0.0.1:0", "-record", file)
	if code != 1 || stdout != "" {
		t.Errorf("-record on a file: exit %d, stdout %q", code, stdout)
	}
	oneLineOnStderr(t, stderr, "cofidis listen: -record: ")
}

func TestListenDedupe(t *testing.T) {
	t.Parallel()
	l := startListen(t, "-dedupe")
	key := []string{"-merchant-transaction-id", "dedupe-1", "-merchant-transaction-date", "20260227"}
	code, stdout, stderr := cli(t, append([]string{"simulate", "-base", l.base, "-journey", "pending-accepted",
		"-notifications-first", "-repeat", "1"}, key...)...)
	if code != 0 {
		t.Fatalf("simulate: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	// A late pending check, after to_confirm: stale. (A late plain pending
	// would be a duplicate: that decision was processed.)
	code, stdout, stderr = cli(t, append([]string{"send", "-url", l.start.URLs.NotificationURLPending, "-status", "pending", "-substate", "scoring"}, key...)...)
	if code != 0 {
		t.Fatalf("send: exit %d, stderr %q\n%s", code, stderr, stdout)
	}

	type line struct{ endpoint, status, subState, outcome string }
	want := []struct {
		line
		duplicate, stale bool
	}{
		{line: line{"notificationUrlPending", "pending", "", ""}},
		{line: line{"notificationUrlPending", "pending", "", "duplicate"}, duplicate: true},
		{line: line{"notificationUrlPending", "pending", "signed", ""}},
		{line: line{"notificationUrlPending", "pending", "signed", "duplicate"}, duplicate: true},
		{line: line{"notificationUrlPending", "to_confirm", "", ""}},
		{line: line{"notificationUrlPending", "to_confirm", "", "duplicate"}, duplicate: true},
		// The redirect, always dispatched: pending was processed, and
		// the transaction is further along.
		{line: line{"returnUrlOther", "pending", "", ""}, duplicate: true, stale: true},
		{line: line{"notificationUrlPending", "pending", "scoring", "stale"}, stale: true},
	}
	for i, w := range want {
		m := eventFields(t, l.next())
		got := line{m["endpoint"].(string), m["status"].(string), m["subState"].(string), ""}
		if o, ok := m["outcome"]; ok {
			got.outcome = o.(string)
		}
		dup, _ := m["duplicate"].(bool)
		stale, _ := m["stale"].(bool)
		if got != w.line || dup != w.duplicate || stale != w.stale {
			t.Errorf("line %d: %v duplicate=%v stale=%v, want %v duplicate=%v stale=%v", i, got, dup, stale, w.line, w.duplicate, w.stale)
		}
	}
	if code, rest := l.stop(); code != 0 || len(rest) != 0 {
		t.Errorf("exit %d, extra lines %q", code, rest)
	}
}

// TestRecordReplayRoundTrip records journeys with one listen and replays
// every file on a second: the second prints the same events.
func TestRecordReplayRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startListen(t, "-record", dir)
	runs := [][]string{
		{"simulate", "-journey", "accepted", "-query", "order=A-1", "-query", "shop=fr"},
		{"simulate", "-journey", "pending-accepted", "-repeat", "1", "-provider-transaction-id", "PSP-9"},
		{"simulate", "-journey", "refused", "-notifications-first", "-omit-provider-transaction-id"},
		{"simulate", "-journey", "error"},
	}
	for _, args := range runs {
		args = append(args, "-base", first.base)
		if code, stdout, stderr := cli(t, args...); code != 0 {
			t.Fatalf("%q: exit %d, stderr %q\n%s", args, code, stderr, stdout)
		}
	}
	// An unknown status, a multi-line key, and a request the receiver
	// rejects (a repeated field): recorded as well.
	if code, stdout, stderr := cli(t, "send", "-url", first.start.URLs.NotificationURLOther+"?order=Z%2F9", "-status", "Partially_Validated",
		"-multiline", "-merchant-transaction-id", "é-1"); code != 0 {
		t.Fatalf("send: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	bad := cofidistest.Request{Endpoint: 0, Key: cofidistest.NewKey(cofidistest.KeyOptions{}), Status: "Refused", RepeatStatus: true}
	req, err := bad.NewClientRequest(t.Context(), first.start.URLs.NotificationURLOther)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	code, recorded := first.stop()
	if code != 0 {
		t.Fatalf("first listen: exit %d\n%s", code, first.stderr.String())
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	name := regexp.MustCompile(`^\d{6}-(returnUrlSuccess|returnUrlOther|notificationUrlSuccess|notificationUrlPending|notificationUrlOther)\.json$`)
	for _, f := range files {
		if !name.MatchString(filepath.Base(f)) {
			t.Errorf("file name %s", filepath.Base(f))
		}
	}
	if len(files) != len(recorded)+1 || len(recorded) != 2+7+2+1+1 {
		t.Fatalf("%d files, %d events; want 13 events and one file more", len(files), len(recorded))
	}

	second := startListen(t)
	rejected := 0
	for _, f := range files {
		code, stdout, stderr := cli(t, "send", "-from", f, "-url", second.base)
		switch {
		case code == 1 && strings.Contains(stdout, "< 400 Bad Request"):
			rejected++
		case code != 0:
			t.Errorf("send -from %s: exit %d, stderr %q\n%s", filepath.Base(f), code, stderr, stdout)
		}
	}
	code, replayed := second.stop()
	if code != 0 || rejected != 1 {
		t.Errorf("second listen: exit %d, %d rejected replays, want 0 and 1", code, rejected)
	}
	if !strings.Contains(second.stderr.String(), "repeated field") {
		t.Errorf("the second listen did not reject the repeated field:\n%s", second.stderr.String())
	}

	normalize := func(lines []string) []string {
		var out []string
		for _, line := range lines {
			m := eventFields(t, line)
			for _, k := range []string{"duplicate", "stale", "outcome"} {
				if _, ok := m[k]; ok {
					t.Errorf("member %q without -dedupe: %s", k, line)
				}
			}
			delete(m, "time")
			delete(m, "remoteAddr")
			b, err := json.Marshal(m) // sorted keys
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
		return out
	}
	got, want := normalize(replayed), normalize(recorded)
	if !slices.Equal(got, want) {
		t.Errorf("replayed events differ:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("%d requests recorded and replayed, %d identical events", len(files), len(got))
}
