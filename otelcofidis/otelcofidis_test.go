package otelcofidis_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/otelcofidis"
)

// TestPendingAccepted plays the documented pending journey (the browser
// back on returnUrlOther with pending, pending and pending/signed
// notifications, then to_confirm, each verified and processed once) and
// checks every series and span it produces.
func TestPendingAccepted(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	s := newShop(t, []cofidis.Observer{tel.observer(t)}, nil, nil)
	assert.Equal(t, []int{303, 200, 200, 200}, s.play(t, cofidistest.PendingAccepted(testKey)))

	assert.Equal(t, []string{
		"cofidis.call.duration{call=callback,channel=notification} count=3",
		"cofidis.call.duration{call=callback,channel=redirect} count=1",
		"cofidis.call.duration{call=store.claim,channel=notification} count=3",
		"cofidis.call.duration{call=store.complete,channel=notification} count=3",
		"cofidis.call.duration{call=store.peek,channel=redirect} count=1",
		"cofidis.call.duration{call=verifier,channel=notification} count=3",
		"cofidis.call.duration{call=verifier,channel=redirect} count=1",
		"cofidis.deliveries{channel=notification,endpoints=notificationUrlPending,outcome=processed,status=pending,sub_state=signed} 1",
		"cofidis.deliveries{channel=notification,endpoints=notificationUrlPending,outcome=processed,status=pending,sub_state=} 1",
		"cofidis.deliveries{channel=notification,endpoints=notificationUrlPending,outcome=processed,status=to_confirm,sub_state=} 1",
		"cofidis.deliveries{channel=redirect,endpoints=returnUrlOther,outcome=processed,status=pending,sub_state=} 1",
		"cofidis.request.duration{channel=notification,outcome=processed} count=3",
		"cofidis.request.duration{channel=redirect,outcome=processed} count=1",
	}, tel.series(t))

	notified := func(status, more string) []string {
		return []string{
			"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlPending " + identity +
				" cofidis.outcome=processed cofidis.status=" + status + more + " cofidis.verified=true",
			"  cofidis.store.claim",
			"  cofidis.verifier",
			"  cofidis.callback",
			"  cofidis.store.complete",
		}
	}
	want := []string{
		"cofidis.redirect cofidis.channel=redirect cofidis.endpoints=returnUrlOther " + identity +
			" cofidis.outcome=processed cofidis.status=pending cofidis.verified=true",
		"  cofidis.store.peek",
		"  cofidis.verifier",
		"  cofidis.callback",
	}
	want = append(want, notified("pending", "")...)
	want = append(want, notified("pending", " cofidis.sub_state=signed")...)
	want = append(want, notified("to_confirm", "")...)
	assert.Equal(t, want, tel.tree())
}

// failingStore is a MemoryStore whose Claim fails.
type failingStore struct{ *cofidis.MemoryStore }

func (failingStore) Claim(context.Context, cofidis.ActionKey, time.Duration) (cofidis.ClaimResult, error) {
	return cofidis.ClaimResult{}, errors.New("redis: connection refused")
}

