package cofidis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/storetest"
)

// Helpers of this file are prefixed with idem: the package's other test files
// have their own.

func idemKeyJSON(txn string) string {
	return `{"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,` +
		`"merchantId":"020280098","merchantTransactionId":"` + txn + `","merchantTransactionDate":"20260227"}`
}

// idemPost delivers one callback to h and returns the answer.
func idemPost(h http.Handler, txn, status, subState string) *httptest.ResponseRecorder {
	v := url.Values{"transactionKey": {idemKeyJSON(txn)}, "transactionStatus": {status}}
	if subState != "" {
		v.Set("subState", subState)
	}
	r := httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func idemQuiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// idemClock is a settable clock for MemoryStore.
type idemClock struct{ ns atomic.Int64 }

func newIdemClock() *idemClock {
	c := &idemClock{}
	c.ns.Store(time.Date(2026, 2, 27, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *idemClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *idemClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// idemRecorder counts callback calls and hook outcomes.
type idemRecorder struct {
	mu       sync.Mutex
	events   []cofidis.Event
	outcomes []cofidis.Outcome
	hooked   []cofidis.Event
}

func (r *idemRecorder) hook(_ context.Context, ev cofidis.Event, o cofidis.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes = append(r.outcomes, o)
	r.hooked = append(r.hooked, ev)
}

func (r *idemRecorder) notification(fn func(ev cofidis.Event, call int) error) cofidis.NotificationFunc {
	return func(ctx context.Context, ev cofidis.Event) error {
		r.mu.Lock()
		r.events = append(r.events, ev)
		n := len(r.events)
		r.mu.Unlock()
		if fn == nil {
			return nil
		}
		return fn(ev, n)
	}
}

func (r *idemRecorder) redirect() cofidis.RedirectFunc {
	return func(w http.ResponseWriter, _ *http.Request, ev cofidis.Event) error {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

func (r *idemRecorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *idemRecorder) last() cofidis.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1]
}

func (r *idemRecorder) lastOutcome() cofidis.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcomes[len(r.outcomes)-1]
}

func (r *idemRecorder) lastHooked() cofidis.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hooked[len(r.hooked)-1]
}

// idemNotifier builds a notification handler on store with a recorder.
func idemNotifier(t *testing.T, store cofidis.Store, fn func(ev cofidis.Event, call int) error, opts ...cofidis.Option) (http.Handler, *idemRecorder) {
	t.Helper()
	rec := &idemRecorder{}
	opts = append([]cofidis.Option{
		cofidis.WithIdempotency(store), cofidis.WithDeliveryHook(rec.hook), cofidis.WithLogger(idemQuiet()),
	}, opts...)
	h := notifier(t, rec.notification(fn), opts...)
	return h, rec
}

func TestMemoryStore_contract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) cofidis.Store {
		return cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
	})
}

func TestMemoryStore_forgetsTransactionsAfterTTL(t *testing.T) {
	t.Parallel()
	clock := newIdemClock()
	s := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{TTL: time.Hour, Clock: clock.Now})
	ctx := context.Background()
	k := cofidis.ActionKey{Transaction: "m/t/d", Action: "validated", Status: cofidis.StatusValidated, Rank: cofidis.StatusValidated.Rank()}
	res, err := s.Claim(ctx, k, time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Complete(ctx, k, res.Token))

	clock.Advance(time.Hour - time.Second)
	res, err = s.Peek(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, cofidis.Done, res.State, "still remembered just before the TTL")

	clock.Advance(time.Second)
	res, err = s.Peek(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, cofidis.Unclaimed, res.State, "forgotten at the TTL")
	assert.Empty(t, res.Furthest, "the furthest status expires with the transaction")
}

