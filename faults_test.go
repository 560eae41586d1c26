package cofidis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Fault injection: the merchant's callback and verifier fail in every way
// they can, and each failure yields a definite answer and a definite log
// line. Retryable failures are 5xx; nothing is dispatched that was not
// checked; nothing crashes the server.

const faultTransaction = "020280098/2YgKoUd4DB/20260227"

var errFault = errors.New("database is down")

// faultRequest is a valid pending notification.
func faultRequest(ctx context.Context) *http.Request {
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/cofidis/notify", strings.NewReader(hostileBody))
	r.Header.Set("Content-Type", hostileFormType)
	return r
}

// faultLogRecord returns the one line logged with msg, failing if there is not
// exactly one.
func faultLogRecord(t *testing.T, log *hostileLog, msg string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, rec := range log.records(t) {
		if rec["msg"] == msg {
			found = append(found, rec)
		}
	}
	require.Len(t, found, 1, "want one %q line in:\n%s", msg, log.String())
	return found[0]
}

// faultEventAttr returns attribute k of the "event" group of a log line.
func faultEventAttr(t *testing.T, rec map[string]any, k string) any {
	t.Helper()
	ev, ok := rec["event"].(map[string]any)
	require.True(t, ok, "log line without an event group: %v", rec)
	return ev[k]
}

func TestFaultCallback(t *testing.T) {
	t.Parallel()
	type want struct {
		status int
		level  string
		msg    string
		error  string // exact "error" attribute; "" to skip
		stack  bool   // the line carries the callback's stack
		cause  error  // the OnError error wraps it (5xx only)
	}
	for _, tt := range []struct {
		name string
		fn   cofidis.NotificationFunc
		want want
	}{
		{
			name: "returns an error",
			fn:   func(context.Context, cofidis.Event) error { return errFault },
			want: want{500, "ERROR", "cofidis: callback failed; answered 500 for a retry", "database is down", false, errFault},
		},
		{
			name: "returns a wrapped context error",
			fn: func(context.Context, cofidis.Event) error {
				return fmt.Errorf("order store: %w", context.Canceled)
			},
			want: want{500, "ERROR", "cofidis: callback failed; answered 500 for a retry", "order store: context canceled", false, context.Canceled},
		},
		{
			name: "returns Permanent",
			fn:   func(context.Context, cofidis.Event) error { return cofidis.Permanent(errFault) },
			want: want{200, "WARN", "cofidis: callback failed permanently; acknowledged, will not be retried", "cofidis: permanent failure: database is down", false, nil},
		},
		{
			name: "returns Permanent(nil)",
			fn:   func(context.Context, cofidis.Event) error { return cofidis.Permanent(nil) },
			want: want{200, "WARN", "cofidis: callback failed permanently; acknowledged, will not be retried", "cofidis: permanent failure", false, nil},
		},
		{
			name: "returns a wrapped Permanent",
			fn: func(context.Context, cofidis.Event) error {
				return fmt.Errorf("unknown order: %w", cofidis.Permanent(errFault))
			},
			want: want{200, "WARN", "cofidis: callback failed permanently; acknowledged, will not be retried", "unknown order: cofidis: permanent failure: database is down", false, nil},
		},
		{
			name: "panics with a string",
			fn:   func(context.Context, cofidis.Event) error { panic("boom") },
			want: want{500, "ERROR", "cofidis: callback failed; answered 500 for a retry", "cofidis: callback failed: panic: boom", true, cofidis.ErrCallback},
		},
		{
			name: "panics with an error",
			fn:   func(context.Context, cofidis.Event) error { panic(errFault) },
			want: want{500, "ERROR", "cofidis: callback failed; answered 500 for a retry", "cofidis: callback failed: panic: database is down", true, cofidis.ErrCallback},
		},
		{
			name: "panics with nil",
			fn:   func(context.Context, cofidis.Event) error { panic(nil) },
			want: want{500, "ERROR", "cofidis: callback failed; answered 500 for a retry", "", true, cofidis.ErrCallback},
		},
		{
			name: "panics with a runtime error",
			fn: func(_ context.Context, ev cofidis.Event) error {
				_ = ev.Endpoints.Endpoints()[5] // index out of range
				return nil
			},
			want: want{500, "ERROR", "cofidis: callback failed; answered 500 for a retry", "", true, cofidis.ErrCallback},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				log    hostileLog
				hooked []error
			)
			h := notifier(t, tt.fn, cofidis.WithLogger(log.logger()), cofidis.WithOnError(func(_ *http.Request, err error) { hooked = append(hooked, err) }))

			w := hostileServe(t, h, faultRequest(t.Context()))
			require.Equal(t, tt.want.status, w.Code)
			assert.Equal(t, answerBody(tt.want.status), w.Body.String(), "no detail of the failure in the answer")

			rec := faultLogRecord(t, &log, tt.want.msg)
			assert.Equal(t, tt.want.level, rec["level"])
			assert.Equal(t, faultTransaction, faultEventAttr(t, rec, "transaction"))
			assert.Equal(t, "pending", faultEventAttr(t, rec, "status"))
			if tt.want.error != "" {
				assert.Equal(t, tt.want.error, rec["error"])
			} else {
				assert.Contains(t, rec["error"], "cofidis: callback failed: panic: ")
			}
			if tt.want.stack {
				assert.Contains(t, rec["stack"], "faults_test.go", "the stack must point at the panicking callback")
			} else {
				assert.NotContains(t, rec, "stack")
			}

			if tt.want.status < 500 {
				assert.Empty(t, hooked, "an acknowledged failure is not a rejected request")
				return
			}
			require.Len(t, hooked, 1)
			assert.ErrorIs(t, hooked[0], cofidis.ErrCallback)
			assert.ErrorIs(t, hooked[0], tt.want.cause)
			assert.Equal(t, http.StatusInternalServerError, cofidis.HTTPStatus(hooked[0]))
			var pe *cofidis.PanicError
			assert.Equal(t, tt.want.stack, errors.As(hooked[0], &pe), "a panic is reported as a *PanicError")
		})
	}
}

