package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

func TestWireTextJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     string // the JSON written
	}{
		{"empty", "", `""`},
		{"form body, & kept readable", "a=1&b=%3C2%3E", `"a=1&b=%3C2%3E"`},
		{"raw <, >, quotes and a backslash", `<"\>`, `"<\"\\>"`},
		{"control characters", "a\nb\r\x00\t", `"a\nb\r\u0000\t"`},
		{"UTF-8, line separators", "Łukasz\u2028é", "\"Łukasz\\u2028é\""},
		{"not UTF-8: base64", "caf\xe9", `{"base64":"Y2Fm6Q=="}`},
		{"a lone continuation byte", "\x80", `{"base64":"gA=="}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// As the recorder writes its files: without escaping &, < and >.
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(wireText(tc.in)); err != nil {
				t.Fatal(err)
			}
			b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if string(b) != tc.want {
				t.Errorf("JSON %s, want %s", b, tc.want)
			}
			var back wireText
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if string(back) != tc.in {
				t.Errorf("read back %q, want %q", back, tc.in)
			}
		})
	}
	for _, bad := range []string{`null`, `1`, `["a"]`, `{"base64":"!"}`, `{"base64":"","x":1}`} {
		var v wireText
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s read as %q, want an error", bad, v)
		}
	}
}

// seen is a request as a server received it.
type seen struct {
	method, target string
	header         http.Header
	body           []byte
}

// catcher is a handler keeping every request it receives.
type catcher struct {
	mu   sync.Mutex
	reqs []seen
}

func (c *catcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, seen{method: r.Method, target: r.RequestURI, header: r.Header.Clone(), body: body})
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *catcher) last(t *testing.T) seen {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("no request received")
	}
	return c.reqs[len(c.reqs)-1]
}

// TestRecordingReplaysByteForByte sends requests to a recording server, and
// replays each file with 'send -from' to a second server: the second must
// receive what the first did, byte for byte, Host aside.
func TestRecordingReplaysByteForByte(t *testing.T) {
	t.Parallel()
	urls, err := cofidis.NewURLs("http://127.0.0.1/shop", cofidis.AllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rc, err := newRecorder(dir, urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	var first, second catcher
	recording := httptest.NewServer(rc.wrap(&first, slog.New(slog.DiscardHandler)))
	t.Cleanup(recording.Close)
	replayed := httptest.NewServer(&second)
	t.Cleanup(replayed.Close)

	key := cofidistest.NewKey(cofidistest.KeyOptions{MerchantTransactionID: "Ab-1 é"})
	exotic := cofidistest.Request{
		Key: key, Status: "Pending", SubState: "signed", MultilineJSON: true, RepeatStatus: true,
		ExtraFields: url.Values{"subState": {"Signed"}, "trans%20Key": {"{\n\"a\": 1\n}"}},
	}
	tests := []struct {
		name, method, path, body string
		header                   http.Header
	}{
		{
			name: "multi-line JSON key, repeated fields", method: http.MethodPost,
			path: "/shop/cofidis/notify/pending?order=A%2D1&order=B+2&empty=", body: exotic.Body(),
			header: http.Header{
				"Content-Type":    {cofidistest.ContentTypeForm},
				"X-Forwarded-For": {"192.0.2.1", "198.51.100.7"},
				"Cookie":          {"a=1; b=2"},
				"X-Note":          {"caf\xe9"}, // obs-text: not UTF-8
			},
		},
		{
			name: "a body that is not UTF-8", method: http.MethodPost, path: "/shop/cofidis/return/other",
			body:   "transactionKey=%7B%7D&transactionStatus=caf\xe9\x00&x=<&>",
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=ISO-8859-1"}, "User-Agent": {"curl/8.0"}},
		},
		{
			name: "no body, no User-Agent, unknown path", method: http.MethodGet, path: "/favicon.ico",
			header: http.Header{"User-Agent": nil, "Accept": {"*/*"}},
		},
		{
			name: "hop-by-hop headers are not replayed", method: http.MethodPut, path: "/shop/cofidis/notify/other", body: "a=b",
			header: http.Header{"Connection": {"X-Private"}, "X-Private": {"hop"}, "X-Kept": {"end-to-end"}},
		},
	}
	for i, tc := range tests {
		// In order: the recorder numbers the files by arrival.
		req, err := http.NewRequestWithContext(t.Context(), tc.method, recording.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range tc.header {
			req.Header[k] = vs
		}
		res, err := recording.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		res.Body.Close()
		got := first.last(t)
		if !bytes.Equal(got.body, []byte(tc.body)) {
			t.Errorf("%s: the handler behind the recorder read %q, want %q", tc.name, got.body, tc.body)
		}

		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(files) != i+1 {
			t.Fatalf("%s: files %q (%v), want %d", tc.name, files, err, i+1)
		}
		file := files[i]
		rec, err := readRecording(file)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// Readable: the body as a string, & unescaped.
			for _, want := range []string{`"format": "cofidis-recording/1"`, `"endpoint": "notificationUrlPending"`,
				`"target": "/shop/cofidis/notify/pending?order=A%2D1&order=B+2&empty="`,
				`"body": "transactionKey=%7B%0A%22merchantCountry%22`, `&transactionStatus=Pending&transactionStatus=Pending&subState=signed&subState=Signed&trans%2520Key=`,
				`"Cookie": ["a=1; b=2"],`, `"X-Forwarded-For": [` + "\n" + `      "192.0.2.1",` + "\n" + `      "198.51.100.7"` + "\n" + `    ],`,
				`"X-Note": [` + "\n" + `      {` + "\n" + `        "base64": "Y2Fm6Q=="`} {
				if !strings.Contains(string(text), want) {
					t.Errorf("the file lacks %s:\n%s", want, text)
				}
			}
		}
		if rec.Seq != i+1 || string(rec.Body) != tc.body || string(rec.Target) != tc.path || string(rec.Method) != tc.method {
			t.Errorf("%s: recorded %d %s %s %q", tc.name, rec.Seq, rec.Method, rec.Target, rec.Body)
		}
		wantName := []string{"000001-notificationUrlPending.json", "000002-returnUrlOther.json", "000003-unknown.json", "000004-notificationUrlOther.json"}[i]
		if filepath.Base(file) != wantName {
			t.Errorf("%s: file %s, want %s", tc.name, filepath.Base(file), wantName)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: file mode %v (%v), want 0600", tc.name, fi.Mode(), err)
		}

		code, stdout, stderr := cli(t, "send", "-from", file, "-url", replayed.URL)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "< 204 No Content") {
			t.Fatalf("%s: send -from: exit %d, stderr %q\n%s", tc.name, code, stderr, stdout)
		}
		again := second.last(t)
		if again.method != got.method || again.target != got.target || !bytes.Equal(again.body, got.body) {
			t.Errorf("%s: replayed %s %s %q, want %s %s %q", tc.name, again.method, again.target, again.body, got.method, got.target, got.body)
		}
		want := got.header.Clone()
		if c := want.Get("Connection"); c != "" {
			want.Del("Connection")
			want.Del(c)
		}
		if !equalHeaders(again.header, want) {
			t.Errorf("%s: replayed headers\n%q\nwant\n%q", tc.name, again.header, want)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	return maps.EqualFunc(a, b, slices.Equal[[]string])
}

func TestReplayURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, target, want string }{
		{"http://127.0.0.1:8080", "/cofidis/notify/success", "http://127.0.0.1:8080/cofidis/notify/success"},
		{"http://127.0.0.1:8080/", "/cofidis/notify/success?order=A-1", "http://127.0.0.1:8080/cofidis/notify/success?order=A-1"},
		{"https://shop.example/pay", "/cofidis/return/other?a=%26&b", "https://shop.example/pay/cofidis/return/other?a=%26&b"},
		{"https://shop.example/pay/", "/cofidis/return/other", "https://shop.example/pay/cofidis/return/other"},
		{"https://shop.example/a%2Fb", "/x%20y", "https://shop.example/a%2Fb/x%20y"},
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.base)
		if err != nil {
			t.Fatal(err)
		}
		if got := replayURL(u, tc.target); got != tc.want {
			t.Errorf("replayURL(%s, %s) = %s, want %s", tc.base, tc.target, got, tc.want)
		}
	}
}

func TestReadRecordingRejects(t *testing.T) {
	t.Parallel()
	valid := `{"format":"cofidis-recording/1","method":"POST","target":"/cofidis/notify/other","headers":{},"body":""}`
	if _, err := readRecordingText(t, valid); err != nil {
		t.Fatalf("valid recording: %v", err)
	}
	tests := []struct{ name, text, want string }{
		{"not JSON", "POST / HTTP/1.1\r\n", "not a recording"},
		{"other format", strings.Replace(valid, "/1", "/2", 1), `format "cofidis-recording/2"`},
		{"misspelt member", strings.Replace(valid, `"body"`, `"bdy"`, 1), `unknown field "bdy"`},
		{"two objects", valid + valid, "data after the JSON object"},
		{"no method", strings.Replace(valid, `"POST"`, `""`, 1), "no method"},
		{"absolute target", strings.Replace(valid, `"/cofidis`, `"http://h/cofidis`, 1), "target must be a path"},
		{"bad base64", strings.Replace(valid, `"body":""`, `"body":{"base64":"*"}`, 1), "not a recording"},
	}
	for _, tc := range tests {
		_, err := readRecordingText(t, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	code, _, stderr := cli(t, "send", "-from", filepath.Join(t.TempDir(), "missing.json"), "-url", "http://127.0.0.1:1")
	if code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
	oneLineOnStderr(t, stderr, "no such file")
}

func readRecordingText(t *testing.T, text string) (recording, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rec.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return readRecording(path)
}

// TestRecordOversizedBody checks that a body over the recording limit is
// kept in part, flagged, and still reaches the handler whole.
func TestRecordOversizedBody(t *testing.T) {
	t.Parallel()
	rc, err := newRecorder(t.TempDir(), cofidis.URLs{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body := bytes.Repeat([]byte("a=1&"), maxRecordBodyBytes/4+10)
	r := httptest.NewRequest(http.MethodPost, "/cofidis/notify/other", bytes.NewReader(body))
	rec := rc.capture(r)
	if len(rec.Body) != maxRecordBodyBytes || rec.BodyIncomplete == "" {
		t.Errorf("recorded %d bytes, bodyIncomplete %q; want %d and a reason", len(rec.Body), rec.BodyIncomplete, maxRecordBodyBytes)
	}
	rest, err := io.ReadAll(r.Body)
	if err != nil || !bytes.Equal(rest, body) {
		t.Errorf("the handler read %d bytes (%v), want the %d sent", len(rest), err, len(body))
	}
}
