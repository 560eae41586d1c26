package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// syncBuffer is a bytes.Buffer that handlers and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cli runs the command line in process.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// receiver is a real Router on a loopback httptest server, recording events.
func receiver(t *testing.T, rec *cofidistest.Recorder) (base string, urls cofidis.URLs) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	urls, err := cofidis.NewURLs(srv.URL+"/shop", cofidis.AllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify,
		cofidis.WithInsecureSkipVerify(), cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	rt.Register(mux)
	return srv.URL + "/shop", urls
}

func oneLineOnStderr(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want one line containing %q", stderr, want)
	}
}

func TestHelpExitsZeroWithUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "Commands:"},
		{[]string{"--help"}, "Commands:"},
		{[]string{"help"}, "Commands:"},
		{[]string{"urls", "-h"}, "Usage: cofidis urls"},
		{[]string{"listen", "-h"}, "Usage: cofidis listen"},
		{[]string{"send", "-help"}, "Usage: cofidis send"},
		{[]string{"simulate", "-h"}, "pending-refused"},
		{[]string{"help", "send"}, "cofidis send -from FILE -url URL"},
		{[]string{"help", "listen"}, "cofidis-recording/1"},
		{[]string{"version", "-h"}, "Usage: cofidis version"},
		{[]string{"help", "version"}, "vcs.revision"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cli(t, tc.args...)
			if code != 0 || !strings.Contains(stdout, tc.want) || stderr != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0 and usage containing %q", code, stdout, stderr, tc.want)
			}
			hasFlags := !slices.Contains(tc.args, "version")
			if len(tc.args) > 1 && hasFlags != strings.Contains(stdout, "Flags:\n  -") {
				t.Errorf("usage lists flags: %v, want %v:\n%s", !hasFlags, hasFlags, stdout)
			}
		})
	}
}

func TestUsageErrorsExitTwoWithOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"urls"}, "-base is required"},
		{[]string{"urls", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"urls", "-base", "https://shop.example", "extra"}, `unexpected argument "extra"`},
		{[]string{"urls", "-base", "https://shop.example", "-query", "novalue"}, "want key=value"},
		{[]string{"listen", "-addr"}, "flag needs an argument: -addr"},
		{[]string{"send", "-status", "pending"}, "-url is required"},
		{[]string{"send", "-url", "http://127.0.0.1:1/x"}, "-status is required"},
		{[]string{"send", "-url", "/relative", "-status", "pending"}, "want an absolute http or https URL"},
		{[]string{"send", "-url", "http://127.0.0.1:1/x", "-status", "x", "-provider-transaction-id", "a", "-omit-provider-transaction-id"}, "exclude each other"},
		{[]string{"send", "-url", "http://127.0.0.1:1/x", "-status", "x", "-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"send", "-from", "rec.json"}, "-url is required"},
		{[]string{"send", "-from", "rec.json", "-url", "http://127.0.0.1:1", "-status", "pending", "-merchant-id", "1"}, "-merchant-id, -status cannot be used with -from, which replays the recorded request as it is"},
		{[]string{"send", "-from", "rec.json", "-url", "http://127.0.0.1:1/pay?order=1"}, "the query is the recorded one"},
		{[]string{"send", "-from", "rec.json", "-url", "http://127.0.0.1:1/pay#x"}, "the query is the recorded one"},
		{[]string{"simulate", "-journey", "accepted"}, "-base is required"},
		{[]string{"simulate", "-base", "http://127.0.0.1:1"}, "-journey is required"},
		{[]string{"simulate", "-base", "http://127.0.0.1:1", "-journey", "approved"}, `unknown journey "approved"`},
		{[]string{"simulate", "-base", "http://127.0.0.1:1", "-journey", "accepted", "-repeat", "-1"}, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cli(t, tc.args...)
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			oneLineOnStderr(t, stderr, tc.want)
		})
	}

	code, _, stderr := cli(t)
	if code != 2 || !strings.Contains(stderr, "Commands:") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and the usage", code, stderr)
	}
}