// TestFaultCallbackPanicValue checks what a *PanicError holds.
func TestFaultCallbackPanicValue(t *testing.T) {
	t.Parallel()
	var hooked error
	h := notifier(t, func(context.Context, cofidis.Event) error { panic(errFault) }, cofidis.WithLogger(new(hostileLog).logger()), cofidis.WithOnError(func(_ *http.Request, err error) { hooked = err }))
	w := hostileServe(t, h, faultRequest(t.Context()))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	var pe *cofidis.PanicError
	require.ErrorAs(t, hooked, &pe)
	assert.Equal(t, errFault, pe.Value)
	assert.Contains(t, string(pe.Stack), "faults_test.go")
}

// TestFaultCallbackAbortHandler: http.ErrAbortHandler is how a handler asks
// net/http to abort the response; it must go through, not become a 500.
func TestFaultCallbackAbortHandler(t *testing.T) {
	t.Parallel()
	for _, v := range []any{http.ErrAbortHandler, fmt.Errorf("client gone: %w", http.ErrAbortHandler)} {
		var log hostileLog
		h := notifier(t, func(context.Context, cofidis.Event) error { panic(v) }, cofidis.WithLogger(log.logger()))
		require.PanicsWithValue(t, v, func() {
			h.ServeHTTP(httptest.NewRecorder(), faultRequest(t.Context()))
		})
		assert.Empty(t, log.String(), "an aborted response is not logged as a failure")

		rh := redirector(t, func(http.ResponseWriter, *http.Request, cofidis.Event) error { panic(v) }, cofidis.WithLogger(log.logger()))
		require.PanicsWithValue(t, v, func() {
			rh.ServeHTTP(httptest.NewRecorder(), faultRequest(t.Context()))
		})
	}

	// Over a real server: the connection is dropped without an answer.
	h := notifier(t, func(context.Context, cofidis.Event) error { panic(http.ErrAbortHandler) }, cofidis.WithLogger(new(hostileLog).logger()))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL, hostileFormType, strings.NewReader(hostileBody))
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("got an answer (%d) to an aborted response", resp.StatusCode)
	}
	assert.ErrorIs(t, err, io.EOF)
}

