package cofidis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// slowStore is a MemoryStore whose replies can be late or fail: the store
// executes a Claim at once and its reply reaches the Router after
// claimReplyDelay; Complete fails for completeFailsFor from the first one;
// the first Complete reaches the store only after completeDelay.
type slowStore struct {
	*cofidis.MemoryStore
	claimReplyDelay  time.Duration
	completeDelay    time.Duration
	completeFailsFor time.Duration

	mu            sync.Mutex
	firstComplete time.Time
	completes     atomic.Int32
	leaseStarts   []time.Time // when the store executed each granted claim
}

func newSlowStore() *slowStore {
	return &slowStore{MemoryStore: cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})}
}

func (s *slowStore) Claim(ctx context.Context, key cofidis.ActionKey, lease time.Duration) (cofidis.ClaimResult, error) {
	executed := time.Now()
	res, err := s.MemoryStore.Claim(ctx, key, lease)
	if err == nil && res.State == cofidis.Claimed {
		s.mu.Lock()
		s.leaseStarts = append(s.leaseStarts, executed)
		s.mu.Unlock()
	}
	time.Sleep(s.claimReplyDelay)
	return res, err
}

var errStoreHiccup = errors.New("store: connection reset")

func (s *slowStore) Complete(ctx context.Context, key cofidis.ActionKey, token string) error {
	first := s.completes.Add(1) == 1
	s.mu.Lock()
	if first {
		s.firstComplete = time.Now()
	}
	failing := time.Since(s.firstComplete) < s.completeFailsFor
	s.mu.Unlock()
	if failing {
		return errStoreHiccup
	}
	if first {
		time.Sleep(s.completeDelay)
	}
	return s.MemoryStore.Complete(ctx, key, token)
}

// actionLog counts the business actions of callbacks that honour their
// context: the action is done only if the work ends before the context.
type actionLog struct {
	done       atomic.Int32
	deadlines  chan time.Time
	overlapped atomic.Bool
	running    atomic.Int32
}