func TestURLs(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := cli(t, "urls", "-base", "https://Shop.Example/pay", "-query", "order=A-1", "-query", "shop=fr")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var urls cofidis.URLs
	if err := json.Unmarshal([]byte(stdout), &urls); err != nil {
		t.Fatalf("output is not the technicalData JSON: %v\n%s", err, stdout)
	}
	if err := urls.Validate(); err != nil {
		t.Error(err)
	}
	if want := "https://shop.example/pay/cofidis/notify/pending?order=A-1&shop=fr"; urls.NotificationURLPending != want {
		t.Errorf("notificationUrlPending = %q, want %q", urls.NotificationURLPending, want)
	}
	if !strings.Contains(stdout, `"returnUrlSuccess": "https://shop.example/pay/cofidis/return/success?order=A-1&shop=fr"`) {
		t.Errorf("output not indented or & escaped:\n%s", stdout)
	}

	// The library's errors are printed with one prefix, the command's.
	code, _, stderr = cli(t, "urls", "-base", "https://user:pw@shop.example")
	if code != 1 {
		t.Errorf("user-info: exit %d, want 1", code)
	}
	oneLineOnStderr(t, stderr, "cofidis urls: invalid URL: base URL must not contain user-info\n")
	code, _, stderr = cli(t, "urls", "-base", "ftp://shop.example")
	if code != 1 {
		t.Errorf("ftp: exit %d, want 1", code)
	}
	oneLineOnStderr(t, stderr, "cofidis urls: invalid URL: base URL must use the https or http scheme\n")
}