// TestMemoryStore_manyActions drives one transaction through more actions
// than a record holds in place, releasing some among them: every action
// keeps its own state, whichever place it is kept in.
func TestMemoryStore_manyActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	action := func(i int) cofidis.ActionKey {
		return cofidis.ActionKey{Transaction: "m/many/d", Action: "pending/sub" + strconv.Itoa(i), Status: cofidis.StatusPending, Rank: 3}
	}
	for _, tt := range []struct {
		name     string
		actions  int
		released []int // claimed, then released instead of completed
	}{
		{"one", 1, nil},
		{"in place only", 3, []int{1}},
		{"one beyond", 4, []int{0}},
		{"many, releasing in place and beyond", 9, []int{0, 2, 5, 8}},
		{"all released", 6, []int{0, 1, 2, 3, 4, 5}},
		{"releasing the last ones", 7, []int{6, 5, 4, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
			tokens := make([]string, tt.actions)
			for i := range tt.actions {
				res, err := s.Claim(ctx, action(i), time.Minute)
				require.NoError(t, err)
				require.Equal(t, cofidis.Claimed, res.State, "action %d", i)
				tokens[i] = res.Token
			}
			released := map[int]bool{}
			for _, i := range tt.released {
				require.NoError(t, s.Release(ctx, action(i), tokens[i]), "release %d", i)
				released[i] = true
			}
			for i := range tt.actions {
				if released[i] {
					continue
				}
				assert.ErrorIs(t, s.Complete(ctx, action(i), "not-the-token"), cofidis.ErrLeaseLost, "action %d", i)
				require.NoError(t, s.Complete(ctx, action(i), tokens[i]), "complete %d", i)
			}
			for i := range tt.actions {
				res, err := s.Peek(ctx, action(i))
				require.NoError(t, err)
				want := cofidis.Done
				if released[i] {
					want = cofidis.Unclaimed
				}
				assert.Equal(t, want, res.State, "action %d", i)
				if len(tt.released) < tt.actions {
					assert.Equal(t, cofidis.StatusPending, res.Furthest, "action %d", i)
				}
			}
			// A released action can be claimed again, and completed.
			for _, i := range tt.released {
				res, err := s.Claim(ctx, action(i), time.Minute)
				require.NoError(t, err)
				require.Equal(t, cofidis.Claimed, res.State, "reclaim %d", i)
				require.NoError(t, s.Complete(ctx, action(i), res.Token))
			}
			for i := range tt.actions {
				res, err := s.Peek(ctx, action(i))
				require.NoError(t, err)
				assert.Equal(t, cofidis.Done, res.State, "action %d at the end", i)
			}
			assert.Equal(t, 1, s.Len())
		})
	}
}

// TestMemoryStore_manyActionsExpire: a transaction with more actions than
// a record holds in place is forgotten whole at the TTL, and starts afresh.
func TestMemoryStore_manyActionsExpire(t *testing.T) {
	t.Parallel()
	clock := newIdemClock()
	s := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{TTL: time.Hour, Clock: clock.Now})
	ctx := context.Background()
	action := func(i int) cofidis.ActionKey {
		return cofidis.ActionKey{Transaction: "m/expiring/d", Action: "a" + strconv.Itoa(i), Status: cofidis.StatusPending, Rank: 3}
	}
	for round := range 3 {
		for i := range 7 {
			res, err := s.Claim(ctx, action(i), time.Minute)
			require.NoError(t, err)
			require.Equal(t, cofidis.Claimed, res.State, "round %d, action %d", round, i)
			require.NoError(t, s.Complete(ctx, action(i), res.Token))
		}
		for i := range 7 {
			res, err := s.Peek(ctx, action(i))
			require.NoError(t, err)
			require.Equal(t, cofidis.Done, res.State, "round %d, action %d", round, i)
		}
		clock.Advance(time.Hour)
	}
}

func TestMemoryStore_memoryStaysFlatUnderNewTransactions(t *testing.T) {
	t.Parallel()
	const (
		ttl   = time.Hour
		perTT = 1000 // new transactions per TTL
		total = 20 * perTT
	)
	clock := newIdemClock()
	s := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{TTL: ttl, Clock: clock.Now})
	ctx := context.Background()
	peak := 0
	for i := range total {
		k := cofidis.ActionKey{Transaction: "m/" + strconv.Itoa(i) + "/d", Action: "to_confirm", Status: cofidis.StatusToConfirm, Rank: 4}
		res, err := s.Claim(ctx, k, time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Complete(ctx, k, res.Token))
		clock.Advance(ttl / perTT)
		peak = max(peak, s.Len())
	}
	// Records live one TTL and are swept every TTL/8.
	assert.LessOrEqual(t, peak, perTT*9/8+1, "entries held at the peak")
	assert.GreaterOrEqual(t, s.Len(), perTT, "the last TTL's transactions are kept")
}

