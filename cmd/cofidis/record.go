package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cofidis-go/cofidis"
)

// The files of listen -record.
//
// Each received request is one JSON file, indented, of this shape:
//
//	{
//	  "format": "cofidis-recording/1",
//	  "seq": 3,
//	  "receivedAt": "2026-03-01T10:00:00.123456789Z",
//	  "remoteAddr": "127.0.0.1:53422",
//	  "endpoint": "notificationUrlPending",
//	  "method": "POST",
//	  "target": "/cofidis/notify/pending?order=A-1042",
//	  "host": "127.0.0.1:8080",
//	  "headers": {
//	    "Accept": ["*/*"],
//	    "Content-Length": ["172"],
//	    "Content-Type": ["application/x-www-form-urlencoded"],
//	    "X-Forwarded-For": [
//	      "192.0.2.1",
//	      "198.51.100.7"
//	    ]
//	  },
//	  "body": "transactionKey=%7B%22merchantCountry%22%3A%22fr%22...&transactionStatus=pending&subState=signed"
//	}
//
// method, target, headers and body are the request as received: target is
// the request-target (path and query, escaped as sent), headers are every
// header but Host, values in the order received, and body is every byte of
// the body. A value that is not valid UTF-8 (a hostile body, an obs-text
// header) is written {"base64": "..."} instead of a string, so that the
// file keeps it byte for byte too; every other string is exactly what JSON
// decodes back. The rest is for the reader: seq and receivedAt (order and
// time of arrival), remoteAddr, host, and endpoint, the technicalData URL
// whose path the target has ("unknown" for none). bodyIncomplete, present
// only then, says why the body is not whole: longer than maxRecordBodyBytes,
// or a read that failed.
//
// JSON rather than the raw HTTP/1.1 request (httputil.DumpRequest): a
// developer reads the body and the headers at once, edits the body without
// fixing a Content-Length, compares two files with jq or diff, and git or
// an editor cannot break the file by changing its line endings; there is
// room for the time and the sender's address, which a dump cannot carry;
// and a body or header that is not UTF-8 is kept exactly, which a text dump
// would hand to the editor as mojibake.

// recordFormat names the format of the files, version included.
const recordFormat = "cofidis-recording/1"

// maxRecordBodyBytes bounds the body kept in a file: far above the Router's
// limit (16 KiB by default), so that an oversized body is replayed as one.
const maxRecordBodyBytes = 1 << 20

// recording is one file of listen -record.
type recording struct {
	Format         string                `json:"format"`
	Seq            int                   `json:"seq"`
	ReceivedAt     time.Time             `json:"receivedAt"`
	RemoteAddr     string                `json:"remoteAddr"`
	Endpoint       string                `json:"endpoint"`
	Method         wireText              `json:"method"`
	Target         wireText              `json:"target"`
	Host           wireText              `json:"host"`
	Headers        map[string][]wireText `json:"headers"`
	Body           wireText              `json:"body"`
	BodyIncomplete string                `json:"bodyIncomplete,omitempty"`
}

// wireText is text from the wire, kept byte for byte in JSON: a JSON string
// when it is valid UTF-8, {"base64": "..."} otherwise.
type wireText string

// base64Text is the JSON form of a wireText that is not UTF-8.
type base64Text struct {
	Base64 []byte `json:"base64"`
}

// MarshalJSON implements json.Marshaler.
func (t wireText) MarshalJSON() ([]byte, error) {
	if !utf8.ValidString(string(t)) {
		return json.Marshal(base64Text{Base64: []byte(t)})
	}
	// json.Marshal would escape &, < and >, frequent in bodies, as \u0026…:
	// the same string once decoded, but unreadable.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(t)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *wireText) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*t = wireText(s)
		return nil
	case len(data) > 0 && data[0] == '{':
		var b base64Text
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return err
		}
		*t = wireText(b.Base64)
		return nil
	}
	return errors.New(`want a string or {"base64": "..."}`)
}

// recorder writes each request a listen receives into dir, numbering the
// files after those already there. It is safe for concurrent use.
type recorder struct {
	root      *os.Root                    // the directory
	endpoints map[string]cofidis.Endpoint // by escaped path
	now       func() time.Time
	mu        sync.Mutex
	seq       int // of the last file written
}

// newRecorder creates dir if missing (readable by its owner only) and
// returns a recorder of the requests to urls' receiver. Close it after use.
func newRecorder(dir string, urls cofidis.URLs) (*recorder, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, errors.Join(err, root.Close())
	}
	rc := &recorder{root: root, endpoints: map[string]cofidis.Endpoint{}, now: time.Now}
	for _, e := range entries {
		if n, ok := recordSeq(e.Name()); ok && n > rc.seq {
			rc.seq = n
		}
	}
	for _, e := range cofidis.Endpoints() {
		if u, err := url.Parse(urls.Get(e)); err == nil {
			rc.endpoints[u.EscapedPath()] = e
		}
	}
	return rc, nil
}

// recordSeq returns the sequence number of a file listen -record wrote,
// named NNNNNN-<endpoint>.json.
func recordSeq(name string) (int, bool) {
	digits, rest, ok := strings.Cut(name, "-")
	if !ok || !strings.HasSuffix(rest, ".json") || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}

