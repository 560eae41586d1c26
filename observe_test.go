package cofidis_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// traceObserver records what it sees as lines, and marks the contexts it
// returns so that the test can check they are the ones used below.
type traceObserver struct {
	name  string
	mu    sync.Mutex
	lines []string
}

type traceKey struct{ name string }

func (o *traceObserver) add(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, fmt.Sprintf(format, args...))
}

func (o *traceObserver) StartRequest(ctx context.Context, ch cofidis.Channel) context.Context {
	o.add("start %s", ch)
	return context.WithValue(ctx, traceKey{o.name}, "request")
}

func (o *traceObserver) EndRequest(ctx context.Context, rep cofidis.Report) {
	ev := "-"
	if rep.Event != nil {
		ev = rep.Event.Status.Label()
	}
	o.add("end %s %s %s class=%s status=%d in=%v", rep.Channel, ev, rep.Outcome, cofidis.ErrorClass(rep.Err), rep.HTTPStatus, ctx.Value(traceKey{o.name}))
}

func (o *traceObserver) StartCall(ctx context.Context, call cofidis.Call) context.Context {
	o.add("call %s in=%v", call, ctx.Value(traceKey{o.name}))
	return context.WithValue(ctx, traceKey{o.name}, call.String())
}

func (o *traceObserver) EndCall(ctx context.Context, call cofidis.Call, elapsed time.Duration, err error) {
	o.add("done %s err=%t", call, err != nil)
	if elapsed < 0 {
		o.add("negative duration")
	}
}

func (o *traceObserver) trace() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.lines
	o.lines = nil
	return out
}

func TestObserver(t *testing.T) {
	t.Parallel()
	obs, second := &traceObserver{name: "a"}, &traceObserver{name: "b"}
	urls := testURLs(t)
	var callbackCtx context.Context
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
			callbackCtx = r.Context()
			return cofidis.SeeOther(w, r, "/orders/1")
		},
		func(ctx context.Context, ev cofidis.Event) error {
			callbackCtx = ctx
			if ev.Status == cofidis.StatusRefused {
				return fmt.Errorf("database down")
			}
			return nil
		},
		cofidis.WithVerifier(cofidis.VerifierFunc(func(_ context.Context, k cofidis.TransactionKey) (cofidis.Status, error) {
			switch {
			case strings.HasPrefix(k.MerchantTransactionID, "X"):
				return cofidis.StatusAborted, nil
			case strings.HasPrefix(k.MerchantTransactionID, "R"):
				return cofidis.StatusRefused, nil
			}
			return cofidis.StatusToConfirm, nil
		})),
		cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})),
		cofidis.WithObserver(obs), cofidis.WithObserver(second),
		cofidis.WithLogger(quietLogger()))
	require.NoError(t, err)
	post := func(target, txn, status string) int {
		return idemPost(pathHandler{rt, target}, txn, status, "").Code
	}

	tests := []struct {
		name  string
		post  func() int
		want  int
		trace []string
	}{
		{
			name: "a processed notification: claim, verify, callback, complete",
			post: func() int { return post(urls.NotificationURLSuccess, "T1", "to_confirm") },
			want: 200,
			trace: []string{
				"start notification",
				"call store.claim in=request", "done store.claim err=false",
				"call verifier in=request", "done verifier err=false",
				"call callback in=request", "done callback err=false",
				"call store.complete in=request", "done store.complete err=false",
				"end notification to_confirm processed class= status=200 in=request",
			},
		},
		{
			name:  "a duplicate: only the claim",
			post:  func() int { return post(urls.NotificationURLPending, "T1", "to_confirm") },
			want:  200,
			trace: []string{"start notification", "call store.claim in=request", "done store.claim err=false", "end notification to_confirm duplicate class= status=200 in=request"},
		},
		{
			name: "a status the Verifier does not confirm",
			post: func() int { return post(urls.NotificationURLSuccess, "X1", "to_confirm") },
			want: 503,
			trace: []string{
				"start notification",
				"call store.claim in=request", "done store.claim err=false",
				"call verifier in=request", "done verifier err=false",
				"call store.release in=request", "done store.release err=false",
				"end notification to_confirm rejected class=not_verified status=503 in=request",
			},
		},
		{
			name: "a request refused before decoding",
			post: func() int {
				return serve(pathHandler{rt, urls.NotificationURLOther}, postForm("/", "transactionKey=%zz")).Code
			},
			want:  400,
			trace: []string{"start notification", "end notification - rejected class=malformed_body status=400 in=request"},
		},
		{
			name:  "no route",
			post:  func() int { return serve(rt, postForm("https://shop.example/elsewhere", "x=1")).Code },
			want:  404,
			trace: []string{"start unknown", "end unknown - rejected class=unknown_url status=404 in=request"},
		},
		{
			name: "a failed callback",
			post: func() int { return post(urls.NotificationURLOther, "R2", "Refused") },
			want: 500,
			trace: []string{
				"start notification",
				"call store.claim in=request", "done store.claim err=false",
				"call verifier in=request", "done verifier err=false",
				"call callback in=request", "done callback err=true",
				"call store.release in=request", "done store.release err=false",
				"end notification Refused failed class=callback_failed status=500 in=request",
			},
		},
		{
			name: "a redirect: peek, verify, callback",
			post: func() int { return post(urls.ReturnURLSuccess, "T2", "to_confirm") },
			want: 303,
			trace: []string{
				"start redirect",
				"call store.peek in=request", "done store.peek err=false",
				"call verifier in=request", "done verifier err=false",
				"call callback in=request", "done callback err=false",
				"end redirect to_confirm processed class= status=303 in=request",
			},
		},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.post(), tt.name)
		assert.Equal(t, tt.trace, obs.trace(), tt.name)
		assert.Equal(t, tt.trace, second.trace(), tt.name+": every observer sees everything")
	}
	require.NotNil(t, callbackCtx)
	assert.Equal(t, "callback", callbackCtx.Value(traceKey{"a"}), "the callback runs on the observers' context")
	assert.Equal(t, "callback", callbackCtx.Value(traceKey{"b"}))
}

