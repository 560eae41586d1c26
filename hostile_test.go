package cofidis_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hostile-input suite: requests anybody on the internet can send to the
// callback URLs, since Cofidis signs nothing. Every case states the exact
// answer; rejected ones also prove that no callback ran, that nothing
// panicked, that the answer says nothing about the request and that one
// warning was logged. Bodies live in testdata/hostile (one file per body);
// the ones too big for a file are generated here.

const hostileFormType = "application/x-www-form-urlencoded"

// hostileKey is the documented transaction key, compact.
const hostileKey = `{"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,"merchantId":"020280098","merchantTransactionId":"2YgKoUd4DB","merchantTransactionDate":"20260227"}`

// hostileBody is a valid pending notification body.
const hostileBody = "transactionKey=" + hostileKey + "&transactionStatus=pending"

// hostileFiles is the manifest of testdata/hostile: each body and the answer
// a NotificationHandler (default options) gives it. A file missing from the
// manifest, or an entry without its file, fails TestHostileManifest.
var hostileFiles = []struct {
	file   string
	status int
}{
	// Percent-encoding that url.ParseQuery refuses.
	{"pct-invalid-hex.body", 400},
	{"pct-lone.body", 400},
	{"pct-short.body", 400},
	{"pct-in-field-name.body", 400},
	{"pct-in-json.body", 400},
	{"pct-u-escape.body", 400},
	// Semicolons are not separators (Go 1.17+), and make the body invalid.
	{"semicolon-separator.body", 400},
	{"semicolon-in-value.body", 400},
	// transactionKey that is not one JSON object.
	{"json-truncated.body", 400},
	{"json-open-brace.body", 400},
	{"json-unterminated-string.body", 400},
	{"json-single-quotes.body", 400},
	{"json-unquoted-names.body", 400},
	{"json-trailing-comma.body", 400},
	{"json-comment.body", 400},
	{"json-nan.body", 400},
	{"json-nested-33.body", 400},
	{"json-array.body", 400},
	{"json-null.body", 400},
	{"json-number.body", 400},
	{"json-string.body", 400},
	{"json-true.body", 400},
	{"json-false.body", 400},
	{"json-trailing-garbage.body", 400},
	{"json-two-objects.body", 400},
	{"json-trailing-comma-after.body", 400},
	// Ambiguous members: duplicates, in any spelling, and look-alikes.
	{"json-duplicate-same.body", 400},
	{"json-duplicate-different.body", 400},
	{"json-duplicate-case-folded.body", 400},
	{"json-duplicate-escaped-name.body", 400},
	{"json-lookalike-name.body", 400},
	// Other JSON types where strings are required.
	{"number-merchant-id-leading-zero.body", 400},
	{"number-merchant-id.body", 400},
	{"number-date.body", 400},
	{"number-huge.body", 400},
	{"bool-country.body", 400},
	{"null-merchant-id.body", 400},
	{"object-transaction-id.body", 400},
	{"array-provider-id.body", 400},
	{"number-provider-transaction-id.body", 400},
	// Days that do not exist, or are not written YYYYMMDD.
	{"date-feb-30.body", 400},
	{"date-month-13.body", 400},
	{"date-month-00.body", 400},
	{"date-day-00.body", 400},
	{"date-feb-29-2025.body", 400},
	{"date-feb-29-1900.body", 400},
	{"date-dashed.body", 400},
	{"date-7-digits.body", 400},
	{"date-9-digits.body", 400},
	{"date-signed.body", 400},
	{"date-fullwidth-digits.body", 400},
	{"date-empty.body", 400},
	// Empty or missing fields.
	{"empty.body", 400},
	{"only-ampersands.body", 400},
	{"empty-transaction-key.body", 400},
	{"blank-transaction-key.body", 400},
	{"empty-status.body", 400},
	{"blank-status.body", 400},
	{"missing-status.body", 400},
	{"missing-transaction-key.body", 400},
	{"empty-object.body", 400},
	{"empty-merchant-id.body", 400},
	{"missing-merchant-id.body", 400},
	{"country-three-letters.body", 400},
	{"country-digits.body", 400},
	// Oversized fields in a body within the limit.
	{"status-257-bytes.body", 400},
	{"substate-257-bytes.body", 400},
	// HTTP parameter pollution: a field sent twice, in any encoding.
	{"repeated-transaction-key.body", 400},
	{"repeated-status.body", 400},
	{"repeated-status-identical.body", 400},
	{"repeated-status-one-empty.body", 400},
	{"repeated-substate.body", 400},
	{"repeated-key-via-encoding.body", 400},
	{"repeated-status-via-encoding.body", 400},
	// Brackets and dots never stand for the real field.
	{"bracket-key-only.body", 400},
	{"bracket-member-only.body", 400},
	{"dot-member-only.body", 400},
	{"bracket-status-only.body", 400},
	{"unbalanced-bracket-key-only.body", 400},
	// NUL bytes, control characters (log injection) and invalid UTF-8.
	{"nul-status-encoded.body", 400},
	{"nul-status-raw.body", 400},
	{"nul-key-escaped.body", 400},
	{"nul-key-raw.body", 400},
	{"nul-field-name.body", 400},
	{"invalid-utf8-status-encoded.body", 400},
	{"invalid-utf8-status-raw.body", 400},
	{"invalid-utf8-key-value.body", 400},
	{"invalid-utf8-unknown-member.body", 400},
	{"invalid-utf8-field-name.body", 400},
	{"lone-surrogate.body", 400},
	{"ansi-escape-status.body", 400},
	{"newline-status.body", 400},
	{"del-status.body", 400},
	{"c1-control-key-value.body", 400},
	{"control-after-non-ascii-status.body", 400},
	{"control-after-non-ascii-substate.body", 400},
	{"c1-control-status.body", 400},
	{"tab-substate.body", 400},
	// Hostile-looking but acceptable: unknown fields are ignored, so these
	// are delivered, with the real values (see hostileDelivered).
	{"valid.body", 200},
	{"valid-signed.body", 200},
	{"dot-pollution.body", 200},
	{"bracket-pollution.body", 200},
	{"case-variant-field-pollution.body", 200},
	{"unbalanced-bracket-pollution.body", 200},
	{"junk-field-names.body", 200},
	{"empty-pairs.body", 200},
	{"encoded-field-names.body", 200},
	{"json-surrounding-whitespace.body", 200},
	{"json-nested-32-levels.body", 200},
}