func TestEvent_ActionKey(t *testing.T) {
	t.Parallel()
	key := func(status, sub string) cofidis.ActionKey {
		ev := cofidis.Event{Callback: cofidis.Callback{
			TransactionKey: cofidis.TransactionKey{MerchantID: "020280098", MerchantTransactionID: "2Yg/Ko", MerchantTransactionDate: "20260227"},
			Status:         cofidis.ParseStatus(status),
			SubState:       cofidis.ParseSubState(sub),
		}}
		return ev.ActionKey()
	}
	tests := []struct {
		name       string
		a, b       cofidis.ActionKey
		same       bool
		wantAction string
	}{
		{"capitalisations of a status collapse", key("To_confirm", ""), key("to_confirm", ""), true, "to_confirm"},
		{"a decision's sub-state is ignored", key("to_confirm", "signed"), key("to_confirm", ""), true, "to_confirm"},
		{"pending sub-states are distinct actions", key("pending", "signed"), key("pending", ""), false, "pending/signed"},
		{"pending/signed however spelt", key("PENDING", "Signed"), key("pending", "signed"), true, "pending/signed"},
		{"sub-states of an unknown status are kept, case-folded", key("Future", "x/Y"), key("Future", ""), false, "future/x%2Fy"},
		{"capitalisations of an unknown status collapse", key("Partially_validated", ""), key("PARTIALLY_VALIDATED", ""), true, "partially_validated"},
		{"capitalisations of an unknown sub-state collapse", key("pending", "Under_Review"), key("pending", "under_review"), true, "pending/under_review"},
		{"different statuses differ", key("Refused", ""), key("to_confirm", ""), false, "Refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.same, tt.a == tt.b, "%s vs %s", tt.a, tt.b)
			assert.Equal(t, tt.wantAction, tt.a.Action)
			assert.Equal(t, "020280098/2Yg%2FKo/20260227", tt.a.Transaction)
			assert.Equal(t, tt.a.Status.Rank(), tt.a.Rank)
		})
	}
}

func TestIdempotency_notificationDeliveredThreeTimesRunsOnce(t *testing.T) {
	t.Parallel()
	h, rec := idemNotifier(t, cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), nil)
	// notificationUrlSuccess, notificationUrlPending (with the last
	// sub-state) and a retry: one decision.
	for _, sub := range []string{"", "signed", ""} {
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", sub).Code)
	}
	assert.Equal(t, 1, rec.calls())
	assert.Equal(t, []cofidis.Outcome{cofidis.OutcomeProcessed, cofidis.OutcomeDuplicate, cofidis.OutcomeDuplicate}, rec.outcomes)
	assert.True(t, rec.lastHooked().Duplicate, "the hook sees the duplicate flagged")
	assert.False(t, rec.events[0].Duplicate)
}

func TestIdempotency_failedCallbackIsReleasedForTheNextDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fail func() error
	}{
		{"error", func() error { return errors.New("database down") }},
		{"panic", func() error { panic("nil map") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, rec := idemNotifier(t, cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), func(_ cofidis.Event, call int) error {
				if call == 1 {
					return tt.fail()
				}
				return nil
			})
			assert.Equal(t, http.StatusInternalServerError, idemPost(h, "T1", "to_confirm", "").Code)
			assert.Equal(t, cofidis.OutcomeFailed, rec.lastOutcome())
			assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code, "the retry processes it")
			assert.Equal(t, cofidis.OutcomeProcessed, rec.lastOutcome())
			assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
			assert.Equal(t, cofidis.OutcomeDuplicate, rec.lastOutcome())
			assert.Equal(t, 2, rec.calls())
		})
	}
}

func TestIdempotency_permanentFailureIsDoneButDoesNotMoveTheOrder(t *testing.T) {
	t.Parallel()
	h, rec := idemNotifier(t, cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), func(ev cofidis.Event, _ int) error {
		if ev.Status == cofidis.StatusValidated {
			return cofidis.Permanent(errors.New("forged: getStatus disagrees"))
		}
		return nil
	})
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "validated", "").Code)
	assert.Equal(t, cofidis.OutcomePermanent, rec.lastOutcome())
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "validated", "").Code)
	assert.Equal(t, cofidis.OutcomeDuplicate, rec.lastOutcome(), "not retried")
	// A rejected validated must not make the real to_confirm stale.
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
	assert.Equal(t, cofidis.OutcomeProcessed, rec.lastOutcome())
	assert.False(t, rec.last().Stale)
	assert.Equal(t, 2, rec.calls())
}