// TestFaultCallbackDeadline: a callback still busy when the request's
// deadline passes, and honouring its context, gets a 500 for a retry.
func TestFaultCallbackDeadline(t *testing.T) {
	t.Parallel()
	var log hostileLog
	h := notifier(t, func(ctx context.Context, _ cofidis.Event) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return nil
		}
	}, cofidis.WithLogger(log.logger()))

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	w := hostileServe(t, h, faultRequest(ctx))
	assert.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, http.StatusInternalServerError, w.Code)

	rec := faultLogRecord(t, &log, "cofidis: callback failed; answered 500 for a retry")
	assert.Equal(t, "ERROR", rec["level"])
	assert.Equal(t, context.DeadlineExceeded.Error(), rec["error"])
}

// faultStuckVerifier waits for its context, as a getStatus call to a dead
// server does, and records the deadline it was given.
type faultStuckVerifier struct{ deadline atomic.Pointer[time.Time] }

func (v *faultStuckVerifier) CurrentStatus(ctx context.Context, _ cofidis.TransactionKey) (cofidis.Status, error) {
	if d, ok := ctx.Deadline(); ok {
		v.deadline.Store(&d)
	}
	<-ctx.Done()
	return "", fmt.Errorf("getStatus: %w", ctx.Err())
}

func TestFaultVerifier(t *testing.T) {
	t.Parallel()
	const rejected = "cofidis: request rejected"
	for _, tt := range []struct {
		name     string
		verifier cofidis.Verifier
		opts     []cofidis.Option
		ctx      func(context.Context) context.Context
		status   int
		sentinel error
		cause    error
		errAttr  string
		panicked string // the "panic" attribute of the "verifier panicked" line
	}{
		{
			name: "fails",
			verifier: cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				return "", errFault
			}),
			status: 503, sentinel: cofidis.ErrVerifierUnavailable, cause: errFault,
			errAttr: "cofidis: verifier unavailable: database is down",
		},
		{
			name:     "times out",
			verifier: new(faultStuckVerifier),
			opts:     []cofidis.Option{cofidis.WithVerifyTimeout(30 * time.Millisecond)},
			status:   503, sentinel: cofidis.ErrVerifierUnavailable, cause: context.DeadlineExceeded,
			errAttr: "cofidis: verifier unavailable: getStatus: context deadline exceeded",
		},
		{
			name:     "runs when the client is already gone",
			verifier: new(faultStuckVerifier),
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			},
			status: 503, sentinel: cofidis.ErrVerifierUnavailable, cause: context.Canceled,
			errAttr: "cofidis: verifier unavailable: getStatus: context canceled",
		},
		{
			name: "panics with a string",
			verifier: cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				panic("nil client")
			}),
			status: 503, sentinel: cofidis.ErrVerifierUnavailable,
			errAttr:  "cofidis: verifier unavailable: verifier panicked: nil client",
			panicked: "nil client",
		},
		{
			name: "panics with an error",
			verifier: cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				panic(errFault)
			}),
			status: 503, sentinel: cofidis.ErrVerifierUnavailable,
			errAttr:  "cofidis: verifier unavailable: verifier panicked: database is down",
			panicked: "database is down",
		},
		{
			name: "answers nothing without an error",
			verifier: cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				return "", nil
			}),
			status: 503, sentinel: cofidis.ErrNotVerified,
			errAttr: `cofidis: status not confirmed by verifier: transactionStatus: the verifier reports ""`,
		},
		{
			name: "reports an earlier status",
			verifier: cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				return cofidis.StatusUndefined, nil
			}),
			status: 503, sentinel: cofidis.ErrNotVerified,
			errAttr: `cofidis: status not confirmed by verifier: transactionStatus: the verifier reports "Undefined"`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				log    hostileLog
				calls  atomic.Int32
				hooked []error
			)
			opts := append([]cofidis.Option{
				cofidis.WithVerifier(tt.verifier),
				cofidis.WithLogger(log.logger()),
				cofidis.WithOnError(func(_ *http.Request, err error) { hooked = append(hooked, err) }),
			}, tt.opts...)
			h := notifier(t, func(context.Context, cofidis.Event) error {
				calls.Add(1)
				return nil
			}, opts...)

			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			start := time.Now()
			w := hostileServe(t, h, faultRequest(ctx))
			assert.Less(t, time.Since(start), 5*time.Second, "the verifier's time must be bounded")
			require.Equal(t, tt.status, w.Code)
			assert.Equal(t, answerBody(tt.status), w.Body.String())
			assert.Zero(t, calls.Load(), "nothing is dispatched without a verification")

			rec := faultLogRecord(t, &log, rejected)
			assert.Equal(t, "ERROR", rec["level"])
			assert.EqualValues(t, tt.status, rec["status"])
			assert.Equal(t, "notification", rec["channel"])
			assert.Equal(t, tt.errAttr, rec["error"])

			require.Len(t, hooked, 1)
			assert.ErrorIs(t, hooked[0], tt.sentinel)
			if tt.cause != nil {
				assert.ErrorIs(t, hooked[0], tt.cause)
			}
			assert.NotErrorIs(t, hooked[0], cofidis.ErrCallback, "the verifier is not the callback")

			if tt.panicked != "" {
				p := faultLogRecord(t, &log, "cofidis: verifier panicked")
				assert.Equal(t, "ERROR", p["level"])
				assert.Equal(t, tt.panicked, p["panic"])
				assert.Equal(t, faultTransaction, p["transaction"])
				assert.Contains(t, p["stack"], "faults_test.go")
			}
			if bv, ok := tt.verifier.(*faultStuckVerifier); ok && tt.ctx == nil {
				d := bv.deadline.Load()
				require.NotNil(t, d, "the verifier must get a deadline")
				assert.WithinDuration(t, start.Add(30*time.Millisecond), *d, time.Second)
			}
		})
	}
}

