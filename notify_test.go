package cofidis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// statusIs answers every verification with st.
func statusIs(st cofidis.Status) cofidis.Verifier {
	return cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		return st, nil
	})
}

// verifierFails fails every verification with err.
func verifierFails(err error) cofidis.Verifier {
	return cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		return "", err
	})
}

// verifierPanics panics on every verification.
func verifierPanics() cofidis.Verifier {
	return cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		panic("getStatus client: nil pointer")
	})
}

// errGetStatus is a verifier's failure.
var errGetStatus = errors.New("getStatus: connection refused")

// TestNotificationHandler_statusCodeTable tests every row of the package
// documentation's table for notifications.
func TestNotificationHandler_statusCodeTable(t *testing.T) {
	t.Parallel()
	valid := formBody(echoKeyJSON, "to_confirm", "")
	tests := []struct {
		name    string
		opts    []cofidis.Option
		fn      func(context.Context, cofidis.Event) error // nil: returns nil
		edit    func(r *http.Request)
		body    string // valid when empty
		want    int
		wantRan bool
	}{
		{name: "answers 200 when the callback returns nil", want: 200, wantRan: true},
		{
			name:    "answers 200 when the callback returns Permanent, so that Cofidis does not retry",
			fn:      func(context.Context, cofidis.Event) error { return cofidis.Permanent(errors.New("unknown order")) },
			want:    200,
			wantRan: true,
		},
		{
			name:    "answers 200 when the callback returns Permanent(nil)",
			fn:      func(context.Context, cofidis.Event) error { return cofidis.Permanent(nil) },
			want:    200,
			wantRan: true,
		},
		{
			name:    "answers 500 when the callback returns an error, so that Cofidis retries",
			fn:      func(context.Context, cofidis.Event) error { return errors.New("database down") },
			want:    500,
			wantRan: true,
		},
		{
			name:    "answers 500 when the callback panics",
			fn:      func(context.Context, cofidis.Event) error { panic("nil map") },
			want:    500,
			wantRan: true,
		},
		{
			name:    "answers 500 when the callback panics with an error",
			fn:      func(context.Context, cofidis.Event) error { panic(errors.New("boom")) },
			want:    500,
			wantRan: true,
		},
		{name: "answers 405 with Allow: POST to GET", edit: func(r *http.Request) { r.Method = http.MethodGet }, want: 405},
		{name: "answers 405 with Allow: POST to HEAD", edit: func(r *http.Request) { r.Method = http.MethodHead }, want: 405},
		{name: "answers 405 with Allow: POST to PUT", edit: func(r *http.Request) { r.Method = http.MethodPut }, want: 405},
		{name: "answers 415 to a JSON body", edit: setContentType("application/json"), want: 415},
		{name: "answers 415 to text/plain", edit: setContentType("text/plain"), want: 415},
		{name: "answers 415 to multipart/form-data", edit: setContentType("multipart/form-data; boundary=x"), want: 415},
		{name: "answers 415 to charset ISO-8859-1", edit: setContentType("application/x-www-form-urlencoded; charset=ISO-8859-1"), want: 415},
		{name: "answers 415 to a missing Content-Type", edit: setContentType(""), want: 415},
		{
			name: "answers 413 to a body over the default limit",
			body: valid + "&pad=" + strings.Repeat("x", cofidis.DefaultMaxBodyBytes),
			want: 413,
		},
		{name: "answers 413 to a body over WithMaxBodyBytes", opts: []cofidis.Option{cofidis.WithMaxBodyBytes(64)}, want: 413},
		{name: "answers 400 to a malformed body", body: "transactionKey=%zz", want: 400},
		{name: "answers 400 to a missing transactionStatus", body: formBody(echoKeyJSON, "", ""), want: 400},
		{name: "answers 400 to a missing transactionKey", body: formBody("", "to_confirm", ""), want: 400},
		{name: "answers 400 to an invalid transactionKey", body: formBody(echoKeyJSON[:50], "to_confirm", ""), want: 400},
		{name: "answers 400 to an invalid transactionStatus", body: formBody(echoKeyJSON, "to_confirm\x00", ""), want: 400},
		{name: "answers 400 to a repeated transactionStatus", body: valid + "&transactionStatus=Refused", want: 400},
		{name: "answers 400 to a repeated transactionKey", body: valid + "&transactionKey=" + strings.TrimPrefix(formBody(echoKeyJSON, "", ""), "transactionKey="), want: 400},
		{name: "answers 400 to a repeated subState", body: formBody(echoKeyJSON, "pending", "signed") + "&subState=signed", want: 400},
		{
			name: "answers 403 to a client outside WithAllowedSources",
			opts: []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			edit: func(r *http.Request) { r.RemoteAddr = "198.51.100.7:40000" },
			want: 403,
		},
		{
			name: "answers 503 when the verifier fails",
			opts: []cofidis.Option{cofidis.WithVerifier(verifierFails(errGetStatus))},
			want: 503,
		},
		{
			name: "answers 503 when the verifier times out",
			opts: []cofidis.Option{cofidis.WithVerifier(blockingVerifier(nil)), cofidis.WithVerifyTimeout(time.Millisecond)},
			want: 503,
		},
		{
			name:    "answers 200 with a Verified event when the verifier agrees",
			opts:    []cofidis.Option{cofidis.WithVerifier(statusIs(cofidis.StatusToConfirm))},
			want:    200,
			wantRan: true,
		},
		{
			name: "answers 200 without dispatching when the verifier shows Cofidis further along",
			opts: []cofidis.Option{cofidis.WithVerifier(statusIs(cofidis.StatusValidated))},
			want: 200,
		},
		{
			name: "answers 503 without dispatching when the verifier reports another status",
			opts: []cofidis.Option{cofidis.WithVerifier(statusIs(cofidis.StatusRefused))},
			want: 503,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ran := false
			fn := func(ctx context.Context, ev cofidis.Event) error {
				ran = true
				if tt.fn != nil {
					return tt.fn(ctx, ev)
				}
				return nil
			}
			h := notifier(t, fn, append([]cofidis.Option{cofidis.WithLogger(quietLogger())}, tt.opts...)...)
			body := tt.body
			if body == "" {
				body = valid
			}
			r := postForm("/notify", body)
			if tt.edit != nil {
				tt.edit(r)
			}

			w := serve(h, r)

			assert.Equal(t, tt.want, w.Code)
			assert.Equal(t, tt.wantRan, ran, "whether the callback ran")
			if tt.want == http.StatusMethodNotAllowed {
				assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
			} else {
				assert.Empty(t, w.Header().Get("Allow"))
			}
			assert.Equal(t, answerBody(tt.want), w.Body.String(), "the body is the status text only (empty for 200)")
			assertNoEcho(t, w.Body.String(), append(echoParts, "to_confirm", "Refused")...)
		})
	}
}