func (a *actionLog) callback(work time.Duration) cofidis.NotificationFunc {
	return func(ctx context.Context, _ cofidis.Event) error {
		if d, ok := ctx.Deadline(); ok && a.deadlines != nil {
			a.deadlines <- d
		}
		if a.running.Add(1) > 1 {
			a.overlapped.Store(true)
		}
		defer a.running.Add(-1)
		select {
		case <-time.After(work):
			a.done.Add(1)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestLease_timedFromBeforeTheClaimRequest(t *testing.T) {
	t.Parallel()
	// The case: a Claim reply 600 ms late, a 1 s lease, a callback
	// that works 700 ms honouring its context, a retry at 1.1 s. Timing the
	// lease from the Claim's reply let both run the action; timed from the
	// request, the first delivery has no time left and is answered 503.
	t.Run("a claim granted too late for the callback is a store failure, not a second run", func(t *testing.T) {
		t.Parallel()
		store := newSlowStore()
		store.claimReplyDelay = 600 * time.Millisecond
		var actions actionLog
		var outcomes []cofidis.Outcome
		var mu sync.Mutex
		h := notifier(t, actions.callback(700*time.Millisecond),
			cofidis.WithIdempotency(store), cofidis.WithLease(time.Second), cofidis.WithLogger(quietLogger()),
			cofidis.WithDeliveryHook(func(_ context.Context, _ cofidis.Event, o cofidis.Outcome) {
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}))
		var wg sync.WaitGroup
		codes := make([]int, 2)
		wg.Go(func() { codes[0] = idemPost(h, "T1", "to_confirm", "").Code })
		time.Sleep(1100 * time.Millisecond) // the sender's retry
		wg.Go(func() { codes[1] = idemPost(h, "T1", "to_confirm", "").Code })
		wg.Wait()
		assert.LessOrEqual(t, actions.done.Load(), int32(1), "the action never runs twice")
		assert.False(t, actions.overlapped.Load(), "two deliveries never run the callback at once")
		assert.Equal(t, http.StatusServiceUnavailable, codes[0], "no time left: retried, not run")
		assert.Contains(t, outcomes, cofidis.OutcomeStoreFailed)
	})
	t.Run("the callback's context ends before the store's lease", func(t *testing.T) {
		t.Parallel()
		store := newSlowStore()
		store.claimReplyDelay = 200 * time.Millisecond
		actions := actionLog{deadlines: make(chan time.Time, 1)}
		const lease = 2 * time.Second
		h := notifier(t, actions.callback(10*time.Millisecond),
			cofidis.WithIdempotency(store), cofidis.WithLease(lease), cofidis.WithLogger(quietLogger()))
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
		deadline := <-actions.deadlines
		require.Len(t, store.leaseStarts, 1)
		storeLeaseEnd := store.leaseStarts[0].Add(lease)
		assert.True(t, deadline.Before(storeLeaseEnd), "deadline %s, store's lease end %s", deadline, storeLeaseEnd)
		assert.GreaterOrEqual(t, storeLeaseEnd.Sub(deadline), 200*time.Millisecond,
			"a margin of at least the Claim's round trip is kept for Complete")
		assert.Equal(t, int32(1), actions.done.Load())
	})
}

func TestLease_completeRetriedWhileTheClaimIsHeld(t *testing.T) {
	t.Parallel()
	// A 400 ms store outage right after the callback, during a 1 s lease:
	// Complete is retried until it lands, and the next copy is a duplicate.
	store := newSlowStore()
	store.completeFailsFor = 400 * time.Millisecond
	var lines lineCounter
	var actions actionLog
	var outcome cofidis.Outcome
	h := notifier(t, actions.callback(0),
		cofidis.WithIdempotency(store), cofidis.WithLease(time.Second),
		cofidis.WithLogger(slog.New(slog.NewJSONHandler(&lines, nil))),
		cofidis.WithDeliveryHook(func(_ context.Context, _ cofidis.Event, o cofidis.Outcome) { outcome = o }))
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
	assert.Equal(t, cofidis.OutcomeProcessed, outcome, "recorded once the store is back")
	assert.Greater(t, store.completes.Load(), int32(1))
	assert.Zero(t, lines.count(""), "nothing to report: the action is recorded")

	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
	assert.Equal(t, cofidis.OutcomeDuplicate, outcome)
	assert.Equal(t, int32(1), actions.done.Load())
}

func TestLease_unrecordedCompletionNamesTheCause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		store    func() *slowStore
		lease    time.Duration
		work     time.Duration // the callback ignores its context
		takeover bool          // another delivery claims once the lease ended
		want     string
	}{
		{
			name:  "the store is down until the lease ends",
			store: func() *slowStore { s := newSlowStore(); s.completeFailsFor = time.Hour; return s },
			lease: 300 * time.Millisecond,
			want:  "cofidis: callback succeeded but the store did not record it before the lease ended; a later delivery may repeat the action (store unavailable)",
		},
		{
			name:     "the store executes the Complete after another delivery took over",
			store:    func() *slowStore { s := newSlowStore(); s.completeDelay = 900 * time.Millisecond; return s },
			lease:    400 * time.Millisecond,
			takeover: true,
			want:     "cofidis: the store recorded the completion too late, after another delivery claimed the action; it may have run twice (store stalled)",
		},
		{
			name:     "the callback ignores its context and runs past the lease",
			store:    newSlowStore,
			lease:    300 * time.Millisecond,
			work:     800 * time.Millisecond,
			takeover: true,
			want:     "cofidis: callback outlived its lease, and its completion was not recorded; a later delivery may repeat the action (callback too slow: raise WithLease)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := tt.store()
			var lines lineCounter
			var calls atomic.Int32
			h := notifier(t, func(context.Context, cofidis.Event) error {
				if calls.Add(1) == 1 {
					time.Sleep(tt.work) // ignores the context
				}
				return nil
			}, cofidis.WithIdempotency(store), cofidis.WithLease(tt.lease),
				cofidis.WithLogger(slog.New(slog.NewJSONHandler(&lines, nil))))
			var wg sync.WaitGroup
			wg.Go(func() { assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code) })
			if tt.takeover {
				time.Sleep(tt.lease + 50*time.Millisecond)
				wg.Go(func() { idemPost(h, "T1", "to_confirm", "") })
			}
			wg.Wait()
			recs := lines.records(tt.want)
			require.Len(t, recs, 1, "want one %q line", tt.want)
			assert.Equal(t, "ERROR", recs[0]["level"])
		})
	}
}