// wrap returns a handler that records each request, whatever becomes of
// it, before next answers it. A request that cannot be recorded is answered
// 500 without reaching next, so that every request answered otherwise is
// on disk (a notification is then retried by its sender).
func (rc *recorder) wrap(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := rc.capture(r)
		if err := rc.write(rec); err != nil {
			logger.Error("cofidis listen: request not recorded; answered 500", slog.String("error", err.Error()))
			http.Error(w, "cofidis listen: recording failed", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// capture reads r's body, leaves r as it was for the handler that follows
// (the same bytes, then the same error or the rest of an oversized body),
// and returns the request as a recording without its sequence number.
func (rc *recorder) capture(r *http.Request) recording {
	rec := recording{
		Format:     recordFormat,
		ReceivedAt: rc.now().UTC(),
		RemoteAddr: r.RemoteAddr,
		Endpoint:   "unknown",
		Method:     wireText(r.Method),
		Target:     wireText(requestTarget(r)),
		Host:       wireText(r.Host),
		Headers:    map[string][]wireText{},
	}
	if e, ok := rc.endpoints[r.URL.EscapedPath()]; ok {
		rec.Endpoint = e.String()
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			rec.Headers[k] = append(rec.Headers[k], wireText(v))
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRecordBodyBytes+1))
	rest := io.Reader(r.Body)
	switch {
	case err != nil:
		rec.BodyIncomplete = "reading the body failed: " + err.Error()
		rest = errReader{err}
	case len(body) > maxRecordBodyBytes:
		rec.BodyIncomplete = fmt.Sprintf("longer than %d bytes: only the first %d are kept", maxRecordBodyBytes, maxRecordBodyBytes)
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), r.Body}
	rec.Body = wireText(body[:min(len(body), maxRecordBodyBytes)])
	return rec
}

// requestTarget returns the request-target of r as the client sent it, in
// origin form (path?query) even when it was sent in absolute form.
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// errReader fails every read with its error.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// write numbers rec and writes it into a new file, readable by its owner
// only.
func (rc *recorder) write(rec recording) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for {
		rc.seq++
		rec.Seq = rc.seq
		name := fmt.Sprintf("%06d-%s.json", rec.Seq, rec.Endpoint)
		f, err := rc.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // written since newRecorder looked: take the next number
		}
		if err != nil {
			return err
		}
		data, err := marshalRecording(rec)
		if err == nil {
			_, err = f.Write(data)
		}
		if err := errors.Join(err, f.Close()); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		return nil
	}
}

// marshalRecording returns rec as a file holds it: indented JSON, &, < and
// > unescaped, and an array of one string on one line ("Accept": ["*/*"]).
func marshalRecording(rec recording) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rec); err != nil {
		return nil, err
	}
	// JSON strings hold no raw newline, so lines are the indenter's: fold
	// "[", a string, "]".
	lines := strings.SplitAfter(b.String(), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasSuffix(l, "[\n") && i+2 < len(lines) {
			v, end := strings.TrimSpace(lines[i+1]), strings.TrimSpace(lines[i+2])
			if strings.HasPrefix(v, `"`) && (end == "]" || end == "],") {
				out.WriteString(strings.TrimSuffix(l, "\n") + v + end + "\n")
				i += 2
				continue
			}
		}
		out.WriteString(l)
	}
	return []byte(out.String()), nil
}

// Close releases the directory.
func (rc *recorder) Close() error { return rc.root.Close() }

// readRecording reads a file listen -record wrote.
func readRecording(path string) (recording, error) {
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return recording{}, err
	}
	var rec recording
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt member edited by hand would be ignored
	if err := dec.Decode(&rec); err != nil {
		return recording{}, fmt.Errorf("%s: not a recording: %w", path, err)
	}
	if dec.More() {
		return recording{}, fmt.Errorf("%s: not a recording: data after the JSON object", path)
	}
	switch {
	case rec.Format != recordFormat:
		return recording{}, fmt.Errorf("%s: format %q, want %q", path, rec.Format, recordFormat)
	case rec.Method == "":
		return recording{}, fmt.Errorf("%s: no method", path)
	case !strings.HasPrefix(string(rec.Target), "/"):
		return recording{}, fmt.Errorf("%s: target must be a path starting with /", path)
	}
	return rec, nil
}

// hopByHop are the headers that describe one connection or the framing of
// one message, which a replay recomputes instead of copying: RFC 9110
// section 7.6.1, plus Host and Content-Length.
var hopByHop = []string{
	"Connection", "Content-Length", "Host", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// replayURL returns where a recording is replayed: base's scheme and host,
// base's path (without its trailing slash) followed by the recorded path,
// and the recorded query.
func replayURL(base *url.URL, target string) string {
	prefix := strings.TrimSuffix(base.EscapedPath(), "/")
	return base.Scheme + "://" + base.Host + prefix + target
}

// newReplayRequest returns the request that replays rec on base (see
// replayURL): the recorded method, headers and body, without the hop-by-hop
// headers and those named by Connection.
func newReplayRequest(ctx context.Context, rec recording, base *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, string(rec.Method), replayURL(base, string(rec.Target)), strings.NewReader(string(rec.Body)))
	if err != nil {
		return nil, err
	}
	drop := slices.Clone(hopByHop)
	for _, v := range rec.Headers["Connection"] {
		for name := range strings.SplitSeq(string(v), ",") {
			drop = append(drop, http.CanonicalHeaderKey(strings.TrimSpace(name)))
		}
	}
	h := http.Header{}
	for k, vs := range rec.Headers {
		if slices.Contains(drop, http.CanonicalHeaderKey(k)) {
			continue
		}
		for _, v := range vs {
			h[k] = append(h[k], string(v))
		}
	}
	if _, ok := h["User-Agent"]; !ok {
		// A present, empty User-Agent keeps net/http from adding its own.
		h["User-Agent"] = nil
	}
	req.Header = h
	return req, nil
}