// hostileCase is one request of the suite.
type hostileCase struct {
	name string
	// body returns a fresh body and its Content-Length (-1: unknown, sent
	// chunked); the test is there for readers that check how they are read.
	body   func(t *testing.T) (io.Reader, int64)
	method string // default POST
	// contentType holds the Content-Type header lines; nil means one line
	// with hostileFormType, an empty slice means no header.
	contentType []string
	opts        []cofidis.Option
	status      int
}

func TestHostileManifest(t *testing.T) {
	t.Parallel()
	listed := map[string]bool{}
	for _, f := range hostileFiles {
		require.False(t, listed[f.file], "%s listed twice", f.file)
		listed[f.file] = true
		_, err := os.Stat(filepath.Join("testdata", "hostile", f.file))
		require.NoError(t, err, "manifest entry without its file")
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "hostile"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.True(t, listed[e.Name()], "%s is not in the manifest", e.Name())
	}
}

// hostileCases is the whole suite: the files, then the generated cases.
func hostileCases(t *testing.T) []hostileCase {
	var cases []hostileCase
	for _, f := range hostileFiles {
		b, err := os.ReadFile(filepath.Join("testdata", "hostile", f.file))
		require.NoError(t, err)
		cases = append(cases, hostileCase{name: strings.TrimSuffix(f.file, ".body"), body: hostileFixed(b), status: f.status})
	}

	// Every method but POST, including CONNECT, TRACE, a WebDAV method and
	// a lower-case "post" (methods are case-sensitive).
	for _, m := range []string{
		http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace, "PROPFIND", "post",
	} {
		cases = append(cases, hostileCase{name: "method-" + m, method: m, body: hostileFixed([]byte(hostileBody)), status: 405})
	}

	// Content types. Media types and charset names are case-insensitive;
	// a repeated identical parameter is not ambiguous.
	for _, ct := range []struct {
		name   string
		lines  []string
		status int
	}{
		{"missing", []string{}, 415},
		{"empty", []string{""}, 415},
		{"text-plain", []string{"text/plain"}, 415},
		{"json", []string{"application/json"}, 415},
		{"multipart", []string{"multipart/form-data; boundary=xyz"}, 415},
		{"garbage", []string{"}{"}, 415},
		{"wildcard", []string{"application/*"}, 415},
		{"suffixed", []string{"application/x-www-form-urlencoded-evil"}, 415},
		{"list", []string{"application/x-www-form-urlencoded, text/plain"}, 415},
		{"nul", []string{"application/x-www-form-urlencoded\x00"}, 415},
		{"charset-latin1", []string{"application/x-www-form-urlencoded; charset=latin1"}, 415},
		{"charset-iso-8859-1", []string{"application/x-www-form-urlencoded; charset=ISO-8859-1"}, 415},
		{"charset-utf16", []string{"application/x-www-form-urlencoded; charset=utf-16"}, 415},
		{"charset-empty", []string{"application/x-www-form-urlencoded; charset="}, 415},
		{"two-charsets", []string{"application/x-www-form-urlencoded; charset=utf-8; charset=latin1"}, 415},
		{"two-headers", []string{hostileFormType, "multipart/form-data; boundary=xyz"}, 415},
		{"two-identical-headers", []string{hostileFormType, hostileFormType}, 415},
		{"upper-case", []string{"APPLICATION/X-WWW-FORM-URLENCODED"}, 200},
		{"mixed-case-charset", []string{"Application/X-Www-Form-Urlencoded; Charset=UTF-8"}, 200},
		{"quoted-charset", []string{`application/x-www-form-urlencoded; charset="utf-8"`}, 200},
		{"charset-us-ascii", []string{"application/x-www-form-urlencoded; charset=us-ascii"}, 200},
		{"same-charset-twice", []string{"application/x-www-form-urlencoded; charset=utf-8; charset=utf-8"}, 200},
		{"other-parameter", []string{"application/x-www-form-urlencoded; boundary=x; q=1"}, 200},
		{"trailing-semicolon", []string{"application/x-www-form-urlencoded;"}, 200},
	} {
		cases = append(cases, hostileCase{name: "content-type-" + ct.name, contentType: ct.lines, body: hostileFixed([]byte(hostileBody)), status: ct.status})
	}

	// Size limits, with and without a Content-Length.
	const limit = cofidis.DefaultMaxBodyBytes
	atLimit := hostilePad(hostileBody, limit)
	overLimit := hostilePad(hostileBody, limit+1)
	hugeStatus := "transactionKey=" + hostileKey + "&transactionStatus=" + strings.Repeat("p", 1<<20)
	cases = append(cases,
		hostileCase{name: "size-at-limit", body: hostileFixed(atLimit), status: 200},
		hostileCase{name: "size-one-over-limit", body: hostileFixed(overLimit), status: 413},
		hostileCase{name: "size-at-limit-chunked", body: hostileChunked(atLimit), status: 200},
		hostileCase{name: "size-one-over-limit-chunked", body: hostileChunked(overLimit), status: 413},
		hostileCase{name: "size-1MB-status", body: hostileFixed([]byte(hugeStatus)), status: 413},
		hostileCase{name: "size-1MB-status-chunked", body: hostileChunked([]byte(hugeStatus)), status: 413},
		hostileCase{name: "size-1MB-status-small-limit", body: hostileFixed([]byte(hugeStatus)), status: 413,
			opts: []cofidis.Option{cofidis.WithMaxBodyBytes(512)}},
		hostileCase{name: "size-custom-limit-exceeded", body: hostileFixed([]byte(hostileBody)), status: 413,
			opts: []cofidis.Option{cofidis.WithMaxBodyBytes(int64(len(hostileBody) - 1))}},
		hostileCase{name: "size-custom-limit-exact", body: hostileFixed([]byte(hostileBody)), status: 200,
			opts: []cofidis.Option{cofidis.WithMaxBodyBytes(int64(len(hostileBody)))}},
		hostileCase{name: "size-content-length-over-limit-not-read", body: hostileTripwire(1 << 20), status: 413},
		hostileCase{name: "size-endless-body", body: hostileEndless(limit), status: 413},
		hostileCase{name: "size-endless-body-declared-small", body: hostileEndlessDeclared(100), status: 400},
	)

	// Nesting far beyond the scanner's limit, inside an unknown member,
	// with a body limit that lets it reach the scanner.
	big := []cofidis.Option{cofidis.WithMaxBodyBytes(1 << 20)}
	nested := func(open, close string, n int) []byte {
		return []byte("transactionKey=" + hostileKey[:len(hostileKey)-1] + `,"x":` +
			strings.Repeat(open, n) + strings.Repeat(close, n) + "}&transactionStatus=pending")
	}
	cases = append(cases,
		hostileCase{name: "json-nested-10000-arrays", body: hostileFixed(nested("[", "]", 10000)), opts: big, status: 400},
		hostileCase{name: "json-nested-10000-objects", body: hostileFixed(nested(`{"a":`, "}", 10000)), opts: big, status: 400},
		hostileCase{name: "json-nested-10000-unclosed", body: hostileFixed(nested("[", "", 10000)), status: 400},
	)
	return cases
}