func TestClaimFromContext(t *testing.T) {
	t.Parallel()
	t.Run("the callback completes its claim itself, as a transactional store does", func(t *testing.T) {
		t.Parallel()
		store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
		var seen []cofidis.Claim
		var outcomes []cofidis.Outcome
		h := notifier(t, func(ctx context.Context, ev cofidis.Event) error {
			c, ok := ClaimFromContextOK(ctx)
			require.True(t, ok)
			seen = append(seen, c)
			assert.Equal(t, ev.ActionKey(), c.Key)
			d, _ := ctx.Deadline()
			assert.Equal(t, d, c.Deadline)
			// The merchant's transaction commits the order update and the
			// completion together.
			return store.Complete(ctx, c.Key, c.Token)
		}, cofidis.WithIdempotency(store), cofidis.WithLogger(quietLogger()),
			cofidis.WithDeliveryHook(func(_ context.Context, _ cofidis.Event, o cofidis.Outcome) { outcomes = append(outcomes, o) }))
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
		require.Len(t, seen, 1)
		assert.NotEmpty(t, seen[0].Token)
		assert.Equal(t, []cofidis.Outcome{cofidis.OutcomeProcessed, cofidis.OutcomeDuplicate}, outcomes,
			"already completed by the callback is success, not a lost lease")
	})
	t.Run("a callback that completed, then failed, is not run again", func(t *testing.T) {
		t.Parallel()
		store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
		var calls atomic.Int32
		h := notifier(t, func(ctx context.Context, _ cofidis.Event) error {
			calls.Add(1)
			c, _ := ClaimFromContextOK(ctx)
			require.NoError(t, store.Complete(ctx, c.Key, c.Token))
			return errors.New("the answer could not be written")
		}, cofidis.WithIdempotency(store), cofidis.WithLogger(quietLogger()))
		assert.Equal(t, http.StatusInternalServerError, idemPost(h, "T1", "to_confirm", "").Code)
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
		assert.Equal(t, int32(1), calls.Load())
	})
	t.Run("is absent without WithIdempotency", func(t *testing.T) {
		t.Parallel()
		h := notifier(t, func(ctx context.Context, _ cofidis.Event) error {
			_, ok := ClaimFromContextOK(ctx)
			assert.False(t, ok)
			return nil
		}, cofidis.WithLogger(quietLogger()))
		idemPost(h, "T1", "to_confirm", "")
	})
	t.Run("reaches a redirect callback that claims", func(t *testing.T) {
		t.Parallel()
		var got cofidis.Claim
		h := redirector(t, func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
			got, _ = ClaimFromContextOK(r.Context())
			w.WriteHeader(http.StatusNoContent)
			return nil
		}, cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})), cofidis.WithRedirectClaims(true), cofidis.WithLogger(quietLogger()))
		idemPost(h, "T1", "to_confirm", "")
		assert.NotEmpty(t, got.Token)
	})
}

// ClaimFromContextOK is cofidis.ClaimFromContext.
var ClaimFromContextOK = cofidis.ClaimFromContext

// A redirect proves nothing: its claim, completed by the callback's own
// transaction, must not move the furthest status unless verified.
func TestClaimFromContext_unverifiedRedirectDoesNotAdvance(t *testing.T) {
	t.Parallel()
	for _, verified := range []bool{false, true} {
		t.Run(fmt.Sprintf("verified %t", verified), func(t *testing.T) {
			t.Parallel()
			store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
			cofidisSays := cofidis.StatusPending // a forged "validated" redirect
			if verified {
				cofidisSays = cofidis.StatusValidated
			}
			h := redirector(t, func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
				c, ok := cofidis.ClaimFromContext(r.Context())
				require.True(t, ok)
				require.NoError(t, store.Complete(r.Context(), c.Key, c.Token)) // the merchant's transaction
				w.WriteHeader(http.StatusNoContent)
				return nil
			}, cofidis.WithIdempotency(store), cofidis.WithRedirectClaims(true), cofidis.WithVerifier(statusIs(cofidisSays)),
				cofidis.WithLogger(quietLogger()))
			idemPost(h, "T1", "validated", "")
			res, err := store.Peek(t.Context(), cofidis.ActionKey{Transaction: "020280098/T1/20260227", Action: "x"})
			require.NoError(t, err)
			if verified {
				assert.Equal(t, cofidis.StatusValidated, res.Furthest)
			} else {
				assert.Empty(t, res.Furthest, "a forged redirect moves nothing")
			}
		})
	}
}