// TestFaultVerifierDefaultDeadline: without WithVerifyTimeout the verifier
// still gets DefaultVerifyTimeout, never an unbounded context.
func TestFaultVerifierDefaultDeadline(t *testing.T) {
	t.Parallel()
	var got time.Time
	v := cofidis.VerifierFunc(func(ctx context.Context, _ cofidis.TransactionKey) (cofidis.Status, error) {
		got, _ = ctx.Deadline()
		return cofidis.StatusPending, nil
	})
	h := notifier(t, func(context.Context, cofidis.Event) error { return nil }, cofidis.WithVerifier(v), cofidis.WithLogger(new(hostileLog).logger()))
	start := time.Now()
	w := hostileServe(t, h, faultRequest(t.Context()))
	require.Equal(t, http.StatusOK, w.Code)
	assert.WithinDuration(t, start.Add(cofidis.DefaultVerifyTimeout), got, time.Second)
}

// TestFaultVerifierAbortHandler: like a callback, a verifier may abort the
// response with http.ErrAbortHandler.
func TestFaultVerifierAbortHandler(t *testing.T) {
	t.Parallel()
	v := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		panic(http.ErrAbortHandler)
	})
	h := notifier(t, func(context.Context, cofidis.Event) error { return nil }, cofidis.WithVerifier(v), cofidis.WithLogger(new(hostileLog).logger()))
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), faultRequest(t.Context()))
	})
}