func TestIdempotency_concurrentDuplicateIsAnswered503UntilDone(t *testing.T) {
	t.Parallel()
	entered, unblock := make(chan struct{}), make(chan struct{})
	h, rec := idemNotifier(t, cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), func(_ cofidis.Event, call int) error {
		if call == 1 {
			close(entered)
			<-unblock
		}
		return nil
	}, cofidis.WithLease(30*time.Second))
	first := make(chan int)
	go func() { first <- idemPost(h, "T1", "to_confirm", "").Code }()
	<-entered

	w := idemPost(h, "T1", "to_confirm", "signed")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "never 2xx for what is not done yet")
	assert.Equal(t, "30", w.Header().Get("Retry-After"))
	assert.Equal(t, cofidis.OutcomeInProgress, rec.lastOutcome())

	close(unblock)
	assert.Equal(t, http.StatusOK, <-first)
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
	assert.Equal(t, cofidis.OutcomeDuplicate, rec.lastOutcome())
	assert.Equal(t, 1, rec.calls())
}

func TestIdempotency_crashedReplicaClaimIsTakenOverAfterTheLease(t *testing.T) {
	t.Parallel()
	clock := newIdemClock()
	store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{Clock: clock.Now})
	h, rec := idemNotifier(t, store, nil)

	// Another replica claims the action and dies.
	ev := cofidis.Event{Callback: cofidis.Callback{
		TransactionKey: cofidis.TransactionKey{MerchantID: "020280098", MerchantTransactionID: "T1", MerchantTransactionDate: "20260227"},
		Status:         cofidis.StatusToConfirm,
	}}
	_, err := store.Claim(context.Background(), ev.ActionKey(), time.Minute)
	require.NoError(t, err)

	assert.Equal(t, http.StatusServiceUnavailable, idemPost(h, "T1", "to_confirm", "").Code)
	assert.Equal(t, 0, rec.calls())
	clock.Advance(time.Minute)
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
	assert.Equal(t, cofidis.OutcomeProcessed, rec.lastOutcome())
	assert.Equal(t, 1, rec.calls())
}

func TestIdempotency_callbackContextEndsWithTheLease(t *testing.T) {
	t.Parallel()
	var (
		left        time.Duration
		hasDeadline bool
	)
	h := notifier(t, func(ctx context.Context, _ cofidis.Event) error {
		var d time.Time
		d, hasDeadline = ctx.Deadline()
		left = time.Until(d)
		return nil
	}, cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})), cofidis.WithLease(time.Minute))
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
	require.True(t, hasDeadline, "the callback's context has a deadline")
	assert.InDelta(t, time.Minute.Seconds(), left.Seconds(), 5)
}

// idemFaultyStore wraps a Store and fails the chosen operations.
type idemFaultyStore struct {
	cofidis.Store
	failClaim, failComplete bool
	completes               atomic.Int32
}

var errIdemStoreDown = errors.New("connection refused")

func (s *idemFaultyStore) Claim(ctx context.Context, k cofidis.ActionKey, lease time.Duration) (cofidis.ClaimResult, error) {
	if s.failClaim {
		return cofidis.ClaimResult{}, errIdemStoreDown
	}
	return s.Store.Claim(ctx, k, lease)
}

func (s *idemFaultyStore) Complete(ctx context.Context, k cofidis.ActionKey, token string) error {
	s.completes.Add(1)
	if s.failComplete {
		return errIdemStoreDown
	}
	return s.Store.Complete(ctx, k, token)
}

func TestIdempotency_storeFailureBeforeDispatchIs503WithoutDispatch(t *testing.T) {
	t.Parallel()
	var seen error
	store := &idemFaultyStore{Store: cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), failClaim: true}
	h, rec := idemNotifier(t, store, nil, cofidis.WithOnError(func(_ *http.Request, err error) { seen = err }))
	assert.Equal(t, http.StatusServiceUnavailable, idemPost(h, "T1", "to_confirm", "").Code)
	assert.Equal(t, 0, rec.calls(), "never dispatched without a claim")
	assert.Equal(t, cofidis.OutcomeStoreFailed, rec.lastOutcome())
	require.ErrorIs(t, seen, cofidis.ErrStoreUnavailable)
	assert.ErrorIs(t, seen, errIdemStoreDown)
	assert.Equal(t, http.StatusServiceUnavailable, cofidis.HTTPStatus(seen))
}