// TestPlainHTTPRule checks the scheme rule every command applies to its
// URL: https always, http for a loopback host, http elsewhere only with
// -allow-http, which the error names.
func TestPlainHTTPRule(t *testing.T) {
	t.Parallel()
	rec := &cofidistest.Recorder{}
	base, urls := receiver(t, rec) // on 127.0.0.1
	local := strings.Replace(base, "127.0.0.1", "localhost", 1)
	refused := []struct {
		args []string
		want string
	}{
		{[]string{"urls", "-base", "http://shop.example"}, "cofidis urls: -base: plain http to a host other than loopback needs -allow-http"},
		{[]string{"urls", "-base", "http://192.0.2.1:8080/pay"}, "-base: plain http"},
		{[]string{"urls", "-base", "http://localhost.shop.example"}, "-base: plain http"},
		{[]string{"listen", "-addr", "127.0.0.1:0", "-base", "http://shop.example"}, "cofidis listen: -base: plain http to a host other than loopback needs -allow-http"},
		{[]string{"simulate", "-base", "http://shop.example", "-journey", "accepted"}, "cofidis simulate: -base: plain http to a host other than loopback needs -allow-http"},
		{[]string{"send", "-url", "http://shop.example/cofidis/notify/other", "-status", "Aborted"}, "cofidis send: -url: plain http to a host other than loopback needs -allow-http"},
		{[]string{"send", "-from", "rec.json", "-url", "http://shop.example"}, "cofidis send: -url: plain http to a host other than loopback needs -allow-http"},
	}
	for _, tc := range refused {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cli(t, tc.args...)
			if code != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", code, stdout)
			}
			oneLineOnStderr(t, stderr, tc.want)
			if strings.Contains(stderr, "AllowHTTP") {
				t.Errorf("stderr names the API option: %q", stderr)
			}
		})
	}

	accepted := [][]string{
		{"urls", "-base", "http://127.0.0.1:8080"},
		{"urls", "-base", "http://[::1]:8080"},
		{"urls", "-base", "http://LOCALHOST./pay"},
		{"urls", "-base", "http://shop.example", "-allow-http"},
		{"urls", "-base", "https://shop.example"},
		{"simulate", "-base", base, "-journey", "aborted"},
		{"simulate", "-base", local, "-journey", "aborted"},
		{"send", "-url", urls.NotificationURLOther, "-status", "Aborted"},
		{"send", "-url", urls.NotificationURLOther, "-status", "Aborted", "-allow-http"},
	}
	for _, args := range accepted {
		if code, stdout, stderr := cli(t, args...); code != 0 {
			t.Errorf("%q: exit %d, stderr %q\n%s", args, code, stderr, stdout)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost.": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"::ffff:127.0.0.1": true, "fe80::1%lo": false, "0.0.0.0": false, "::": false, "192.0.2.1": false,
		"shop.example": false, "localhost.shop.example": false, "": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestDefaultBase(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1:8080":    "http://127.0.0.1:8080",
		"0.0.0.0:8080":      "http://127.0.0.1:8080",
		"[::]:8080":         "http://[::1]:8080",
		"[::1]:9":           "http://[::1]:9",
		"192.0.2.1:80":      "http://192.0.2.1:80",
		"[2001:db8::1]:443": "http://[2001:db8::1]:443",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := defaultBase(a); got != want {
			t.Errorf("defaultBase(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	rec := &cofidistest.Recorder{RedirectURL: "/orders/7"}
	_, urls := receiver(t, rec)

	code, stdout, stderr := cli(t, "send", "-url", urls.NotificationURLPending, "-status", "Pending", "-substate", "signed",
		"-merchant-transaction-id", "2YgKoUd4DB", "-merchant-transaction-date", "20260227", "-multiline")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"> POST " + urls.NotificationURLPending, "> transactionStatus: Pending", "> subState: signed", "< 200 OK"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	evs := rec.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	want := cofidis.TransactionKey{MerchantCountry: "fr", ProviderID: "providrid", ProviderTransactionID: cofidis.NullValue(),
		MerchantID: "020280098", MerchantTransactionID: "2YgKoUd4DB", MerchantTransactionDate: "20260227"}
	if ev := evs[0]; ev.TransactionKey != want || ev.Status != cofidis.StatusPending || ev.RawStatus != "Pending" ||
		ev.SubState != cofidis.SubStateSigned || ev.Channel != cofidis.ChannelNotification {
		t.Errorf("event = %s %+v", cofidistest.Describe(ev), ev.TransactionKey)
	}

	rec.Reset()
	code, stdout, _ = cli(t, "send", "-url", urls.ReturnURLSuccess, "-status", "to_confirm", "-browser",
		"-provider-transaction-id", "PSP-9")
	if code != 0 || !strings.Contains(stdout, "< 303 See Other\n< Location: /orders/7\n") {
		t.Errorf("redirect: exit %d\n%s", code, stdout)
	}
	if evs := rec.Filter(cofidistest.OnChannel(cofidis.ChannelRedirect)); len(evs) != 1 || evs[0].TransactionKey.ProviderTransactionID != cofidis.NullStringOf("PSP-9") {
		t.Errorf("redirects = %v", rec.Events())
	}

	rec.Reset()
	if code, _, _ := cli(t, "send", "-url", urls.NotificationURLOther, "-status", "Aborted", "-omit-provider-transaction-id"); code != 0 {
		t.Errorf("absent providerTransactionId: exit %d", code)
	}
	if evs := rec.Events(); len(evs) != 1 || evs[0].TransactionKey.ProviderTransactionID.Present {
		t.Errorf("events = %v, want an absent providerTransactionId", evs)
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	rec := &cofidistest.Recorder{}
	base, urls := receiver(t, rec)

	// The receiver rejects the key: exit 1, the answer still printed.
	code, stdout, stderr := cli(t, "send", "-url", urls.NotificationURLOther, "-status", "Refused", "-merchant-id", "")
	if code != 1 || !strings.Contains(stdout, "< 400 Bad Request") {
		t.Errorf("exit %d\n%s", code, stdout)
	}
	oneLineOnStderr(t, stderr, "answered 400 Bad Request")

	code, _, stderr = cli(t, "send", "-url", base+"/nowhere", "-status", "Refused")
	if code != 1 {
		t.Errorf("unknown path: exit %d, want 1", code)
	}
	oneLineOnStderr(t, stderr, "404")

	code, _, stderr = cli(t, "send", "-url", "http://"+closedAddr(t)+"/x", "-status", "Refused")
	if code != 1 {
		t.Errorf("closed port: exit %d, want 1", code)
	}
	oneLineOnStderr(t, stderr, "refused")
	if rec.Len() != 0 {
		t.Errorf("%d events recorded, want none", rec.Len())
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestSimulateEveryJourney(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"accepted":         {"redirect returnUrlSuccess to_confirm", "notification notificationUrlSuccess to_confirm"},
		"refused":          {"redirect returnUrlOther Refused", "notification notificationUrlOther Refused"},
		"aborted":          {"notification notificationUrlOther Aborted"},
		"error":            {"notification notificationUrlOther Error"},
		"pending-accepted": {"redirect returnUrlOther pending", "notification notificationUrlPending pending", "notification notificationUrlPending pending/signed", "notification notificationUrlPending to_confirm"},
		"pending-refused":  {"redirect returnUrlOther pending", "notification notificationUrlPending pending", "notification notificationUrlPending pending/signed", "notification notificationUrlPending Refused"},
	}
	// Every journey the CLI offers, and only those, is checked below.
	names := slices.Sorted(maps.Keys(want))
	if got := slices.Sorted(slices.Values(journeyNames())); !slices.Equal(got, names) {
		t.Fatalf("journeys %q, want %q", got, names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &cofidistest.Recorder{}
			base, _ := receiver(t, rec)
			code, stdout, stderr := cli(t, "simulate", "-base", base, "-journey", name, "-merchant-transaction-id", "sim-"+name)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q\n%s", code, stderr, stdout)
			}
			var got []string
			for _, ev := range rec.Events() {
				got = append(got, cofidistest.Describe(ev))
				if ev.TransactionKey.MerchantTransactionID != "sim-"+name {
					t.Errorf("merchantTransactionId = %q", ev.TransactionKey.MerchantTransactionID)
				}
			}
			if !slices.Equal(got, want[name]) {
				t.Errorf("events %q, want %q", got, want[name])
			}
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			if len(lines) != 1+len(want[name]) || !strings.HasPrefix(lines[0], "journey "+name+", transaction 020280098/sim-"+name+"/") {
				t.Errorf("output:\n%s", stdout)
			}
			for i, l := range lines[1:] {
				if !strings.HasPrefix(l, want[name][i]+" -> 200") {
					t.Errorf("line %q, want %q -> 200", l, want[name][i])
				}
			}
		})
	}
}

func TestSimulateKnobs(t *testing.T) {
	t.Parallel()
	rec := &cofidistest.Recorder{}
	base, _ := receiver(t, rec)
	code, _, stderr := cli(t, "simulate", "-base", base, "-journey", "accepted", "-notifications-first", "-repeat", "1",
		"-delay", "1ms", "-query", "order=A-1")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got []string
	for _, ev := range rec.Events() {
		got = append(got, cofidistest.Describe(ev)+" "+ev.RawQuery)
	}
	want := []string{
		"notification notificationUrlSuccess to_confirm order=A-1",
		"notification notificationUrlSuccess to_confirm order=A-1",
		"redirect returnUrlSuccess to_confirm order=A-1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestSimulateFailures(t *testing.T) {
	t.Parallel()
	rec := &cofidistest.Recorder{NotifyError: func(cofidis.Event) error { return errors.New("database down") }}
	base, _ := receiver(t, rec)
	code, stdout, stderr := cli(t, "simulate", "-base", base, "-journey", "refused")
	if code != 1 || !strings.Contains(stdout, "notification notificationUrlOther Refused -> 500") {
		t.Errorf("exit %d\n%s", code, stdout)
	}
	oneLineOnStderr(t, stderr, "1 of 2 callbacks were not accepted")

	code, _, stderr = cli(t, "simulate", "-base", "http://"+closedAddr(t), "-journey", "aborted")
	if code != 1 {
		t.Errorf("closed port: exit %d, want 1", code)
	}
	oneLineOnStderr(t, stderr, "refused")
}

// listening is the startup line of listen.
type listening struct {
	Listening string       `json:"listening"`
	URLs      cofidis.URLs `json:"urls"`
}

func TestListen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	outR, outW := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"listen", "-addr", "127.0.0.1:0"}, outW, &stderr)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("no line on stdout (%v); stderr:\n%s", lines.Err(), stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
	}

	var start listening
	next(&start)
	host, port, err := net.SplitHostPort(start.Listening)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("listening = %q, want 127.0.0.1 and the chosen port", start.Listening)
	}
	if err := start.URLs.Validate(cofidis.AllowHTTP()); err != nil {
		t.Fatal(err)
	}
	if want := "http://" + start.Listening + "/cofidis/notify/success"; start.URLs.NotificationURLSuccess != want {
		t.Errorf("notificationUrlSuccess = %q, want %q", start.URLs.NotificationURLSuccess, want)
	}

	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	fake := cofidistest.Fake{URLs: start.URLs, Client: &http.Client{Timeout: 10 * time.Second}}
	played := make(chan error, 1)
	go func() {
		ds, err := fake.Play(ctx, cofidistest.Accepted(key))
		for _, d := range ds {
			if err == nil && !d.OK() {
				err = errors.New(d.String())
			}
		}
		played <- err
	}()
	for _, want := range []struct{ channel, endpoint string }{
		{"redirect", "returnUrlSuccess"},
		{"notification", "notificationUrlSuccess"},
	} {
		var ev struct {
			Channel        string                 `json:"channel"`
			Endpoint       string                 `json:"endpoint"`
			Status         string                 `json:"status"`
			RawStatus      string                 `json:"rawStatus"`
			Known          bool                   `json:"known"`
			SubState       *string                `json:"subState"`
			TransactionKey cofidis.TransactionKey `json:"transactionKey"`
			Verified       *bool                  `json:"verified"`
		}
		next(&ev)
		if ev.Channel != want.channel || ev.Endpoint != want.endpoint || ev.Status != "to_confirm" || ev.RawStatus != "to_confirm" ||
			!ev.Known || ev.SubState == nil || ev.TransactionKey != key || ev.Verified == nil || *ev.Verified {
			t.Errorf("event line %s, want %s on %s with the key", lines.Text(), want.channel, want.endpoint)
		}
	}
	if err := <-played; err != nil {
		t.Fatal(err)
	}

	// A rejected request is logged on stderr with its reason, not printed.
	bad := cofidistest.Request{Endpoint: cofidis.EndpointNotificationOther, Key: key, Status: "Refused", RepeatStatus: true}
	req, err := bad.NewClientRequest(ctx, start.URLs.NotificationURLOther)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("repeated status answered %d, want 400", res.StatusCode)
	}
	res, err = http.Post("http://"+start.Listening+"/elsewhere", cofidistest.ContentTypeForm, strings.NewReader(bad.Body()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path answered %d, want 404", res.StatusCode)
	}

	cancel()
	if lines.Scan() {
		t.Errorf("unexpected line after the events: %s", lines.Text())
	}
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel, want 0; stderr:\n%s", code, stderr.String())
	}
	logs := stderr.String()
	for _, want := range []string{"repeated field", "status=400", "none of the five URLs", "status=404", "shutting down"} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, logs)
		}
	}
}