// setContentType sets (or, for "", removes) the Content-Type.
func setContentType(ct string) func(*http.Request) {
	return func(r *http.Request) {
		if ct == "" {
			r.Header.Del("Content-Type")
			return
		}
		r.Header.Set("Content-Type", ct)
	}
}

// blockingVerifier blocks until its context ends and reports the context's
// error to seen (when not nil).
func blockingVerifier(seen chan<- error) cofidis.Verifier {
	return cofidis.VerifierFunc(func(ctx context.Context, _ cofidis.TransactionKey) (cofidis.Status, error) {
		<-ctx.Done()
		if seen != nil {
			seen <- ctx.Err()
		}
		return "", ctx.Err()
	})
}

func TestNotificationHandler_documentationBodies(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"doc-notification.body", "doc-notification-compact.body"} {
		t.Run("delivers "+file+" as the documentation describes it", func(t *testing.T) {
			t.Parallel()
			var got received
			clock := time.Date(2026, 2, 27, 10, 0, 0, 0, time.UTC)
			h := notifierAt(t, cofidis.EndpointNotificationPending, got.notification(nil), cofidis.WithClock(func() time.Time { return clock }), cofidis.WithLogger(quietLogger()))
			r := postForm("/notify/pending?order=A-42", readRequestBody(t, file))
			r.RemoteAddr = "203.0.113.7:5555"

			w := serve(h, r)

			require.Equal(t, http.StatusOK, w.Code)
			ev, _ := got.only(t)
			assert.Equal(t, wantDocKey, ev.TransactionKey)
			assert.Equal(t, cofidis.StatusPending, ev.Status)
			assert.Equal(t, cofidis.SubStateSigned, ev.SubState)
			assert.Equal(t, cofidis.ChannelNotification, ev.Channel)
			assert.False(t, ev.ChannelInferred)
			e, ok := ev.Endpoint()
			assert.True(t, ok)
			assert.Equal(t, cofidis.EndpointNotificationPending, e)
			assert.False(t, ev.Unexpected)
			assert.False(t, ev.Verified)
			assert.Empty(t, ev.VerifiedStatus)
			assert.Equal(t, "order=A-42", ev.RawQuery)
			assert.Equal(t, "A-42", ev.Query().Get("order"))
			assert.Equal(t, netip.MustParseAddr("203.0.113.7"), ev.RemoteAddr)
			assert.Equal(t, clock, ev.ReceivedAt)
		})
	}
}