// ctxKeyTest is a request-scoped value set by a middleware.
type ctxKeyTest struct{}

// TestLease_callbackContextOutlivesTheSendersHangUp: once a notification
// is claimed, Cofidis hanging up (a client timeout) does not cancel the
// callback half way; it is carried through and recorded, and the retry is
// answered as a duplicate without a second call. The context still keeps
// the request's values, and ends with the lease.
func TestLease_callbackContextOutlivesTheSendersHangUp(t *testing.T) {
	t.Parallel()
	reqCtx := make(chan context.Context, 1)
	var (
		calls     atomic.Int32
		errAfter  error
		value     any
		claimed   bool
		deadlined bool
	)
	rec := &idemRecorder{}
	h := notifier(t, func(ctx context.Context, _ cofidis.Event) error {
		if calls.Add(1) == 1 {
			<-(<-reqCtx).Done() // the server saw the client hang up
		}
		errAfter, value = ctx.Err(), ctx.Value(ctxKeyTest{})
		_, claimed = cofidis.ClaimFromContext(ctx)
		_, deadlined = ctx.Deadline()
		return nil
	}, cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})),
		cofidis.WithDeliveryHook(rec.hook), cofidis.WithLogger(idemQuiet()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), ctxKeyTest{}, "from the middleware")
		select {
		case reqCtx <- ctx:
		default:
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)

	post := func(ctx context.Context) (*http.Response, error) {
		v := url.Values{"transactionKey": {idemKeyJSON("T1")}, "transactionStatus": {"to_confirm"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(v.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return srv.Client().Do(req)
	}
	ctx, hangUp := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer hangUp()
	_, err := post(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the client gave up")
	require.Eventually(t, func() bool { return len(rec.snapshot()) == 1 }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, errAfter, "the callback's context is not cancelled by the hang-up")
	assert.Equal(t, "from the middleware", value)
	assert.True(t, claimed)
	assert.True(t, deadlined, "the lease still bounds it")
	assert.Equal(t, []cofidis.Outcome{cofidis.OutcomeProcessed}, rec.snapshot())

	resp, err := post(t.Context())
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(1), calls.Load(), "the retry is a duplicate")
	assert.Equal(t, []cofidis.Outcome{cofidis.OutcomeProcessed, cofidis.OutcomeDuplicate}, rec.snapshot())
}

// TestLease_callbackContextKeepsTheRequestsDeadline: a deadline the
// merchant's middleware set on the request, earlier than the lease's,
// still ends the callback's context; so does the lease, with
// context.DeadlineExceeded as its cause.
func TestLease_callbackContextKeepsTheRequestsDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		timeout time.Duration // the middleware's; 0 for none
		lease   time.Duration
	}{
		{"the request's deadline first", 50 * time.Millisecond, time.Minute},
		{"the lease first", time.Minute, time.Second},
		{"no request deadline", 0, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var err, cause error
			var left time.Duration
			h := notifier(t, func(ctx context.Context, _ cofidis.Event) error {
				d, _ := ctx.Deadline()
				left = time.Until(d)
				<-ctx.Done()
				err, cause = ctx.Err(), context.Cause(ctx)
				return err
			}, cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})),
				cofidis.WithLease(tc.lease), cofidis.WithLogger(idemQuiet()))
			if tc.timeout > 0 {
				inner := h
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx, cancel := context.WithTimeout(r.Context(), tc.timeout)
					defer cancel()
					inner.ServeHTTP(w, r.WithContext(ctx))
				})
			}
			assert.Equal(t, http.StatusInternalServerError, idemPost(h, "T1", "to_confirm", "").Code)
			want := tc.lease
			if tc.timeout > 0 {
				want = min(want, tc.timeout)
			}
			assert.LessOrEqual(t, left, want)
			assert.Greater(t, left, want/2, "the earlier of the two, not much less")
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorIs(t, cause, context.DeadlineExceeded)
		})
	}
}

// snapshot returns the outcomes hooked so far.
func (r *idemRecorder) snapshot() []cofidis.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cofidis.Outcome(nil), r.outcomes...)
}