func hostileFixed(b []byte) func(*testing.T) (io.Reader, int64) {
	return func(*testing.T) (io.Reader, int64) { return bytes.NewReader(b), int64(len(b)) }
}

// hostileChunked hides the length, as a chunked request body does.
func hostileChunked(b []byte) func(*testing.T) (io.Reader, int64) {
	return func(*testing.T) (io.Reader, int64) { return io.MultiReader(bytes.NewReader(b)), -1 }
}

// hostilePad pads a valid body with an unknown field to exactly n bytes.
func hostilePad(body string, n int) []byte {
	const pad = "&padding="
	return []byte(body + pad + strings.Repeat("x", n-len(body)-len(pad)))
}

// hostileTripwire declares n bytes but fails the test if it is read at all: an
// over-limit Content-Length is refused before reading.
func hostileTripwire(n int64) func(*testing.T) (io.Reader, int64) {
	return func(t *testing.T) (io.Reader, int64) {
		return hostileReaderFunc(func([]byte) (int, error) {
			t.Error("the body of an over-limit Content-Length was read")
			return 0, io.EOF
		}), n
	}
}

// hostileEndless never ends; the test fails if more than limit+1 bytes are
// read from it.
func hostileEndless(limit int64) func(*testing.T) (io.Reader, int64) {
	return func(t *testing.T) (io.Reader, int64) {
		return &hostileEndlessReader{t: t, max: limit + 1}, -1
	}
}