// TestFaultRedirect: the browser always gets an answer. A failing or
// panicking verifier leaves the redirect unverified; a failing or panicking
// RedirectFunc gets the error page, unless it already answered.
func TestFaultRedirect(t *testing.T) {
	t.Parallel()
	failing := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		return "", errFault
	})
	panicking := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		panic("nil client")
	})
	seeOther := func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
		if ev.Verified {
			return errors.New("an unverifiable redirect reported verified")
		}
		return cofidis.SeeOther(w, r, "/orders/A-1")
	}
	for _, tt := range []struct {
		name   string
		fn     cofidis.RedirectFunc
		opts   []cofidis.Option
		status int
		msg    string
		level  string
		error  string
		stack  bool
	}{
		{
			name: "verifier fails", fn: seeOther, opts: []cofidis.Option{cofidis.WithVerifier(failing)},
			status: 303, msg: "cofidis: redirect not verified", level: "WARN",
			error: "cofidis: verifier unavailable: database is down",
		},
		{
			name: "verifier times out", fn: seeOther,
			opts:   []cofidis.Option{cofidis.WithVerifier(new(faultStuckVerifier)), cofidis.WithVerifyTimeout(30 * time.Millisecond)},
			status: 303, msg: "cofidis: redirect not verified", level: "WARN",
			error: "cofidis: verifier unavailable: getStatus: context deadline exceeded",
		},
		{
			name: "verifier panics", fn: seeOther, opts: []cofidis.Option{cofidis.WithVerifier(panicking)},
			status: 303, msg: "cofidis: redirect not verified", level: "WARN",
			error: "cofidis: verifier unavailable: verifier panicked: nil client",
		},
		{
			name:   "callback returns an error",
			fn:     func(http.ResponseWriter, *http.Request, cofidis.Event) error { return errFault },
			status: 500, msg: "cofidis: redirect callback failed", level: "ERROR", error: "database is down",
		},
		{
			name:   "callback panics",
			fn:     func(http.ResponseWriter, *http.Request, cofidis.Event) error { panic("boom") },
			status: 500, msg: "cofidis: redirect callback failed", level: "ERROR",
			error: "cofidis: callback failed: panic: boom", stack: true,
		},
		{
			name: "callback answers then panics",
			fn: func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
				w.WriteHeader(http.StatusAccepted)
				panic("boom")
			},
			status: 202, msg: "cofidis: redirect callback failed", level: "ERROR",
			error: "cofidis: callback failed: panic: boom", stack: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log hostileLog
			h := redirector(t, tt.fn, append([]cofidis.Option{cofidis.WithLogger(log.logger())}, tt.opts...)...)
			start := time.Now()
			w := hostileServe(t, h, faultRequest(t.Context()))
			assert.Less(t, time.Since(start), 5*time.Second)
			require.Equal(t, tt.status, w.Code)
			if tt.status == http.StatusInternalServerError {
				assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"), "the error page")
			}

			rec := faultLogRecord(t, &log, tt.msg)
			assert.Equal(t, tt.level, rec["level"])
			assert.Equal(t, tt.error, rec["error"])
			assert.Equal(t, faultTransaction, faultEventAttr(t, rec, "transaction"))
			assert.Equal(t, "redirect", faultEventAttr(t, rec, "channel"))
			if tt.stack {
				assert.Contains(t, rec["stack"], "faults_test.go")
			}
		})
	}
}

// TestFaultPanicsDoNotLeak: recovered panics leave no goroutine behind.
func TestFaultPanicsDoNotLeak(t *testing.T) {
	h := notifier(t, func(context.Context, cofidis.Event) error { panic("boom") }, cofidis.WithLogger(new(hostileLog).logger()), cofidis.WithVerifier(cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		return cofidis.StatusPending, nil
	})))
	before := runtime.NumGoroutine()
	for range 100 {
		w := hostileServe(t, h, faultRequest(t.Context()))
		require.Equal(t, http.StatusInternalServerError, w.Code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before)
}

// faultStore is an idempotency Store whose methods fail on demand; nil
// functions behave like an empty store that grants every claim.
type faultStore struct {
	claim    func(ctx context.Context) (cofidis.ClaimResult, error)
	complete func(ctx context.Context) error
	release  func(ctx context.Context) error
	peek     func(ctx context.Context) (cofidis.ClaimResult, error)
	settled  atomic.Int32 // Complete and Release calls
}

func (s *faultStore) Claim(ctx context.Context, _ cofidis.ActionKey, _ time.Duration) (cofidis.ClaimResult, error) {
	if s.claim != nil {
		return s.claim(ctx)
	}
	return cofidis.ClaimResult{State: cofidis.Claimed, Token: "t1"}, nil
}