func TestNotificationHandler_identicalNotificationURLs(t *testing.T) {
	t.Parallel()
	var got received
	h := notifier(t, got.notification(nil), cofidis.WithLogger(quietLogger()))

	w := serve(h, postForm("/notify", formBody(docKeyCompact, "Refused", "")))

	require.Equal(t, http.StatusOK, w.Code)
	ev, _ := got.only(t)
	assert.Equal(t, notificationEndpoints, ev.Endpoints, "any of the three URLs may have been meant")
	_, ok := ev.Endpoint()
	assert.False(t, ok)
	assert.False(t, ev.Unexpected, "one of the three expects every known status")
	assert.False(t, ev.ChannelInferred, "all three are notification URLs")
}

func TestNotificationHandler_bodyLimitOverTheWire(t *testing.T) {
	t.Parallel()
	var got received
	h := notifier(t, got.notification(nil), cofidis.WithMaxBodyBytes(512), cofidis.WithLogger(quietLogger()))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	post := func(t *testing.T, body io.Reader) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	body := formBody(docKeyCompact, "pending", "")
	pad := func(n int) string { return body + "&pad=" + strings.Repeat("x", n-len(body)-len("&pad=")) }

	t.Run("accepts a body of exactly WithMaxBodyBytes", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, post(t, strings.NewReader(pad(512))))
	})
	t.Run("rejects a body of WithMaxBodyBytes+1 with 413", func(t *testing.T) {
		assert.Equal(t, http.StatusRequestEntityTooLarge, post(t, strings.NewReader(pad(513))))
	})
	t.Run("rejects a chunked body without Content-Length over the limit with 413", func(t *testing.T) {
		// io.MultiReader hides the length: the client sends it chunked.
		assert.Equal(t, http.StatusRequestEntityTooLarge, post(t, io.MultiReader(strings.NewReader(pad(4096)))))
	})
	assert.Equal(t, 1, got.count())
}

func TestNotificationHandler_unexpectedStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		endpoint       cofidis.Endpoint
		status         string
		wantUnexpected bool
	}{
		{"flags Refused on notificationUrlSuccess and still delivers it", cofidis.EndpointNotificationSuccess, "Refused", true},
		{"flags pending on notificationUrlOther", cofidis.EndpointNotificationOther, "pending", true},
		{"flags to_confirm on notificationUrlOther", cofidis.EndpointNotificationOther, "to_confirm", true},
		{"does not flag to_confirm on notificationUrlSuccess", cofidis.EndpointNotificationSuccess, "to_confirm", false},
		{"does not flag pending on notificationUrlPending", cofidis.EndpointNotificationPending, "pending", false},
		{"does not flag Refused on notificationUrlPending", cofidis.EndpointNotificationPending, "refused", false},
		{"never flags an unknown status", cofidis.EndpointNotificationSuccess, "brand_new_status", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got received
			h := notifierAt(t, tt.endpoint, got.notification(nil), cofidis.WithLogger(quietLogger()))

			w := serve(h, postForm("/notify", formBody(docKeyCompact, tt.status, "")))

			require.Equal(t, http.StatusOK, w.Code)
			ev, _ := got.only(t)
			assert.Equal(t, tt.wantUnexpected, ev.Unexpected)
			assert.Equal(t, tt.status, ev.RawStatus)
		})
	}
}