func TestIdempotency_storeFailureAfterASuccessfulCallbackIsAcknowledged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	store := &idemFaultyStore{Store: cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), failComplete: true}
	rec := &idemRecorder{}
	h := notifier(t, rec.notification(nil), cofidis.WithIdempotency(store), cofidis.WithDeliveryHook(rec.hook),
		cofidis.WithLease(400*time.Millisecond), cofidis.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code, "the action happened: a 5xx would ask for it again")
	assert.Equal(t, cofidis.OutcomeUnrecorded, rec.lastOutcome())
	assert.Greater(t, store.completes.Load(), int32(3), "Complete is retried until the lease ends")
	assert.Contains(t, logs.String(), "level=ERROR")
	assert.Contains(t, logs.String(), "did not record")
}

func TestIdempotency_ordering(t *testing.T) {
	t.Parallel()
	type step struct{ status, sub string }
	tests := []struct {
		name         string
		before       []step // processed first, in this order
		event        step
		want         cofidis.Outcome
		wantConflict bool
		wantFurthest cofidis.Status
	}{
		{"pending after to_confirm is stale", []step{{"to_confirm", ""}}, step{"pending", ""}, cofidis.OutcomeStale, false, cofidis.StatusToConfirm},
		{"a pending sub-state after to_confirm is stale", []step{{"pending", ""}, {"to_confirm", ""}}, step{"pending", "signed"}, cofidis.OutcomeStale, false, cofidis.StatusToConfirm},
		{"pending after Refused is stale", []step{{"Refused", ""}}, step{"pending", "signed"}, cofidis.OutcomeStale, false, cofidis.StatusRefused},
		{"Undefined after pending is stale", []step{{"pending", ""}}, step{"Undefined", ""}, cofidis.OutcomeStale, false, cofidis.StatusPending},
		{"to_confirm after validated is stale", []step{{"validated", ""}}, step{"to_confirm", ""}, cofidis.OutcomeStale, false, cofidis.StatusValidated},
		{"Aborted after authorized is stale", []step{{"authorized", ""}}, step{"Aborted", ""}, cofidis.OutcomeStale, false, cofidis.StatusAuthorized},
		{"to_confirm after pending is processed", []step{{"pending", "signed"}}, step{"to_confirm", ""}, cofidis.OutcomeProcessed, false, cofidis.StatusPending},
		{"validated after to_confirm is processed", []step{{"to_confirm", ""}}, step{"validated", ""}, cofidis.OutcomeProcessed, false, cofidis.StatusToConfirm},
		{"pending after a pending sub-state is processed", []step{{"pending", "signed"}}, step{"pending", ""}, cofidis.OutcomeProcessed, false, cofidis.StatusPending},
		{"after the journey, a lower rank is processed", []step{{"validated", ""}}, step{"authorized", ""}, cofidis.OutcomeProcessed, false, cofidis.StatusValidated},
		{"validated after Refunded is processed", []step{{"Refunded", ""}}, step{"validated", ""}, cofidis.OutcomeProcessed, false, cofidis.StatusRefunded},
		{"Refused after to_confirm is a conflict, processed", []step{{"to_confirm", ""}}, step{"Refused", ""}, cofidis.OutcomeProcessed, true, cofidis.StatusToConfirm},
		{"to_confirm after Aborted is a conflict, processed", []step{{"Aborted", ""}}, step{"to_confirm", ""}, cofidis.OutcomeProcessed, true, cofidis.StatusAborted},
		{"an unknown status is never stale", []step{{"validated", ""}}, step{"Something_new", ""}, cofidis.OutcomeProcessed, false, cofidis.StatusValidated},
		{"an unknown status does not move the order", []step{{"pending", ""}, {"Something_new", ""}}, step{"to_confirm", ""}, cofidis.OutcomeProcessed, false, cofidis.StatusPending},
		{"the first status of a transaction is processed", nil, step{"pending", ""}, cofidis.OutcomeProcessed, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, deliver := range []bool{false, true} {
				h, rec := idemNotifier(t, cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), nil, cofidis.WithStaleEvents(deliver))
				for _, s := range tt.before {
					require.Equal(t, http.StatusOK, idemPost(h, "T1", s.status, s.sub).Code)
					require.Equal(t, cofidis.OutcomeProcessed, rec.lastOutcome(), "setup step %v", s)
				}
				calls := rec.calls()
				assert.Equal(t, http.StatusOK, idemPost(h, "T1", tt.event.status, tt.event.sub).Code)
				ev := rec.lastHooked()
				assert.Equal(t, tt.wantConflict, ev.Conflict, "Conflict")
				assert.Equal(t, tt.wantFurthest, ev.FurthestStatus, "FurthestStatus")
				if tt.want != cofidis.OutcomeStale {
					assert.Equal(t, tt.want, rec.lastOutcome())
					assert.False(t, ev.Stale)
					assert.Equal(t, calls+1, rec.calls())
					continue
				}
				assert.True(t, ev.Stale)
				if !deliver {
					assert.Equal(t, cofidis.OutcomeStale, rec.lastOutcome())
					assert.Equal(t, calls, rec.calls(), "a stale event is not dispatched by default")
				} else {
					assert.Equal(t, cofidis.OutcomeProcessed, rec.lastOutcome())
					assert.Equal(t, calls+1, rec.calls(), "WithStaleEvents(true) delivers it")
					assert.True(t, rec.last().Stale, "flagged")
				}
				// Either way, its next delivery is a plain duplicate.
				assert.Equal(t, http.StatusOK, idemPost(h, "T1", tt.event.status, tt.event.sub).Code)
				assert.Equal(t, cofidis.OutcomeDuplicate, rec.lastOutcome())
			}
		})
	}
}