// hostileEndlessDeclared is an endless body behind a small Content-Length, as the
// server hands it to the handler: http.Server cuts the body at the declared
// length, which this mimics.
func hostileEndlessDeclared(n int64) func(*testing.T) (io.Reader, int64) {
	return func(t *testing.T) (io.Reader, int64) {
		return io.LimitReader(&hostileEndlessReader{t: t, max: n}, n), n
	}
}

type hostileEndlessReader struct {
	t    *testing.T
	max  int64
	read int64
}

func (r *hostileEndlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.read += int64(len(p))
	if r.read > r.max {
		r.t.Errorf("read %d bytes of an endless body, want at most %d", r.read, r.max)
		return 0, io.ErrUnexpectedEOF
	}
	return len(p), nil
}

type hostileReaderFunc func([]byte) (int, error)

func (f hostileReaderFunc) Read(p []byte) (int, error) { return f(p) }

// newHostileRequest builds the request of c.
func newHostileRequest(t *testing.T, c hostileCase) *http.Request {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	body, n := c.body(t)
	r := httptest.NewRequest(http.MethodPost, "/cofidis/notify?order=A-1", body)
	r.Method = method // httptest refuses some methods (CONNECT) with a path
	r.ContentLength = n
	if n < 0 {
		r.TransferEncoding = []string{"chunked"}
	}
	lines := c.contentType
	if lines == nil {
		lines = []string{hostileFormType}
	}
	r.Header.Del("Content-Type")
	for _, l := range lines {
		r.Header.Add("Content-Type", l)
	}
	r.RemoteAddr = "192.0.2.10:40000"
	return r
}

// hostileLog is a concurrency-safe slog JSON sink for assertions.
type hostileLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *hostileLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *hostileLog) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (c *hostileLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// records decodes every line logged so far.
func (c *hostileLog) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(c.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "log line is not JSON: %s", sc.Text())
		out = append(out, rec)
	}
	return out
}

// hostileServe calls h and turns a panic into a test failure.
func hostileServe(t *testing.T, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("handler panicked: %v", v)
			}
		}()
		h.ServeHTTP(w, r)
	}()
	return w
}