// pathHandler serves every request on target's path, whatever the path
// the test gave it.
type pathHandler struct {
	h      http.Handler
	target string
}

func (p pathHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r2 := postForm(p.target, "")
	r.URL, r.Host = r2.URL, r2.Host
	p.h.ServeHTTP(w, r)
}

// The Observer contract holds on the paths that leave early: a Verifier
// that panics still ends its call; a handler aborting with
// panic(http.ErrAbortHandler) ends its call and its request, once, before
// net/http sees the panic; ends come in the reverse order of the starts.
func TestObserver_panicsAndAborts(t *testing.T) {
	t.Parallel()
	first, second := &traceObserver{name: "a"}, &traceObserver{name: "b"}
	urls := testURLs(t)
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
			w.WriteHeader(http.StatusTeapot)
			return nil
		},
		func(context.Context, cofidis.Event) error { panic(http.ErrAbortHandler) },
		cofidis.WithVerifier(cofidis.VerifierFunc(func(_ context.Context, k cofidis.TransactionKey) (cofidis.Status, error) {
			if k.MerchantTransactionID == "P1" {
				panic("nil getStatus client")
			}
			return cofidis.StatusToConfirm, nil
		})),
		cofidis.WithObserver(first), cofidis.WithObserver(second), cofidis.WithLogger(quietLogger()))
	require.NoError(t, err)

	assert.Equal(t, 503, idemPost(pathHandler{rt, urls.NotificationURLSuccess}, "P1", "to_confirm", "").Code)
	assert.Equal(t, []string{
		"start notification",
		"call verifier in=request", "done verifier err=true",
		"end notification to_confirm rejected class=verifier_unavailable status=503 in=request",
	}, first.trace(), "a panicking Verifier ends its call")
	second.trace()

	v := recoverFrom(func() { idemPost(pathHandler{rt, urls.NotificationURLSuccess}, "T1", "to_confirm", "") })
	assert.Equal(t, http.ErrAbortHandler, v)
	want := []string{
		"start notification",
		"call verifier in=request", "done verifier err=false",
		"call callback in=request", "done callback err=true",
		"end notification - failed class=other status=0 in=request",
	}
	assert.Equal(t, want, first.trace(), "an aborted request ends once")
	assert.Equal(t, want, second.trace())

	// The status a redirect callback wrote.
	assert.Equal(t, http.StatusTeapot, idemPost(pathHandler{rt, urls.ReturnURLOther}, "T2", "Refused", "").Code)
	got := first.trace()
	assert.Equal(t, "end redirect Refused processed class= status=418 in=request", got[len(got)-1])
}

// endOrder records the order in which observers end.
type endOrder struct {
	traceObserver
	log *[]string
}

func (o *endOrder) EndRequest(_ context.Context, _ cofidis.Report) {
	*o.log = append(*o.log, "end "+o.name)
}
func (o *endOrder) EndCall(_ context.Context, call cofidis.Call, _ time.Duration, _ error) {
	*o.log = append(*o.log, "done "+call.String()+" "+o.name)
}

func TestObserver_endsInReverseOrder(t *testing.T) {
	t.Parallel()
	var log []string
	a, b := &endOrder{traceObserver{name: "a"}, &log}, &endOrder{traceObserver{name: "b"}, &log}
	h := notifier(t, nopNotification, cofidis.WithObserver(a), cofidis.WithObserver(b), cofidis.WithLogger(quietLogger()))
	idemPost(h, "T1", "to_confirm", "")
	assert.Equal(t, []string{"done callback b", "done callback a", "end b", "end a"}, log)
}