// TestOutcomes checks the series and spans of requests that are not
// processed: refused before decoding, refused by the Verifier, failed,
// duplicated.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		verifier cofidis.Verifier
		store    cofidis.Store
		// play sends the requests and returns the last answer's code.
		play   func(t *testing.T, s *shop) int
		code   int
		series []string
		tree   []string
	}{
		{
			name: "method not allowed: a client's mistake, status unset",
			play: func(t *testing.T, s *shop) int {
				j := notification(cofidis.EndpointNotificationSuccess, cofidis.StatusToConfirm)
				j.Steps[0].Method = http.MethodGet
				return s.play(t, j)[0]
			},
			code: 405,
			series: []string{
				"cofidis.rejections{channel=notification,error.type=method_not_allowed} 1",
				"cofidis.request.duration{channel=notification,error.type=method_not_allowed,outcome=rejected} count=1",
			},
			tree: []string{"cofidis.notification cofidis.channel=notification cofidis.outcome=rejected error.type=method_not_allowed !exception"},
		},
		{
			name: "no route",
			play: func(t *testing.T, s *shop) int {
				w := httptest.NewRecorder()
				s.router.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodPost, "https://shop.example/payments/elsewhere", nil))
				return w.Code
			},
			code: 404,
			series: []string{
				"cofidis.rejections{channel=unknown,error.type=unknown_url} 1",
				"cofidis.request.duration{channel=unknown,error.type=unknown_url,outcome=rejected} count=1",
			},
			tree: []string{"cofidis.unknown cofidis.channel=unknown cofidis.outcome=rejected error.type=unknown_url !exception"},
		},
		{
			name: "a browser posting to a notification URL",
			play: func(t *testing.T, s *shop) int {
				j := notification(cofidis.EndpointNotificationSuccess, cofidis.StatusToConfirm)
				j.Steps[0].Header = http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"cors"}}
				return s.play(t, j)[0]
			},
			code: 403,
			series: []string{
				"cofidis.rejections{channel=notification,error.type=browser_request} 1",
				"cofidis.request.duration{channel=notification,error.type=browser_request,outcome=rejected} count=1",
			},
			tree: []string{"cofidis.notification cofidis.channel=notification cofidis.outcome=rejected error.type=browser_request !exception"},
		},
		{
			name: "a status getStatus does not confirm: a 503, the span's status is Error",
			play: func(t *testing.T, s *shop) int {
				s.ledger.Set(testKey, cofidis.StatusRefused)
				ds, err := cofidistest.Fake{URLs: s.urls, Handler: s.router}.Play(t.Context(), notification(cofidis.EndpointNotificationSuccess, cofidis.StatusToConfirm))
				require.NoError(t, err)
				return ds[0].HTTPStatus
			},
			code: 503,
			series: []string{
				"cofidis.call.duration{call=store.claim,channel=notification} count=1",
				"cofidis.call.duration{call=store.release,channel=notification} count=1",
				"cofidis.call.duration{call=verifier,channel=notification} count=1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlSuccess,outcome=rejected,status=to_confirm,sub_state=} 1",
				"cofidis.rejections{channel=notification,error.type=not_verified} 1",
				"cofidis.request.duration{channel=notification,error.type=not_verified,outcome=rejected} count=1",
			},
			tree: []string{
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlSuccess " + identity +
					" cofidis.outcome=rejected cofidis.status=to_confirm cofidis.verified=false error.type=not_verified [Error not_verified] !exception",
				"  cofidis.store.claim",
				"  cofidis.verifier",
				"  cofidis.store.release",
			},
		},
		{
			name: "a Verifier timing out",
			verifier: cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				return "", fmt.Errorf("getStatus: %w", context.DeadlineExceeded)
			}),
			play: func(t *testing.T, s *shop) int {
				return s.play(t, notification(cofidis.EndpointNotificationOther, cofidis.StatusAborted))[0]
			},
			code: 503,
			series: []string{
				"cofidis.call.duration{call=store.claim,channel=notification} count=1",
				"cofidis.call.duration{call=store.release,channel=notification} count=1",
				"cofidis.call.duration{call=verifier,channel=notification,error.type=deadline_exceeded} count=1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlOther,outcome=rejected,status=Aborted,sub_state=} 1",
				"cofidis.rejections{channel=notification,error.type=verifier_unavailable} 1",
				"cofidis.request.duration{channel=notification,error.type=verifier_unavailable,outcome=rejected} count=1",
			},
			tree: []string{
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlOther " + identity +
					" cofidis.outcome=rejected cofidis.status=Aborted cofidis.verified=false error.type=verifier_unavailable [Error verifier_unavailable] !exception",
				"  cofidis.store.claim",
				"  cofidis.verifier error.type=deadline_exceeded [Error deadline_exceeded] !exception",
				"  cofidis.store.release",
			},
		},
		{
			name:  "a store that cannot be asked",
			store: failingStore{cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})},
			play: func(t *testing.T, s *shop) int {
				return s.play(t, notification(cofidis.EndpointNotificationOther, cofidis.StatusRefused))[0]
			},
			code: 503,
			series: []string{
				"cofidis.call.duration{call=store.claim,channel=notification,error.type=other} count=1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlOther,outcome=store_failed,status=Refused,sub_state=} 1",
				"cofidis.rejections{channel=notification,error.type=store_unavailable} 1",
				"cofidis.request.duration{channel=notification,error.type=store_unavailable,outcome=store_failed} count=1",
			},
			tree: []string{
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlOther " + identity +
					" cofidis.outcome=store_failed cofidis.status=Refused cofidis.verified=false error.type=store_unavailable [Error store_unavailable] !exception",
				"  cofidis.store.claim error.type=other [Error other] !exception",
			},
		},
		{
			name: "a failed callback",
			play: func(t *testing.T, s *shop) int {
				s.rec.NotifyError = func(cofidis.Event) error { return errors.New("database down") }
				return s.play(t, notification(cofidis.EndpointNotificationOther, cofidis.StatusRefused))[0]
			},
			code: 500,
			series: []string{
				"cofidis.call.duration{call=callback,channel=notification,error.type=other} count=1",
				"cofidis.call.duration{call=store.claim,channel=notification} count=1",
				"cofidis.call.duration{call=store.release,channel=notification} count=1",
				"cofidis.call.duration{call=verifier,channel=notification} count=1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlOther,outcome=failed,status=Refused,sub_state=} 1",
				"cofidis.request.duration{channel=notification,error.type=callback_failed,outcome=failed} count=1",
			},
			tree: []string{
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlOther " + identity +
					" cofidis.outcome=failed cofidis.status=Refused cofidis.verified=true error.type=callback_failed [Error callback_failed] !exception",
				"  cofidis.store.claim",
				"  cofidis.verifier",
				"  cofidis.callback error.type=other [Error other] !exception",
				"  cofidis.store.release",
			},
		},
		{
			name: "a permanent failure: acknowledged, status unset",
			play: func(t *testing.T, s *shop) int {
				s.rec.NotifyError = func(cofidis.Event) error { return cofidis.Permanent(errors.New("unknown order")) }
				return s.play(t, notification(cofidis.EndpointNotificationOther, cofidis.StatusRefused))[0]
			},
			code: 200,
			series: []string{
				"cofidis.call.duration{call=callback,channel=notification,error.type=permanent} count=1",
				"cofidis.call.duration{call=store.claim,channel=notification} count=1",
				"cofidis.call.duration{call=store.complete,channel=notification} count=1",
				"cofidis.call.duration{call=verifier,channel=notification} count=1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlOther,outcome=permanent,status=Refused,sub_state=} 1",
				"cofidis.request.duration{channel=notification,error.type=permanent,outcome=permanent} count=1",
			},
			tree: []string{
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlOther " + identity +
					" cofidis.outcome=permanent cofidis.status=Refused cofidis.verified=true error.type=permanent !exception",
				"  cofidis.store.claim",
				"  cofidis.verifier",
				"  cofidis.callback error.type=permanent [Error permanent] !exception",
				"  cofidis.store.complete",
			},
		},
		{
			name: "a duplicate: only the claim",
			play: func(t *testing.T, s *shop) int {
				j := notification(cofidis.EndpointNotificationSuccess, cofidis.StatusToConfirm)
				j.Steps = append(j.Steps, j.Steps[0])
				return s.play(t, j)[1]
			},
			code: 200,
			series: []string{
				"cofidis.call.duration{call=callback,channel=notification} count=1",
				"cofidis.call.duration{call=store.claim,channel=notification} count=2",
				"cofidis.call.duration{call=store.complete,channel=notification} count=1",
				"cofidis.call.duration{call=verifier,channel=notification} count=1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlSuccess,outcome=duplicate,status=to_confirm,sub_state=} 1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlSuccess,outcome=processed,status=to_confirm,sub_state=} 1",
				"cofidis.request.duration{channel=notification,outcome=duplicate} count=1",
				"cofidis.request.duration{channel=notification,outcome=processed} count=1",
			},
			tree: []string{
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlSuccess " + identity +
					" cofidis.outcome=processed cofidis.status=to_confirm cofidis.verified=true",
				"  cofidis.store.claim",
				"  cofidis.verifier",
				"  cofidis.callback",
				"  cofidis.store.complete",
				"cofidis.notification cofidis.channel=notification cofidis.duplicate=true cofidis.endpoints=notificationUrlSuccess " + identity +
					" cofidis.outcome=duplicate cofidis.status=to_confirm cofidis.verified=false",
				"  cofidis.store.claim",
			},
		},
		{
			name: "a stale notification",
			play: func(t *testing.T, s *shop) int {
				j := notification(cofidis.EndpointNotificationSuccess, cofidis.StatusToConfirm)
				j.Steps = append(j.Steps, cofidistest.Step{Request: cofidistest.Request{Endpoint: cofidis.EndpointNotificationPending, Status: cofidis.StatusPending}})
				return s.play(t, j)[1]
			},
			code: 200,
			series: []string{
				"cofidis.call.duration{call=callback,channel=notification} count=1",
				"cofidis.call.duration{call=store.claim,channel=notification} count=2",
				"cofidis.call.duration{call=store.complete,channel=notification} count=2",
				"cofidis.call.duration{call=verifier,channel=notification} count=1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlPending,outcome=stale,status=pending,sub_state=} 1",
				"cofidis.deliveries{channel=notification,endpoints=notificationUrlSuccess,outcome=processed,status=to_confirm,sub_state=} 1",
				"cofidis.request.duration{channel=notification,outcome=processed} count=1",
				"cofidis.request.duration{channel=notification,outcome=stale} count=1",
			},
			tree: []string{
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlSuccess " + identity +
					" cofidis.outcome=processed cofidis.status=to_confirm cofidis.verified=true",
				"  cofidis.store.claim",
				"  cofidis.verifier",
				"  cofidis.callback",
				"  cofidis.store.complete",
				"cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlPending " + identity +
					" cofidis.outcome=stale cofidis.stale=true cofidis.status=pending cofidis.verified=false",
				"  cofidis.store.claim",
				"  cofidis.store.complete",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			s := newShop(t, []cofidis.Observer{tel.observer(t)}, tt.verifier, tt.store)
			assert.Equal(t, tt.code, tt.play(t, s))
			assert.Equal(t, tt.series, tel.series(t))
			assert.Equal(t, tt.tree, tel.tree())
		})
	}
}