func TestIdempotency_redirectsOnlyReadTheStoreByDefault(t *testing.T) {
	t.Parallel()
	store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
	notify, nrec := idemNotifier(t, store, nil)
	rrec := &idemRecorder{}
	redirect := redirector(t, rrec.redirect(), cofidis.WithIdempotency(store), cofidis.WithDeliveryHook(rrec.hook), cofidis.WithLogger(idemQuiet()))

	// The browser comes back first: it proves nothing and consumes nothing.
	assert.Equal(t, http.StatusOK, idemPost(redirect, "T1", "to_confirm", "").Code)
	assert.False(t, rrec.last().Duplicate)
	assert.Equal(t, http.StatusOK, idemPost(notify, "T1", "to_confirm", "").Code)
	assert.Equal(t, cofidis.OutcomeProcessed, nrec.lastOutcome(), "the notification still runs the action")

	// Once processed, a redirect is told so, and still gets its page.
	assert.Equal(t, http.StatusOK, idemPost(redirect, "T1", "to_confirm", "").Code)
	assert.True(t, rrec.last().Duplicate)
	assert.Equal(t, cofidis.StatusToConfirm, rrec.last().FurthestStatus)
	assert.Equal(t, http.StatusOK, idemPost(redirect, "T1", "pending", "").Code)
	assert.True(t, rrec.last().Stale, "a stale redirect is delivered flagged")
	assert.Equal(t, 3, rrec.calls())
	assert.Equal(t, []cofidis.Outcome{cofidis.OutcomeProcessed, cofidis.OutcomeProcessed, cofidis.OutcomeProcessed}, rrec.outcomes)
}

func TestIdempotency_redirectClaims(t *testing.T) {
	t.Parallel()
	store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
	notify, nrec := idemNotifier(t, store, nil)
	rrec := &idemRecorder{}
	redirect := redirector(t, rrec.redirect(), cofidis.WithIdempotency(store), cofidis.WithRedirectClaims(true), cofidis.WithLogger(idemQuiet()))

	assert.Equal(t, http.StatusOK, idemPost(redirect, "T1", "to_confirm", "").Code)
	assert.False(t, rrec.last().Duplicate, "the first delivery acts")
	assert.Equal(t, http.StatusOK, idemPost(notify, "T1", "to_confirm", "").Code)
	assert.Equal(t, cofidis.OutcomeDuplicate, nrec.lastOutcome(), "the redirect consumed the action")
	assert.Equal(t, http.StatusOK, idemPost(redirect, "T1", "to_confirm", "").Code)
	assert.True(t, rrec.last().Duplicate)

	// An unverified redirect does not move the order: a forged to_confirm
	// in a browser cannot make the real pending notification stale.
	assert.Equal(t, http.StatusOK, idemPost(notify, "T1", "pending", "signed").Code)
	assert.Equal(t, cofidis.OutcomeProcessed, nrec.lastOutcome())
}