func (s *faultStore) Complete(ctx context.Context, _ cofidis.ActionKey, _ string) error {
	s.settled.Add(1)
	if s.complete != nil {
		return s.complete(ctx)
	}
	return nil
}

func (s *faultStore) Release(ctx context.Context, _ cofidis.ActionKey, _ string) error {
	s.settled.Add(1)
	if s.release != nil {
		return s.release(ctx)
	}
	return nil
}

func (s *faultStore) Peek(ctx context.Context, _ cofidis.ActionKey) (cofidis.ClaimResult, error) {
	if s.peek != nil {
		return s.peek(ctx)
	}
	return cofidis.ClaimResult{State: cofidis.Unclaimed}, nil
}

var errStoreDown = errors.New("dial tcp 10.0.0.5:6379: connect: connection refused")

// faultUnreachable waits for its context, as a call to a partitioned store
// without its own timeout does.
func faultUnreachable(ctx context.Context) (cofidis.ClaimResult, error) {
	<-ctx.Done()
	return cofidis.ClaimResult{}, fmt.Errorf("redis: %w", ctx.Err())
}

// TestFaultStore: a store that cannot be asked is never a reason to
// dispatch: the notification is answered 503 for a retry, and the callback
// does not run. Failures after the callback are logged with the answer the
// callback earned.
// faultLease is the lease of the store fault tests: a failed Complete is
// retried until the lease ends, which need not take the default 2 minutes.
var faultLease = cofidis.WithLease(300 * time.Millisecond)