func TestNotificationHandler_allowedSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []cofidis.Option
		peer    string
		headers map[string]string
		want    int
		wantIP  string // the event's RemoteAddr when dispatched
	}{
		{
			name: "accepts a direct peer inside the allowlist",
			opts: []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			peer: "203.0.113.7:40000", want: 200, wantIP: "203.0.113.7",
		},
		{
			name: "accepts a direct peer given as a single address",
			opts: []cofidis.Option{cofidis.WithAllowedSources("198.51.100.1", "203.0.113.7")},
			peer: "203.0.113.7:40000", want: 200, wantIP: "203.0.113.7",
		},
		{
			name: "accepts an IPv6 peer inside an IPv6 prefix",
			opts: []cofidis.Option{cofidis.WithAllowedSources("2001:db8::/32")},
			peer: "[2001:db8::1]:443", want: 200, wantIP: "2001:db8::1",
		},
		{
			name: "accepts an IPv4-mapped IPv6 peer inside an IPv4 prefix",
			opts: []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			peer: "[::ffff:203.0.113.7]:443", want: 200, wantIP: "203.0.113.7",
		},
		{
			name: "denies a direct peer outside the allowlist with 403",
			opts: []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			peer: "198.51.100.7:40000", want: 403,
		},
		{
			name:    "ignores X-Forwarded-For from a peer that is not a trusted proxy (spoofing attempt)",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			peer:    "198.51.100.7:40000",
			headers: map[string]string{"X-Forwarded-For": "203.0.113.7"},
			want:    403,
		},
		{
			name:    "ignores Forwarded from a peer that is not a trusted proxy (spoofing attempt)",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			peer:    "198.51.100.7:40000",
			headers: map[string]string{"Forwarded": "for=203.0.113.7"},
			want:    403,
		},
		{
			name:    "ignores X-Forwarded-For when no proxy is trusted, even from an allowed peer",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			peer:    "203.0.113.7:40000",
			headers: map[string]string{"X-Forwarded-For": "198.51.100.7"},
			want:    200, wantIP: "203.0.113.7",
		},
		{
			name:    "honours X-Forwarded-For through a trusted proxy",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"X-Forwarded-For": "203.0.113.7"},
			want:    200, wantIP: "203.0.113.7",
		},
		{
			name:    "takes the rightmost untrusted hop, not a client-supplied one on the left",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"X-Forwarded-For": "203.0.113.7, 198.51.100.7, 10.0.0.3"},
			want:    403,
		},
		{
			name:    "skips every trusted proxy hop",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"X-Forwarded-For": "198.51.100.7, 203.0.113.7, 10.0.0.9, 10.0.0.3"},
			want:    200, wantIP: "203.0.113.7",
		},
		{
			name:    "honours Forwarded for= through a trusted proxy",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"Forwarded": "for=198.51.100.7;proto=https, for=203.0.113.7;proto=https"},
			want:    200, wantIP: "203.0.113.7",
		},
		{
			name:    "honours a quoted IPv6 Forwarded for= with a port",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("2001:db8::/32"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"Forwarded": `for="[2001:db8::1]:4711"`},
			want:    200, wantIP: "2001:db8::1",
		},
		{
			name: "prefers Forwarded over X-Forwarded-For",
			opts: []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer: "10.0.0.2:40000",
			headers: map[string]string{
				"Forwarded":       "for=198.51.100.7",
				"X-Forwarded-For": "203.0.113.7",
			},
			want: 403,
		},
		{
			name:    "denies a malformed X-Forwarded-For from a trusted proxy with 403",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"X-Forwarded-For": "203.0.113.7, not-an-address"},
			want:    403,
		},
		{
			name:    "denies a Forwarded element without for= with 403",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"Forwarded": "for=203.0.113.7, proto=https"},
			want:    403,
		},
		{
			name:    "denies an obfuscated Forwarded identifier with 403",
			opts:    []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"Forwarded": "for=_hidden"},
			want:    403,
		},
		{
			name: "denies a peer whose address cannot be parsed with 403",
			opts: []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			peer: "@unix-socket", want: 403,
		},
		{
			name:    "uses trusted proxies only for the address when there is no allowlist",
			opts:    []cofidis.Option{cofidis.WithTrustedProxies("10.0.0.0/8")},
			peer:    "10.0.0.2:40000",
			headers: map[string]string{"X-Forwarded-For": "198.51.100.7"},
			want:    200, wantIP: "198.51.100.7",
		},
		{
			name: "dispatches with an unknown address when there is no allowlist",
			peer: "@unix-socket", want: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got received
			h := notifier(t, got.notification(nil), append([]cofidis.Option{cofidis.WithLogger(quietLogger())}, tt.opts...)...)
			r := postForm("/notify", formBody(docKeyCompact, "to_confirm", ""))
			r.RemoteAddr = tt.peer
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}

			w := serve(h, r)

			require.Equal(t, tt.want, w.Code)
			if tt.want != http.StatusOK {
				assert.Zero(t, got.count(), "a forbidden request is not dispatched")
				return
			}
			ev, _ := got.only(t)
			var want netip.Addr
			if tt.wantIP != "" {
				want = netip.MustParseAddr(tt.wantIP)
			}
			assert.Equal(t, want, ev.RemoteAddr)
		})
	}
}