// TestUnknownStatuses: 1,000 distinct statuses nobody documented, each
// verified and processed, make one series per instrument, never one per
// status; no span or series carries a raw status.
func TestUnknownStatuses(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	s := newShop(t, []cofidis.Observer{tel.observer(t)}, nil, nil)
	j := cofidistest.Journey{Name: "unknown", Key: testKey}
	for i := range 1000 {
		j.Steps = append(j.Steps, cofidistest.Step{Request: cofidistest.Request{
			Endpoint: cofidis.EndpointNotificationOther,
			Status:   cofidis.Status(fmt.Sprintf("Invented_%04d", i)),
		}})
	}
	for _, code := range s.play(t, j) {
		require.Equal(t, 200, code)
	}
	series := tel.series(t)
	assert.Equal(t, []string{
		"cofidis.call.duration{call=callback,channel=notification} count=1000",
		"cofidis.call.duration{call=store.claim,channel=notification} count=1000",
		"cofidis.call.duration{call=store.complete,channel=notification} count=1000",
		"cofidis.call.duration{call=verifier,channel=notification} count=1000",
		"cofidis.deliveries{channel=notification,endpoints=notificationUrlOther,outcome=processed,status=unknown,sub_state=} 1000",
		"cofidis.request.duration{channel=notification,outcome=processed} count=1000",
	}, series)
	assert.Len(t, series, 6, "a bounded number of series")

	spans := tel.spans.Ended()
	assert.Len(t, spans, 5000, "a request span and four call spans per notification")
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			assert.NotContains(t, kv.Value.String(), "Invented", "span %s, attribute %s", sp.Name(), kv.Key)
		}
	}
}