func TestListenFailures(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, stdout, stderr := cli(t, "listen", "-addr", ln.Addr().String())
	if code != 1 || stdout != "" {
		t.Errorf("port in use: exit %d, stdout %q", code, stdout)
	}
	oneLineOnStderr(t, stderr, "address already in use")

	code, _, stderr = cli(t, "listen", "-addr", "127.0.0.1:0", "-base", "ftp://shop.example")
	if code != 1 {
		t.Errorf("ftp base: exit %d, want 1", code)
	}
	oneLineOnStderr(t, stderr, "scheme")
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	bad := &cofidis.Error{Err: cofidis.ErrInvalidURL, Field: "returnUrlOther", Reason: "must have a host"}
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("dial tcp: connection refused"), "dial tcp: connection refused"},
		{bad, "invalid URL: returnUrlOther: must have a host"},
		{errors.Join(bad, &cofidis.Error{Err: cofidis.ErrDomainMismatch, Field: "notificationUrlOther", Reason: "host differs"}),
			"invalid URL: returnUrlOther: must have a host; URLs do not share one domain: notificationUrlOther: host differs"},
		{fmt.Errorf("shutdown: %w", bad), "shutdown: cofidis: invalid URL: returnUrlOther: must have a host"},
		{errors.New("a\n\n  b  c"), "a; b c"},
	}
	for _, tc := range tests {
		if got := oneLine(tc.err); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