func TestNotificationHandler_verifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		claimed      string
		verifier     cofidis.Verifier
		want         int
		wantVerified cofidis.Status // the dispatched event's VerifiedStatus; "" when not dispatched
	}{
		{"dispatches a Verified event when the verifier agrees", "to_confirm", statusIs(cofidis.StatusToConfirm), 200, cofidis.StatusToConfirm},
		{"agrees whatever the verifier's capitalisation", "To_Confirm", statusIs("TO_CONFIRM"), 200, cofidis.StatusToConfirm},
		{"agrees on an unknown status spelled identically", "brand_new_status", statusIs("brand_new_status"), 200, "brand_new_status"},
		{"acknowledges a stale to_confirm when Cofidis says validated, without dispatching", "to_confirm", statusIs(cofidis.StatusValidated), 200, ""},
		{"acknowledges a stale pending when Cofidis says Refused, without dispatching", "pending", statusIs(cofidis.StatusRefused), 200, ""},
		{"asks for a retry when to_confirm is claimed and Cofidis says Refused", "to_confirm", statusIs(cofidis.StatusRefused), 503, ""},
		{"asks for a retry when Cofidis is behind the claimed status", "validated", statusIs(cofidis.StatusToConfirm), 503, ""},
		{"asks for a retry when the verifier reports an unknown status", "to_confirm", statusIs("brand_new_status"), 503, ""},
		{"asks for a retry when the claimed status is unknown and differs", "brand_new_status", statusIs(cofidis.StatusValidated), 503, ""},
		{"asks for a retry when the verifier fails", "to_confirm", verifierFails(errGetStatus), 503, ""},
		{"asks for a retry when the verifier panics", "to_confirm", verifierPanics(), 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got received
			h := notifier(t, got.notification(nil), cofidis.WithVerifier(tt.verifier), cofidis.WithLogger(quietLogger()))

			w := serve(h, postForm("/notify", formBody(docKeyCompact, tt.claimed, "")))

			assert.Equal(t, tt.want, w.Code)
			if tt.wantVerified == "" {
				assert.Zero(t, got.count(), "not dispatched")
				return
			}
			ev, _ := got.only(t)
			assert.True(t, ev.Verified)
			assert.Equal(t, tt.wantVerified, ev.VerifiedStatus)
		})
	}

	t.Run("passes the transaction key to the verifier", func(t *testing.T) {
		t.Parallel()
		var asked cofidis.TransactionKey
		v := cofidis.VerifierFunc(func(_ context.Context, k cofidis.TransactionKey) (cofidis.Status, error) {
			asked = k
			return cofidis.StatusPending, nil
		})
		h := notifier(t, func(context.Context, cofidis.Event) error { return nil }, cofidis.WithVerifier(v), cofidis.WithLogger(quietLogger()))
		w := serve(h, postForm("/notify", readRequestBody(t, "doc-notification.body")))
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, wantDocKey, asked)
	})
	t.Run("answers 503 to a verifier slower than WithVerifyTimeout, which sees its deadline", func(t *testing.T) {
		t.Parallel()
		var got received
		seen := make(chan error, 1)
		h := notifier(t, got.notification(nil), cofidis.WithVerifier(blockingVerifier(seen)), cofidis.WithVerifyTimeout(20*time.Millisecond), cofidis.WithLogger(quietLogger()))
		start := time.Now()

		w := serve(h, postForm("/notify", formBody(docKeyCompact, "to_confirm", "")))

		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.ErrorIs(t, <-seen, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Zero(t, got.count())
	})
	t.Run("gives the verifier the request's context", func(t *testing.T) {
		t.Parallel()
		type ctxKey struct{}
		var saw any
		v := cofidis.VerifierFunc(func(ctx context.Context, _ cofidis.TransactionKey) (cofidis.Status, error) {
			saw = ctx.Value(ctxKey{})
			return cofidis.StatusToConfirm, nil
		})
		h := notifier(t, func(context.Context, cofidis.Event) error { return nil }, cofidis.WithVerifier(v), cofidis.WithLogger(quietLogger()))
		r := postForm("/notify", formBody(docKeyCompact, "to_confirm", ""))
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "request"))
		serve(h, r)
		assert.Equal(t, "request", saw)
	})
	t.Run("never reports Verified without a verifier", func(t *testing.T) {
		t.Parallel()
		var got received
		h := notifier(t, got.notification(nil), cofidis.WithLogger(quietLogger()))
		for _, st := range []string{"to_confirm", "validated", "pending"} {
			serve(h, postForm("/notify", formBody(docKeyCompact, st, "")))
		}
		require.Equal(t, 3, got.count())
		for _, ev := range got.events {
			assert.False(t, ev.Verified)
			assert.Empty(t, ev.VerifiedStatus)
		}
	})
	t.Run("does not ask the verifier about a rejected request", func(t *testing.T) {
		t.Parallel()
		asked := false
		v := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
			asked = true
			return cofidis.StatusToConfirm, nil
		})
		h := notifier(t, func(context.Context, cofidis.Event) error { return nil }, cofidis.WithVerifier(v), cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithLogger(quietLogger()))
		for _, r := range []*http.Request{
			postForm("/notify", formBody(docKeyCompact, "to_confirm", "")), // 192.0.2.1, httptest's peer
			postForm("/notify", "transactionKey=%zz"),
		} {
			assert.NotEqual(t, http.StatusOK, serve(h, r).Code)
		}
		assert.False(t, asked)
	})
}