// TestNoPersonalData: what the transaction's identity does not need never
// reaches a span or a series: providerId, providerTransactionId, the raw
// status as posted, the client's address, the query.
func TestNoPersonalData(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	urls, err := cofidis.NewURLs("https://shop.example/payments?order=SECRET-ORDER")
	require.NoError(t, err)
	rec := &cofidistest.Recorder{RedirectURL: "/orders/42"}
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify,
		cofidis.WithInsecureSkipVerify(), cofidis.WithObserver(tel.observer(t)))
	require.NoError(t, err)
	key := testKey
	key.ProviderID = "SECRET-PROVIDER"
	key.ProviderTransactionID = cofidis.NullStringOf("SECRET-PTX")
	j := cofidistest.Journey{Name: "private", Key: key, Steps: []cofidistest.Step{
		{Request: cofidistest.Request{Endpoint: cofidis.EndpointReturnOther, Status: "PENDING", RemoteAddr: "203.0.113.7:4444"}},
		{Request: cofidistest.Request{Endpoint: cofidis.EndpointNotificationPending, Status: "pending", SubState: "SECRET-SUBSTATE", RemoteAddr: "203.0.113.7:4444"}},
	}}
	ds, err := cofidistest.Fake{URLs: urls, Handler: rt}.Play(t.Context(), j)
	require.NoError(t, err)
	require.Equal(t, 303, ds[0].HTTPStatus)
	require.Equal(t, 200, ds[1].HTTPStatus)

	forbidden := []string{"SECRET", "PENDING", "203.0.113.7", "order="}
	spans := tel.spans.Ended()
	require.Len(t, spans, 4)
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			for _, f := range forbidden {
				assert.NotContains(t, kv.Value.String(), f, "span %s, attribute %s", sp.Name(), kv.Key)
			}
		}
	}
	for _, line := range tel.series(t) {
		for _, f := range forbidden {
			assert.NotContains(t, line, f)
		}
	}
	assert.Contains(t, tel.series(t),
		"cofidis.deliveries{channel=notification,endpoints=notificationUrlPending,outcome=processed,status=pending,sub_state=unknown} 1")
}