func TestFaultStore(t *testing.T) {
	t.Parallel()
	const rejected = "cofidis: request rejected"
	// The store is the merchant's own code: its error text is kept.
	const unavailable = "cofidis: idempotency store unavailable: "
	for _, tt := range []struct {
		name     string
		store    *faultStore
		fn       cofidis.NotificationFunc
		deadline time.Duration // request deadline; 0 for none
		status   int
		calls    int32
		msg      string
		level    string
		error    string
		outcome  cofidis.Outcome
	}{
		{
			name:   "claim fails",
			store:  &faultStore{claim: func(context.Context) (cofidis.ClaimResult, error) { return cofidis.ClaimResult{}, errStoreDown }},
			status: 503, msg: rejected, level: "ERROR", error: unavailable + errStoreDown.Error(), outcome: cofidis.OutcomeStoreFailed,
		},
		{
			name:     "store unreachable until the request's deadline",
			store:    &faultStore{claim: faultUnreachable},
			deadline: 50 * time.Millisecond,
			status:   503, msg: rejected, level: "ERROR", error: unavailable + "redis: context deadline exceeded", outcome: cofidis.OutcomeStoreFailed,
		},
		{
			name: "claim gets a deadline of its own when the request has none",
			store: &faultStore{claim: func(ctx context.Context) (cofidis.ClaimResult, error) {
				if _, ok := ctx.Deadline(); !ok {
					// Without a deadline, a hung store would hold the request
					// for ever; granting the claim here makes that visible.
					return cofidis.ClaimResult{State: cofidis.Claimed, Token: "t"}, nil
				}
				return cofidis.ClaimResult{}, errStoreDown
			}},
			status: 503, msg: rejected, level: "ERROR", error: unavailable + errStoreDown.Error(), outcome: cofidis.OutcomeStoreFailed,
		},
		{
			name: "claim answers an impossible state",
			store: &faultStore{claim: func(context.Context) (cofidis.ClaimResult, error) {
				return cofidis.ClaimResult{State: cofidis.Unclaimed}, nil
			}},
			status: 503, msg: rejected, level: "ERROR", error: unavailable + "the store answered an invalid claim state unclaimed", outcome: cofidis.OutcomeStoreFailed,
		},
		{
			name: "claim granted without a token",
			store: &faultStore{claim: func(context.Context) (cofidis.ClaimResult, error) {
				return cofidis.ClaimResult{State: cofidis.Claimed}, nil
			}},
			status: 503, msg: rejected, level: "ERROR", error: unavailable + "the store answered an invalid claim state claimed", outcome: cofidis.OutcomeStoreFailed,
		},
		{
			name:   "complete fails after the callback succeeded",
			store:  &faultStore{complete: func(context.Context) error { return errStoreDown }},
			status: 200, calls: 1, level: "ERROR", outcome: cofidis.OutcomeUnrecorded,
			msg:   "cofidis: callback succeeded but the store did not record it before the lease ended; a later delivery may repeat the action (store unavailable)",
			error: errStoreDown.Error(),
		},
		{
			name:   "release fails after the callback failed",
			store:  &faultStore{release: func(context.Context) error { return errStoreDown }},
			fn:     func(context.Context, cofidis.Event) error { return errFault },
			status: 500, calls: 1, level: "WARN", outcome: cofidis.OutcomeFailed,
			msg:   "cofidis: claim not released; the next delivery waits for the lease to end",
			error: errStoreDown.Error(),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				log      hostileLog
				calls    atomic.Int32
				hooked   []error
				outcomes []cofidis.Outcome
			)
			fn := tt.fn
			if fn == nil {
				fn = func(context.Context, cofidis.Event) error { return nil }
			}
			h := notifier(t, func(ctx context.Context, ev cofidis.Event) error {
				calls.Add(1)
				return fn(ctx, ev)
			}, cofidis.WithIdempotency(tt.store), faultLease, cofidis.WithLogger(log.logger()), cofidis.WithOnError(func(_ *http.Request, err error) { hooked = append(hooked, err) }), cofidis.WithDeliveryHook(func(_ context.Context, _ cofidis.Event, o cofidis.Outcome) { outcomes = append(outcomes, o) }))

			ctx := t.Context()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			w := hostileServe(t, h, faultRequest(ctx))
			assert.Less(t, time.Since(start), 5*time.Second)
			require.Equal(t, tt.status, w.Code)
			assert.Equal(t, answerBody(tt.status), w.Body.String())
			assert.Equal(t, tt.calls, calls.Load(), "the callback runs only with a claim")
			assert.Equal(t, []cofidis.Outcome{tt.outcome}, outcomes)

			rec := faultLogRecord(t, &log, tt.msg)
			assert.Equal(t, tt.level, rec["level"])
			assert.Equal(t, tt.error, rec["error"])
			if tt.outcome == cofidis.OutcomeStoreFailed {
				assert.EqualValues(t, 503, rec["status"])
				require.Len(t, hooked, 1)
				assert.ErrorIs(t, hooked[0], cofidis.ErrStoreUnavailable)
				assert.Equal(t, http.StatusServiceUnavailable, cofidis.HTTPStatus(hooked[0]))
				assert.Zero(t, tt.store.settled.Load(), "nothing to settle without a claim")
			}
		})
	}
}

// TestFaultStoreRedirect: a redirect needs a page whatever the store does.
// Without WithRedirectClaims the lookup is informational; with it, a store
// that cannot be asked gets the error page with 503 and no dispatch.
func TestFaultStoreRedirect(t *testing.T) {
	t.Parallel()
	down := func(context.Context) (cofidis.ClaimResult, error) { return cofidis.ClaimResult{}, errStoreDown }
	for _, tt := range []struct {
		name   string
		store  *faultStore
		claims bool
		status int
		calls  int32
		msg    string
		level  string
		error  string
	}{
		{
			name: "peek fails", store: &faultStore{peek: down},
			status: 303, calls: 1, msg: "cofidis: redirect delivered without its idempotency state", level: "WARN",
			error: errStoreDown.Error(),
		},
		{
			name: "claim fails in claim mode", store: &faultStore{claim: down}, claims: true,
			status: 503, msg: "cofidis: request rejected", level: "ERROR",
			error: "cofidis: idempotency store unavailable: " + errStoreDown.Error(),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				log   hostileLog
				calls atomic.Int32
			)
			h := redirector(t, func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
				calls.Add(1)
				return cofidis.SeeOther(w, r, "/orders/A-1")
			}, cofidis.WithIdempotency(tt.store), cofidis.WithRedirectClaims(tt.claims), cofidis.WithLogger(log.logger()))
			w := hostileServe(t, h, faultRequest(t.Context()))
			require.Equal(t, tt.status, w.Code)
			assert.Equal(t, tt.calls, calls.Load())
			if tt.status == http.StatusServiceUnavailable {
				assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"), "the error page")
			}
			rec := faultLogRecord(t, &log, tt.msg)
			assert.Equal(t, tt.level, rec["level"])
			assert.Equal(t, tt.error, rec["error"])
		})
	}
}