func TestHostileNotification(t *testing.T) {
	t.Parallel()
	cases := hostileCases(t)
	rejected := 0
	for _, c := range cases {
		if c.status != http.StatusOK {
			rejected++
		}
	}
	require.GreaterOrEqual(t, rejected, 60, "the suite promises at least 60 rejected requests")

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var (
				log    hostileLog
				calls  atomic.Int32
				got    cofidis.Event
				hooked []error
			)
			opts := append([]cofidis.Option{
				cofidis.WithLogger(log.logger()),
				cofidis.WithOnError(func(_ *http.Request, err error) { hooked = append(hooked, err) }),
			}, c.opts...)
			h := notifier(t, func(_ context.Context, ev cofidis.Event) error {
				calls.Add(1)
				got = ev
				return nil
			}, opts...)

			r := newHostileRequest(t, c)
			start := time.Now()
			w := hostileServe(t, h, r)
			require.Less(t, time.Since(start), 5*time.Second, "a hostile request must be answered quickly")

			require.Equal(t, c.status, w.Code)
			assert.Equal(t, answerBody(c.status), w.Body.String(), "the answer must hold only the status text")
			if c.status != http.StatusOK {
				assert.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
				assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
			}
			if c.status == http.StatusMethodNotAllowed {
				assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
			} else {
				assert.Empty(t, w.Header().Get("Allow"))
			}

			if c.status == http.StatusOK {
				require.EqualValues(t, 1, calls.Load())
				assert.Empty(t, hooked)
				hostileCheckRealKey(t, got)
				return
			}
			assert.Zero(t, calls.Load(), "no callback may run for a rejected request")
			require.Len(t, hooked, 1, "OnError runs once per rejected request")
			assert.Equal(t, c.status, cofidis.HTTPStatus(hooked[0]))

			recs := log.records(t)
			require.Len(t, recs, 1, "one log line per rejected request")
			assert.Equal(t, "WARN", recs[0]["level"])
			assert.Equal(t, "cofidis: request rejected", recs[0]["msg"])
			assert.EqualValues(t, c.status, recs[0]["status"])
			assert.Equal(t, "notification", recs[0]["channel"])
			assert.Equal(t, "/cofidis/notify", recs[0]["path"])
			assert.NotEmpty(t, recs[0]["error"])
			hostileAssertNoEcho(t, c, log.String())
		})
	}
}

// hostileAssertNoEcho checks that no distinctive part of the request body made it
// into s (an answer or the logs).
func hostileAssertNoEcho(t *testing.T, c hostileCase, s string) {
	t.Helper()
	body, n := c.body(t)
	if n < 0 || n > 1<<16 {
		return // generated or huge bodies hold nothing distinctive
	}
	b, err := io.ReadAll(body)
	require.NoError(t, err)
	for _, marker := range []string{"020280098", "2YgKoUd4DB", "providrid", "evil", "forged", string(b)} {
		if len(marker) >= 4 && strings.Contains(string(b), marker) {
			assert.NotContains(t, s, marker, "request content echoed")
		}
	}
}

// hostileCheckRealKey checks that a delivered hostile request carried the real
// transaction key, whatever pollution came with it.
func hostileCheckRealKey(t *testing.T, ev cofidis.Event) {
	t.Helper()
	assert.Equal(t, "fr", ev.TransactionKey.MerchantCountry)
	assert.Equal(t, "providrid", ev.TransactionKey.ProviderID)
	assert.Equal(t, "020280098", ev.TransactionKey.MerchantID, "merchantId must come from transactionKey only")
	assert.Equal(t, "2YgKoUd4DB", ev.TransactionKey.MerchantTransactionID)
	assert.Equal(t, "20260227", ev.TransactionKey.MerchantTransactionDate)
	assert.Equal(t, cofidis.StatusPending, ev.Status, "transactionStatus must come from the one real field")
	assert.Equal(t, "order=A-1", ev.RawQuery)
}

// TestHostileRedirect sends the same requests to a RedirectHandler: the
// browser gets the error page with the same status, and the page depends on
// the status only.
func TestHostileRedirect(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		pages = map[int]string{}
	)
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var (
				log   hostileLog
				calls atomic.Int32
			)
			opts := append([]cofidis.Option{cofidis.WithLogger(log.logger())}, c.opts...)
			h := redirector(t, func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
				calls.Add(1)
				hostileCheckRealKey(t, ev)
				return cofidis.SeeOther(w, r, "/orders/A-1")
			}, opts...)

			w := hostileServe(t, h, newHostileRequest(t, c))
			if c.status == http.StatusOK {
				require.Equal(t, http.StatusSeeOther, w.Code)
				require.EqualValues(t, 1, calls.Load())
				return
			}
			require.Equal(t, c.status, w.Code)
			assert.Zero(t, calls.Load(), "no callback may run for a rejected request")
			assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
			assert.Contains(t, w.Body.String(), strconv.Itoa(c.status))
			if c.status == http.StatusMethodNotAllowed {
				assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
			}
			hostileAssertNoEcho(t, c, w.Body.String())
			hostileAssertNoEcho(t, c, log.String())

			mu.Lock()
			defer mu.Unlock()
			if prev, ok := pages[c.status]; ok {
				assert.Equal(t, prev, w.Body.String(), "the error page must depend on the status only")
			} else {
				pages[c.status] = w.Body.String()
			}
		})
	}
}