// TestLongIdentity: an identity member longer than 128 bytes (anyone can
// post one without a Verifier) is cut on the span, at a character
// boundary.
func TestLongIdentity(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	require.NoError(t, err)
	rec := &cofidistest.Recorder{}
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify,
		cofidis.WithInsecureSkipVerify(), cofidis.WithObserver(tel.observer(t)))
	require.NoError(t, err)
	key := testKey
	// The core refuses members over cofidis.MaxKeyMemberBytes (256); the
	// spans cut them shorter still.
	key.MerchantID = strings.Repeat("9", cofidis.MaxKeyMemberBytes)
	key.MerchantTransactionID = strings.Repeat("a", 127) + "é" + strings.Repeat("b", 100) // é straddles byte 128
	_, err = cofidistest.Fake{URLs: urls, Handler: rt}.Play(t.Context(), cofidistest.Aborted(key))
	require.NoError(t, err)
	spans := tel.spans.Ended()
	require.Len(t, spans, 2)
	got := map[string]string{}
	for _, kv := range spans[1].Attributes() {
		got[string(kv.Key)] = kv.Value.AsString()
	}
	assert.Equal(t, strings.Repeat("9", 128), got["cofidis.merchant_id"])
	assert.Equal(t, strings.Repeat("a", 127), got["cofidis.merchant_transaction_id"])
}