func TestIdempotency_redirectClaimStoreFailureRendersTheErrorPage(t *testing.T) {
	t.Parallel()
	store := &idemFaultyStore{Store: cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}), failClaim: true}
	rrec := &idemRecorder{}
	redirect := redirector(t, rrec.redirect(), cofidis.WithIdempotency(store), cofidis.WithRedirectClaims(true), cofidis.WithDeliveryHook(rrec.hook), cofidis.WithLogger(idemQuiet()))
	w := idemPost(redirect, "T1", "to_confirm", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Contains(t, w.Body.String(), "<h1>503")
	assert.Equal(t, 0, rrec.calls())
	assert.Equal(t, cofidis.OutcomeStoreFailed, rrec.lastOutcome())
}

func TestIdempotency_routerSharesTheStoreBetweenChannels(t *testing.T) {
	t.Parallel()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	require.NoError(t, err)
	store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
	nrec, rrec := &idemRecorder{}, &idemRecorder{}
	rt, err := buildRouter(urls, rrec.redirect(), nrec.notification(nil),
		cofidis.WithIdempotency(store), cofidis.WithLogger(idemQuiet()))
	require.NoError(t, err)
	post := func(path string) int {
		v := url.Values{"transactionKey": {idemKeyJSON("T1")}, "transactionStatus": {"to_confirm"}}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		return w.Code
	}
	assert.Equal(t, http.StatusOK, post("/pay/cofidis/notify/success"))
	assert.Equal(t, http.StatusOK, post("/pay/cofidis/notify/pending"))
	assert.Equal(t, http.StatusOK, post("/pay/cofidis/return/success"))
	assert.Equal(t, 1, nrec.calls(), "one business action")
	assert.True(t, rrec.last().Duplicate, "the redirect knows it was processed")
}

func TestIdempotency_hookWithoutStore(t *testing.T) {
	t.Parallel()
	rec := &idemRecorder{}
	h := notifier(t, rec.notification(func(ev cofidis.Event, _ int) error {
		switch ev.Status {
		case cofidis.StatusRefused:
			return errors.New("retry me")
		case cofidis.StatusAborted:
			return cofidis.Permanent(nil)
		}
		return nil
	}), cofidis.WithDeliveryHook(rec.hook), cofidis.WithLogger(idemQuiet()))
	for _, st := range []string{"to_confirm", "to_confirm", "Refused", "Aborted"} {
		idemPost(h, "T1", st, "")
	}
	assert.Equal(t, 4, rec.calls(), "without a store every delivery is dispatched")
	assert.Equal(t, []cofidis.Outcome{cofidis.OutcomeProcessed, cofidis.OutcomeProcessed, cofidis.OutcomeFailed, cofidis.OutcomePermanent}, rec.outcomes)
}

func TestOutcomeAndClaimState_String(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "duplicate", cofidis.OutcomeDuplicate.String())
	assert.Equal(t, "in_progress", cofidis.OutcomeInProgress.String())
	assert.Equal(t, "Outcome(0)", cofidis.Outcome(0).String())
	assert.Equal(t, "done", cofidis.Done.String())
	assert.Equal(t, "ClaimState(9)", cofidis.ClaimState(9).String())
}

// TestMemoryStore_tokensAreUnpredictable: claim tokens have crypto/rand.Text's
// form (26 base32 characters, 130 bits) and never repeat, within a store or
// across stores (each seeds its generator from crypto/rand).
func TestMemoryStore_tokensAreUnpredictable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 2 {
		s := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
		for i := range 5000 {
			res, err := s.Claim(t.Context(), cofidis.ActionKey{Transaction: fmt.Sprintf("m/%d/20260227", i), Action: "to_confirm"}, time.Minute)
			require.NoError(t, err)
			require.Equal(t, cofidis.Claimed, res.State)
			require.Len(t, res.Token, 26)
			require.Equal(t, -1, strings.IndexFunc(res.Token, func(r rune) bool {
				return !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", r)
			}), "token %q", res.Token)
			require.False(t, seen[res.Token], "token %q repeated", res.Token)
			seen[res.Token] = true
		}
	}
}