// TestFaultStorePanics: a Store is code too. A panic in any of its methods
// is logged with its stack and treated as that method failing.
func TestFaultStorePanics(t *testing.T) {
	t.Parallel()
	boom := func(context.Context) error { panic("nil redis client") }
	boomClaim := func(context.Context) (cofidis.ClaimResult, error) { panic("nil redis client") }
	for _, tt := range []struct {
		name   string
		store  *faultStore
		fn     cofidis.NotificationFunc
		status int
		calls  int32
		method string
		msg    string // the line that reports the failure itself
	}{
		{
			name: "claim", store: &faultStore{claim: boomClaim},
			status: 503, method: "Claim", msg: "cofidis: request rejected",
		},
		{
			name: "complete", store: &faultStore{complete: boom},
			status: 200, calls: 1, method: "Complete",
			msg: "cofidis: callback succeeded but the store did not record it before the lease ended; a later delivery may repeat the action (store unavailable)",
		},
		{
			name: "release", store: &faultStore{release: boom},
			fn:     func(context.Context, cofidis.Event) error { return errFault },
			status: 500, calls: 1, method: "Release",
			msg: "cofidis: claim not released; the next delivery waits for the lease to end",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				log   hostileLog
				calls atomic.Int32
			)
			fn := tt.fn
			if fn == nil {
				fn = func(context.Context, cofidis.Event) error { return nil }
			}
			h := notifier(t, func(ctx context.Context, ev cofidis.Event) error {
				calls.Add(1)
				return fn(ctx, ev)
			}, cofidis.WithIdempotency(tt.store), faultLease, cofidis.WithLogger(log.logger()))
			w := hostileServe(t, h, faultRequest(t.Context()))
			require.Equal(t, tt.status, w.Code)
			assert.Equal(t, tt.calls, calls.Load())

			faultLogRecord(t, &log, tt.msg)
			var panics int
			for _, rec := range log.records(t) {
				if rec["msg"] != "cofidis: store panicked" {
					continue
				}
				panics++
				assert.Equal(t, "ERROR", rec["level"])
				assert.Equal(t, tt.method, rec["method"])
				assert.Equal(t, "nil redis client", rec["panic"])
				assert.Contains(t, rec["stack"], "faults_test.go")
			}
			assert.Positive(t, panics, "the panic is logged")
		})
	}

	t.Run("peek on a redirect", func(t *testing.T) {
		t.Parallel()
		var log hostileLog
		store := &faultStore{peek: boomClaim}
		h := redirector(t, func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders/A-1")
		}, cofidis.WithIdempotency(store), cofidis.WithLogger(log.logger()))
		w := hostileServe(t, h, faultRequest(t.Context()))
		require.Equal(t, http.StatusSeeOther, w.Code, "the browser still gets its page")
		rec := faultLogRecord(t, &log, "cofidis: redirect delivered without its idempotency state")
		assert.Equal(t, "store Peek panicked: nil redis client", rec["error"])
	})

	t.Run("abort handler", func(t *testing.T) {
		t.Parallel()
		store := &faultStore{claim: func(context.Context) (cofidis.ClaimResult, error) { panic(http.ErrAbortHandler) }}
		h := notifier(t, func(context.Context, cofidis.Event) error { return nil }, cofidis.WithIdempotency(store), cofidis.WithLogger(new(hostileLog).logger()))
		require.PanicsWithValue(t, http.ErrAbortHandler, func() {
			h.ServeHTTP(httptest.NewRecorder(), faultRequest(t.Context()))
		})
	})
}