// TestOtelhttp: wrapped in otelhttp.NewHandler, each request's span is a
// child of the server span, in its trace.
func TestOtelhttp(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	s := newShop(t, []cofidis.Observer{tel.observer(t)}, nil, nil)
	h := otelhttp.NewHandler(s.router, "cofidis", otelhttp.WithTracerProvider(tel.tp), otelhttp.WithMeterProvider(tel.mp))
	ds, err := s.fake(h).Play(t.Context(), cofidistest.Accepted(testKey))
	require.NoError(t, err)
	require.Len(t, ds, 2)

	kinds := map[trace.SpanID]trace.SpanKind{}
	for _, sp := range tel.spans.Ended() {
		kinds[sp.SpanContext().SpanID()] = sp.SpanKind()
	}
	var requests int
	for _, sp := range tel.spans.Ended() {
		if sp.Name() != "cofidis.redirect" && sp.Name() != "cofidis.notification" {
			continue
		}
		requests++
		parent := sp.Parent()
		assert.Equal(t, trace.SpanKindServer, kinds[parent.SpanID()], "%s: the parent is otelhttp's server span", sp.Name())
		assert.Equal(t, parent.TraceID(), sp.SpanContext().TraceID())
		assert.Equal(t, trace.SpanKindInternal, sp.SpanKind())
	}
	assert.Equal(t, 2, requests)
	assert.Equal(t, []string{
		"POST",
		"  cofidis.redirect",
		"    cofidis.store.peek",
		"    cofidis.verifier",
		"    cofidis.callback",
		"POST",
		"  cofidis.notification",
		"    cofidis.store.claim",
		"    cofidis.verifier",
		"    cofidis.callback",
		"    cofidis.store.complete",
	}, spanNames(tel.tree()))
}

// TestParentFromContext: without otelhttp, a span in the request's
// context is the parent.
func TestParentFromContext(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	s := newShop(t, []cofidis.Observer{tel.observer(t)}, nil, nil)
	ctx, parent := tel.tp.Tracer("test").Start(t.Context(), "parent")
	_, err := s.fake(nil).Play(ctx, notification(cofidis.EndpointNotificationOther, cofidis.StatusAborted))
	require.NoError(t, err)
	parent.End()
	assert.Equal(t, []string{
		"parent",
		"  cofidis.notification cofidis.channel=notification cofidis.endpoints=notificationUrlOther " + identity + " cofidis.outcome=processed cofidis.status=Aborted cofidis.verified=true",
		"    cofidis.store.claim",
		"    cofidis.verifier",
		"    cofidis.callback",
		"    cofidis.store.complete",
	}, tel.tree())
}

// callbackSpan records the span the callback runs under.
type callbackSpan struct {
	cofidistest.Recorder
	span trace.SpanContext
}

func (c *callbackSpan) Notify(ctx context.Context, ev cofidis.Event) error {
	c.span = trace.SpanContextFromContext(ctx)
	return c.Recorder.Notify(ctx, ev)
}

// TestCallbackContext: the merchant's callback runs under the callback's
// span, so that its own spans (a database call) are its children.
func TestCallbackContext(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	require.NoError(t, err)
	cb := &callbackSpan{}
	rt, err := cofidis.NewRouter(urls, cb.Redirect, cb.Notify, cofidis.WithInsecureSkipVerify(), cofidis.WithObserver(tel.observer(t)))
	require.NoError(t, err)
	_, err = cofidistest.Fake{URLs: urls, Handler: rt}.Play(t.Context(), cofidistest.Aborted(testKey))
	require.NoError(t, err)
	spans := tel.spans.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, "cofidis.callback", spans[0].Name())
	assert.Equal(t, spans[0].SpanContext(), cb.span)
}