func TestNotificationHandler_onError(t *testing.T) {
	t.Parallel()
	errDB := errors.New("database down")
	tests := []struct {
		name       string
		opts       []cofidis.Option
		fn         cofidis.NotificationFunc
		body       string
		wantCalled bool
		wantIs     []error
		wantStatus int
		wantField  string
		wantPanic  bool
	}{
		{
			name:       "reports a repeated field as ErrRepeatedField naming the field",
			body:       formBody(docKeyCompact, "pending", "") + "&transactionStatus=Refused",
			wantCalled: true, wantIs: []error{cofidis.ErrRepeatedField}, wantStatus: 400, wantField: cofidis.FieldTransactionStatus,
		},
		{
			name:       "reports an invalid key as ErrInvalidTransactionKey",
			body:       formBody("{", "pending", ""),
			wantCalled: true, wantIs: []error{cofidis.ErrInvalidTransactionKey}, wantStatus: 400, wantField: cofidis.FieldTransactionKey,
		},
		{
			name:       "reports a forbidden source as ErrForbiddenSource",
			opts:       []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")},
			wantCalled: true, wantIs: []error{cofidis.ErrForbiddenSource}, wantStatus: 403,
		},
		{
			name:       "reports a failed verifier as ErrVerifierUnavailable wrapping its error",
			opts:       []cofidis.Option{cofidis.WithVerifier(verifierFails(errGetStatus))},
			wantCalled: true, wantIs: []error{cofidis.ErrVerifierUnavailable, errGetStatus}, wantStatus: 503,
		},
		{
			name:       "reports a disagreeing verifier as ErrNotVerified",
			opts:       []cofidis.Option{cofidis.WithVerifier(statusIs(cofidis.StatusRefused))},
			wantCalled: true, wantIs: []error{cofidis.ErrNotVerified}, wantStatus: 503, wantField: cofidis.FieldTransactionStatus,
		},
		{
			name:       "reports a failed callback as ErrCallback wrapping its error",
			fn:         func(context.Context, cofidis.Event) error { return fmt.Errorf("saving: %w", errDB) },
			wantCalled: true, wantIs: []error{cofidis.ErrCallback, errDB}, wantStatus: 500,
		},
		{
			name:       "reports a panic as ErrCallback wrapping a *PanicError",
			fn:         func(context.Context, cofidis.Event) error { panic("boom") },
			wantCalled: true, wantIs: []error{cofidis.ErrCallback}, wantStatus: 500, wantPanic: true,
		},
		{name: "is not called for a dispatched notification"},
		{
			name: "is not called for a Permanent failure, which is acknowledged",
			fn:   func(context.Context, cofidis.Event) error { return cofidis.Permanent(errDB) },
		},
		{
			name: "is not called for a stale notification, which is acknowledged",
			opts: []cofidis.Option{cofidis.WithVerifier(statusIs(cofidis.StatusValidated))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				calls int
				got   error
			)
			hook := func(r *http.Request, err error) {
				require.NotNil(t, r)
				calls++
				got = err
			}
			fn := tt.fn
			if fn == nil {
				fn = func(context.Context, cofidis.Event) error { return nil }
			}
			opts := append([]cofidis.Option{cofidis.WithOnError(hook), cofidis.WithLogger(quietLogger())}, tt.opts...)
			h := notifier(t, fn, opts...)
			body := tt.body
			if body == "" {
				body = formBody(docKeyCompact, "to_confirm", "")
			}

			w := serve(h, postForm("/notify", body))

			if !tt.wantCalled {
				assert.Zero(t, calls)
				assert.Equal(t, http.StatusOK, w.Code)
				return
			}
			require.Equal(t, 1, calls)
			assert.Equal(t, tt.wantStatus, w.Code)
			for _, target := range tt.wantIs {
				assert.ErrorIs(t, got, target)
			}
			var e *cofidis.Error
			require.ErrorAs(t, got, &e)
			assert.Equal(t, tt.wantStatus, e.HTTPStatus)
			assert.Equal(t, tt.wantField, e.Field)
			assert.Equal(t, tt.wantStatus, cofidis.HTTPStatus(got))
			if tt.wantPanic {
				var pe *cofidis.PanicError
				require.ErrorAs(t, got, &pe)
				assert.Equal(t, "boom", pe.Value)
				assert.NotEmpty(t, pe.Stack)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a shared
// logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHandlers_logging(t *testing.T) {
	t.Parallel()
	keyMissingDate := strings.Replace(echoKeyJSON, `"merchantTransactionDate":"20260227"`, `"merchantTransactionDate":"2026-02-27"`, 1)
	notifications := []struct {
		name    string
		opts    []cofidis.Option
		fn      cofidis.NotificationFunc
		body    string
		wantLog string
	}{
		{name: "a repeated field", body: formBody(echoKeyJSON, "to_confirm", "") + "&transactionStatus=" + echoTransactionID, wantLog: "WARN"},
		{name: "an invalid key member", body: formBody(keyMissingDate, "to_confirm", ""), wantLog: "WARN"},
		{name: "a malformed key", body: formBody(echoKeyJSON[:60], "to_confirm", ""), wantLog: "WARN"},
		{name: "an invalid status", body: formBody(echoKeyJSON, echoTransactionID+"\x01", ""), wantLog: "WARN"},
		{name: "a failed callback", fn: func(context.Context, cofidis.Event) error { return errors.New("db down") }, wantLog: "ERROR"},
		{name: "a panicking callback", fn: func(context.Context, cofidis.Event) error { panic("boom") }, wantLog: "goroutine"},
		{name: "a Permanent failure", fn: func(context.Context, cofidis.Event) error { return cofidis.Permanent(errors.New("gone")) }, wantLog: "WARN"},
		{name: "a stale notification", opts: []cofidis.Option{cofidis.WithVerifier(statusIs(cofidis.StatusValidated))}, wantLog: "INFO"},
		{name: "a disagreeing verifier", opts: []cofidis.Option{cofidis.WithVerifier(statusIs(cofidis.StatusRefused))}, wantLog: "ERROR"},
		{name: "a forbidden source", opts: []cofidis.Option{cofidis.WithAllowedSources("203.0.113.0/24")}, wantLog: "WARN"},
	}
	for _, tt := range notifications {
		t.Run("never logs the body of "+tt.name+" notification", func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			fn := tt.fn
			if fn == nil {
				fn = func(context.Context, cofidis.Event) error { return nil }
			}
			h := notifier(t, fn, append([]cofidis.Option{cofidis.WithLogger(lg)}, tt.opts...)...)
			body := tt.body
			if body == "" {
				body = formBody(echoKeyJSON, "to_confirm", "")
			}

			serve(h, postForm("/notify", body))

			logs := buf.String()
			require.Contains(t, logs, tt.wantLog, "the failure is logged")
			assert.NotContains(t, logs, body)
			assertNoEcho(t, logs, echoProviderID, echoKeyJSON, keyMissingDate, url.QueryEscape(echoKeyJSON))
		})
	}

	t.Run("never logs the body of a failed redirect", func(t *testing.T) {
		t.Parallel()
		var buf syncBuffer
		lg := slog.New(slog.NewJSONHandler(&buf, nil))
		h := redirector(t, func(http.ResponseWriter, *http.Request, cofidis.Event) error {
			return errors.New("template missing")
		}, cofidis.WithLogger(lg), cofidis.WithVerifier(verifierFails(errGetStatus)))
		body := formBody(echoKeyJSON, "to_confirm", "")
		serve(h, postForm("/return", body))
		serve(h, postForm("/return", body+"&transactionKey=x"))

		logs := buf.String()
		require.Contains(t, logs, "ERROR")
		assert.NotContains(t, logs, body)
		assertNoEcho(t, logs, echoProviderID, echoKeyJSON, url.QueryEscape(echoKeyJSON))
	})
}

func TestNotificationHandler_reraisesErrAbortHandler(t *testing.T) {
	t.Parallel()
	h := notifier(t, func(context.Context, cofidis.Event) error {
		panic(http.ErrAbortHandler)
	}, cofidis.WithLogger(quietLogger()))

	v := recoverFrom(func() { serve(h, postForm("/notify", formBody(docKeyCompact, "to_confirm", ""))) })

	assert.Equal(t, http.ErrAbortHandler, v)
}

// recoverFrom runs fn and returns what it panicked with, or nil.
func recoverFrom(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}