// hostileServer runs a NotificationHandler on a real HTTP server; the
// returned channels report callbacks and rejections.
func hostileServer(t *testing.T, log *hostileLog, wrap func(http.Handler) http.Handler) (srv *httptest.Server, calls *atomic.Int32, rejected chan error) {
	t.Helper()
	calls = new(atomic.Int32)
	rejected = make(chan error, 8)
	h := notifier(t, func(_ context.Context, ev cofidis.Event) error {
		calls.Add(1)
		return nil
	}, cofidis.WithLogger(log.logger()), cofidis.WithOnError(func(_ *http.Request, err error) { rejected <- err }))
	handler := h
	if wrap != nil {
		handler = wrap(h)
	}
	srv = httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv, calls, rejected
}

// TestHostileChunkedOverHTTP posts bodies without a length over a real
// connection: Go's client sends them chunked.
func TestHostileChunkedOverHTTP(t *testing.T) {
	t.Parallel()
	var (
		log     hostileLog
		chunked atomic.Int32
	)
	srv, calls, _ := hostileServer(t, &log, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength == -1 && len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked" {
				chunked.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})

	post := func(body io.Reader) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", hostileFormType)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}

	resp := post(io.MultiReader(strings.NewReader(hostileBody)))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, calls.Load())

	resp = post(io.MultiReader(bytes.NewReader(hostilePad(hostileBody, 100<<10))))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.EqualValues(t, 1, calls.Load(), "no callback for the oversized body")
	assert.EqualValues(t, 2, chunked.Load(), "both bodies must arrive chunked, without a length")
}

// TestHostileEndlessBodyOverHTTP streams a body that never ends: the answer
// is 413 as soon as the limit is passed, not when the client stops.
func TestHostileEndlessBodyOverHTTP(t *testing.T) {
	t.Parallel()
	var log hostileLog
	srv, calls, _ := hostileServer(t, &log, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("a"), 4096)
		for {
			if _, err := pw.Write(chunk); err != nil {
				return // the transport gave up on the body
			}
		}
	}()
	defer pw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, pr)
	require.NoError(t, err)
	req.Header.Set("Content-Type", hostileFormType)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Zero(t, calls.Load())
}

// TestHostileContentLengthOverHTTP declares a huge body and sends none: the
// server answers 413 without waiting for it.
func TestHostileContentLengthOverHTTP(t *testing.T) {
	t.Parallel()
	var log hostileLog
	srv, calls, rejected := hostileServer(t, &log, nil)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", hostileFormType, 1<<30)
	require.NoError(t, err)

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.ErrorIs(t, <-rejected, cofidis.ErrBodyTooLarge)
	assert.Zero(t, calls.Load())
}

// TestHostileClientDisconnectsMidBody sends half of a declared body and
// hangs up: the callback is not called, the read failure is logged, and the
// server keeps no goroutine for the dead connection. Not parallel: it
// counts goroutines.
func TestHostileClientDisconnectsMidBody(t *testing.T) {
	before := runtime.NumGoroutine()
	var log hostileLog
	srv, calls, rejected := hostileServer(t, &log, nil)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
		hostileFormType, len(hostileBody), hostileBody[:len(hostileBody)/2])
	require.NoError(t, err)
	require.NoError(t, conn.Close())

	select {
	case err := <-rejected:
		assert.ErrorIs(t, err, cofidis.ErrBodyRead)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not report the failed read")
	}
	assert.Zero(t, calls.Load())

	recs := log.records(t)
	require.Len(t, recs, 1)
	assert.Equal(t, "WARN", recs[0]["level"])
	assert.Equal(t, "cofidis: request rejected", recs[0]["msg"])
	assert.Equal(t, "cofidis: body read failed: the body could not be read", recs[0]["error"])

	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left behind by the dropped connection")
}