// TestSeveralObservers: two Observers on one Router each end their own
// spans, not the innermost span of the context (the other's).
func TestSeveralObservers(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	s := newShop(t, []cofidis.Observer{tel.observer(t), tel.observer(t)}, nil, nil)
	s.play(t, notification(cofidis.EndpointNotificationOther, cofidis.StatusAborted))
	assert.Len(t, tel.spans.Started(), 10)
	assert.Len(t, tel.spans.Ended(), 10, "every span started is ended")
	assert.Equal(t, []string{
		"cofidis.notification",
		"  cofidis.notification",
		"    cofidis.store.claim",
		"      cofidis.store.claim",
		"    cofidis.verifier",
		"      cofidis.verifier",
		"    cofidis.callback",
		"      cofidis.callback",
		"    cofidis.store.complete",
		"      cofidis.store.complete",
	}, spanNames(tel.tree()), "the first Observer's spans are the parents of the second's")
	assert.Contains(t, tel.series(t), "cofidis.deliveries{channel=notification,endpoints=notificationUrlOther,outcome=processed,status=Aborted,sub_state=} 2")
}

// globalsSet records that TestGlobalProviders set otel's global providers
// in this process.
var globalsSet atomic.Bool

// TestGlobalProviders: without options, New uses the global providers,
// even those set after it (the global providers delegate). It is the only
// test that sets them. The global no-op providers delegate once per
// process, to the first providers set: on a later run of the test (-count),
// the providers are set before New.
func TestGlobalProviders(t *testing.T) {
	tel := newTelemetry(t)
	setGlobals := func() {
		otel.SetMeterProvider(tel.mp)
		otel.SetTracerProvider(tel.tp)
	}
	again := globalsSet.Swap(true)
	if again {
		setGlobals()
	}
	obs, err := otelcofidis.New()
	require.NoError(t, err)
	if !again {
		setGlobals()
	}
	s := newShop(t, []cofidis.Observer{obs}, nil, nil)
	s.play(t, notification(cofidis.EndpointNotificationOther, cofidis.StatusAborted))
	assert.Contains(t, tel.series(t), "cofidis.deliveries{channel=notification,endpoints=notificationUrlOther,outcome=processed,status=Aborted,sub_state=} 1")
	assert.Len(t, tel.spans.Ended(), 5)
}

// TestObserverWithoutRequest: a call outside a request and any trace (the
// core releases an abandoned claim on a background context) is measured
// without a channel, and gets no span; within a trace, it is a child span.
func TestObserverWithoutRequest(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	obs := tel.observer(t)
	ctx := obs.StartCall(t.Context(), cofidis.CallStoreRelease)
	obs.EndCall(ctx, cofidis.CallStoreRelease, time.Millisecond, nil)
	// EndRequest with a context StartRequest did not return: metrics only.
	obs.EndRequest(t.Context(), cofidis.Report{Channel: cofidis.ChannelNotification, Outcome: cofidis.OutcomeRejected, Err: cofidis.ErrBodyRead})
	assert.Equal(t, []string{
		"cofidis.call.duration{call=store.release} count=1",
		"cofidis.rejections{channel=notification,error.type=body_read} 1",
	}, tel.series(t))
	assert.Empty(t, tel.tree())

	ctx, parent := tel.tp.Tracer("test").Start(t.Context(), "merchant's handler")
	ctx = obs.StartCall(ctx, cofidis.CallStoreTrack)
	obs.EndCall(ctx, cofidis.CallStoreTrack, time.Millisecond, nil)
	parent.End()
	assert.Equal(t, []string{"merchant's handler", "  cofidis.store.track"}, tel.tree())
}
