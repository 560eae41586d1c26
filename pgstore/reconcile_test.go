package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/pgstore"
)

// Reconciliation through the Router, on PostgreSQL: replicas (Routers, each
// with a pool of its own) share one store, the fake Cofidis plays the
// journeys, and a fake clock skips the 50 minutes.

// reconcileStart is when the tests' journeys begin, by the fake clock.
var reconcileStart = time.Date(2026, 2, 27, 10, 0, 0, 0, time.UTC)

// shopReplicas is a shop's receiver with reconciliation, on a fake clock,
// with the fake Cofidis' Ledger as getStatus.
type shopReplicas struct {
	clock  *cofidistest.Clock
	ledger *cofidistest.Ledger
	rec    *cofidistest.Recorder
	urls   cofidis.URLs
	schema string
	pool   *pgxpool.Pool   // the first replica's
	store  *pgstore.Store  // the first replica's
	ctx    context.Context // the test's, for the goroutines it starts too

	mu     sync.Mutex
	checks map[cofidis.TransactionID]int // getStatus calls, by transaction
}

func newShopReplicas(t *testing.T) *shopReplicas {
	t.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	require.NoError(t, err)
	first := newPool(t)
	sh := &shopReplicas{
		clock:  cofidistest.NewClock(reconcileStart),
		ledger: &cofidistest.Ledger{},
		rec:    &cofidistest.Recorder{RedirectURL: "/orders/1"},
		urls:   urls,
		schema: newSchema(t, first),
		pool:   first,
		ctx:    testContext(t),
		checks: map[cofidis.TransactionID]int{},
	}
	sh.store = newStore(t, first, pgstore.Options{Schema: sh.schema})
	return sh
}

// getStatus is the Ledger, counting the calls per transaction.
func (sh *shopReplicas) getStatus(ctx context.Context, key cofidis.TransactionKey) (cofidis.Status, error) {
	sh.mu.Lock()
	sh.checks[key.ID()]++
	sh.mu.Unlock()
	return sh.ledger.CurrentStatus(ctx, key)
}

// checksSoFar returns a copy of the getStatus calls per transaction.
func (sh *shopReplicas) checksSoFar() map[cofidis.TransactionID]int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make(map[cofidis.TransactionID]int, len(sh.checks))
	for id, n := range sh.checks {
		out[id] = n
	}
	return out
}

// replica returns a Router on a store of its own pool, on the shared
// schema, with verifier as getStatus (the counting Ledger when nil). The
// first replica uses sh.store.
func (sh *shopReplicas) replica(t *testing.T, store *pgstore.Store, verifier cofidis.Verifier, opts ...cofidis.Option) *cofidis.Router {
	t.Helper()
	if store == nil {
		store = newStore(t, newPool(t), pgstore.Options{Schema: sh.schema})
	}
	if verifier == nil {
		verifier = cofidis.VerifierFunc(sh.getStatus)
	}
	rt, err := cofidis.NewRouter(sh.urls, sh.rec.Redirect, sh.rec.Notify, append([]cofidis.Option{
		cofidis.WithVerifier(verifier),
		cofidis.WithIdempotency(store),
		cofidis.WithReconciliation(cofidis.ReconcileOptions{}),
		cofidis.WithClock(sh.clock.Now),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)...)
	require.NoError(t, err)
	return rt
}

// begin registers a new transaction on rt, as after a successful
// initialize, and returns its key.
func (sh *shopReplicas) begin(t *testing.T, rt *cofidis.Router, id string) cofidis.TransactionKey {
	t.Helper()
	key := cofidistest.NewKey(cofidistest.KeyOptions{MerchantTransactionID: id, Now: sh.clock.Now()})
	sh.ledger.Set(key, cofidis.StatusInitialized)
	require.NoError(t, rt.Track(sh.ctx, key, sh.clock.Now()))
	return key
}

// play plays j on rt, every delivery answered as Cofidis wants.
func (sh *shopReplicas) play(t *testing.T, rt http.Handler, j cofidistest.Journey, repeat int) {
	t.Helper()
	fake := cofidistest.Fake{URLs: sh.urls, Handler: rt, Ledger: sh.ledger, RepeatNotifications: repeat}
	ds, err := fake.Play(sh.ctx, j)
	if !assert.NoError(t, err) {
		return
	}
	for _, d := range ds {
		assert.True(t, d.OK(), "%s", d)
	}
}

// tracked counts the transactions still tracked.
func (sh *shopReplicas) tracked(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, sh.pool.QueryRow(sh.ctx, `SELECT count(*) FROM `+trackedTable(sh.schema)).Scan(&n))
	return n
}

// due returns when key's transaction is next due, by the Router's clock
// (while a replica holds it, the end of its lease), and whether a replica
// holds it.
func (sh *shopReplicas) due(t *testing.T, key cofidis.TransactionKey) (time.Time, bool) {
	t.Helper()
	var (
		due  time.Time
		held bool
	)
	require.NoError(t, sh.pool.QueryRow(sh.ctx, `SELECT due, token IS NOT NULL FROM `+trackedTable(sh.schema)+` WHERE transaction_id = $1`,
		key.ID().String()).Scan(&due, &held))
	return due, held
}

// TestReconciliation_twoReplicas is the in-memory TestReconciliation_atScale
// on PostgreSQL: a few hundred tracked transactions, 30% of them with
// every callback lost, the rest with the usual duplicates, two replicas
// sharing one store, fake time. When the 50 minutes have passed, both
// replicas reconcile at once: every decision reaches the callback exactly
// once, only the transactions whose callbacks were lost are reconciled,
// each checked with getStatus once, and none is left tracked.
func TestReconciliation_twoReplicas(t *testing.T) {
	const n = 400
	sh := newShopReplicas(t)
	replicas := []*cofidis.Router{sh.replica(t, sh.store, nil), sh.replica(t, nil, nil)}
	var (
		mu         sync.Mutex
		decisions  = map[cofidis.TransactionID]int{}
		reconciled = map[cofidis.TransactionID]int{}
		lost       = map[cofidis.TransactionID]bool{}
	)
	sh.rec.OnEvent = func(ev cofidis.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Channel == cofidis.ChannelRedirect || !ev.Status.IsFinal() {
			return
		}
		decisions[ev.TransactionKey.ID()]++
		if ev.Channel == cofidis.ChannelReconciliation {
			reconciled[ev.TransactionKey.ID()]++
		}
	}
	rng := rand.New(rand.NewPCG(13, 30))
	journeys := []func(cofidis.TransactionKey) cofidistest.Journey{
		cofidistest.Accepted, cofidistest.Refused, cofidistest.Aborted,
		func(k cofidis.TransactionKey) cofidistest.Journey { return cofidistest.PendingAccepted(k) },
	}
	ids := make([]cofidis.TransactionID, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		key := sh.begin(t, replicas[i%2], fmt.Sprintf("P%09d", i))
		ids[i] = key.ID()
		j := journeys[rng.IntN(len(journeys))](key)
		handler, repeat := replicas[rng.IntN(2)], 0
		if rng.IntN(10) < 3 {
			lost[key.ID()] = true
			j = j.LoseNotifications().CloseBrowser()
		} else {
			repeat = 1 + rng.IntN(2)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sh.play(t, handler, j, repeat)
		})
	}
	wg.Wait()
	require.False(t, t.Failed(), "the journeys")
	require.Equal(t, n, sh.tracked(t), "tracked transactions before the deadline")
	before := sh.checksSoFar()

	// The 50 minutes pass; both replicas reconcile at once.
	sh.clock.Advance(cofidis.DefaultReconcileDeadline)
	var results [2]cofidis.ReconcileResult
	for i, rt := range replicas {
		wg.Go(func() {
			res, err := rt.ReconcileDue(sh.ctx)
			assert.NoError(t, err)
			results[i] = res
		})
	}
	wg.Wait()
	var total cofidis.ReconcileResult
	for _, r := range results {
		total.Settled += r.Settled
		total.Checked += r.Checked
		total.Delivered += r.Delivered
		total.Rescheduled += r.Rescheduled
		total.Failed += r.Failed
	}

	after := sh.checksSoFar()
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		require.Equal(t, 1, decisions[id], "transaction %s: every decision reaches the callback exactly once", id)
		want := 0
		if lost[id] {
			want = 1
		}
		require.Equal(t, want, reconciled[id], "transaction %s: reconciled only when its callbacks were lost", id)
		require.Equal(t, want, after[id]-before[id], "transaction %s: getStatus calls by the reconciliation", id)
	}
	assert.Equal(t, cofidis.ReconcileResult{Settled: n - len(lost), Checked: len(lost), Delivered: len(lost)}, total)
	assert.Zero(t, sh.tracked(t), "transactions left tracked")
	t.Logf("%d transactions, %d with every callback lost: replica results %+v and %+v", n, len(lost), results[0], results[1])
}

// TestReconciliation_aReplicaThatDiesHandsOverAfterItsLease has a replica
// take a due transaction and die before settling it: the other replica
// leaves it alone until the lease of the take ends, by the Router's clock,
// and then reconciles it, once.
func TestReconciliation_aReplicaThatDiesHandsOverAfterItsLease(t *testing.T) {
	tests := []struct {
		name string
		// die takes the due transactions as a replica would, and dies
		// holding them.
		die func(t *testing.T, sh *shopReplicas)
	}{
		{"dies right after TakeDue", func(t *testing.T, sh *shopReplicas) {
			taken, err := sh.store.TakeDue(sh.ctx, sh.clock.Now(), 100, 5*time.Minute)
			require.NoError(t, err)
			require.Len(t, taken, 1)
		}},
		{"dies while getStatus is under way", func(t *testing.T, sh *shopReplicas) {
			// A Router whose context ends still settles its take (the
			// Router writes Reschedule and Untrack without the
			// cancellation), so the replica dies with its connections: its
			// pool closes while getStatus is under way, and nothing it
			// writes afterwards reaches the database.
			called, dead := make(chan struct{}), make(chan struct{})
			hang := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				close(called)
				<-dead
				return "", errors.New("the replica died")
			})
			pool := newPool(t)
			dying := sh.replica(t, newStore(t, pool, pgstore.Options{Schema: sh.schema}), hang)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = dying.ReconcileDue(sh.ctx)
			}()
			<-called
			pool.Close()
			close(dead)
			<-done
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := newShopReplicas(t)
			survivor := sh.replica(t, sh.store, nil)
			key := sh.begin(t, survivor, "D000000001")
			sh.play(t, survivor, cofidistest.Accepted(key).LoseNotifications().CloseBrowser(), 0)
			sh.clock.Advance(cofidis.DefaultReconcileDeadline)

			tt.die(t, sh)
			handover, held := sh.due(t, key)
			require.True(t, held, "the dead replica holds the transaction")
			require.True(t, handover.After(sh.clock.Now()), "the take moved the due time to the end of its lease")
			t.Logf("lease of the take: %s", handover.Sub(sh.clock.Now()))
			res, err := survivor.ReconcileDue(sh.ctx)
			require.NoError(t, err)
			assert.Equal(t, cofidis.ReconcileResult{}, res, "held by the dead replica")
			sh.clock.Advance(handover.Sub(sh.clock.Now()) - time.Microsecond)
			res, err = survivor.ReconcileDue(sh.ctx)
			require.NoError(t, err)
			assert.Equal(t, cofidis.ReconcileResult{}, res, "a microsecond before the lease ends")

			sh.clock.Advance(time.Microsecond)
			res, err = survivor.ReconcileDue(sh.ctx)
			require.NoError(t, err)
			assert.Equal(t, cofidis.ReconcileResult{Checked: 1, Delivered: 1}, res, "handed over when the lease ends")
			evs := sh.rec.Filter(cofidistest.OnChannel(cofidis.ChannelReconciliation))
			require.Len(t, evs, 1)
			assert.Equal(t, cofidis.StatusToConfirm, evs[0].Status)
			assert.True(t, evs[0].Verified)
			assert.Zero(t, sh.tracked(t), "left tracked")
		})
	}
}

// takeCounter is an Observer counting the Router's TakeDue calls: a pass
// takes as many transactions as it has free slots, so how many takes a
// batch needs depends on how fast the others finish.
type takeCounter struct{ takes atomic.Int64 }

func (c *takeCounter) StartRequest(ctx context.Context, _ cofidis.Channel) context.Context {
	return ctx
}
func (c *takeCounter) EndRequest(context.Context, cofidis.Report) {}
func (c *takeCounter) StartCall(ctx context.Context, call cofidis.Call) context.Context {
	if call == cofidis.CallStoreTakeDue {
		c.takes.Add(1)
	}
	return ctx
}
func (c *takeCounter) EndCall(context.Context, cofidis.Call, time.Duration, error) {}

// TestRoundTrips_perReconciledTransaction counts, on the wire, the round
// trips ReconcileDue makes to the database: one TakeDue per take (a take
// holds as many transactions as the pass has free slots), then per
// transaction a Peek and Untrack or Reschedule, with the claim and the
// completion of a status delivered in between.
func TestRoundTrips_perReconciledTransaction(t *testing.T) {
	pool, writes := countingPool(t, 1)
	sh := newShopReplicas(t)
	var counter takeCounter
	rt := sh.replica(t, newStore(t, pool, pgstore.Options{Schema: sh.schema}), nil, cofidis.WithObserver(&counter))
	// What a transaction went through before its deadline.
	type kind int
	const (
		settled kind = iota // a journey played to its decision
		lost                // accepted, every callback lost
		running             // Cofidis still reports Initialized: checked again later
		pending             // Cofidis reports pending: delivered, checked again later
	)
	var n int
	// round tracks the transactions of kinds, lets the 50 minutes pass,
	// reconciles and returns the round trips of ReconcileDue; then it
	// forgets the transactions left tracked.
	round := func(t *testing.T, kinds []kind, want cofidis.ReconcileResult) int64 {
		t.Helper()
		for _, k := range kinds {
			n++
			key := sh.begin(t, rt, fmt.Sprintf("R%09d", n))
			switch k {
			case settled:
				sh.play(t, rt, cofidistest.Accepted(key), 0)
			case lost:
				sh.play(t, rt, cofidistest.Accepted(key).LoseNotifications().CloseBrowser(), 0)
			case pending:
				sh.ledger.Set(key, cofidis.StatusPending)
			}
		}
		sh.clock.Advance(cofidis.DefaultReconcileDeadline)
		writes.Store(0)
		counter.takes.Store(0)
		res, err := rt.ReconcileDue(sh.ctx)
		require.NoError(t, err)
		require.Equal(t, want, res)
		got := writes.Load() - counter.takes.Load() // the round trips per transaction
		require.Positive(t, counter.takes.Load())
		_, err = sh.pool.Exec(sh.ctx, `DELETE FROM `+trackedTable(sh.schema))
		require.NoError(t, err)
		return got
	}
	// The first use of each statement on the connection prepares it.
	round(t, []kind{settled, lost, running, pending}, cofidis.ReconcileResult{Settled: 1, Checked: 3, Delivered: 2, Rescheduled: 2})
	tests := []struct {
		name   string
		kinds  []kind
		result cofidis.ReconcileResult
		want   int64
	}{
		{"settled: Peek, Untrack", []kind{settled}, cofidis.ReconcileResult{Settled: 1}, 2},
		{"lost: Peek, Claim, Complete, Untrack", []kind{lost}, cofidis.ReconcileResult{Checked: 1, Delivered: 1}, 4},
		{"still running: Peek, Reschedule", []kind{running}, cofidis.ReconcileResult{Checked: 1, Rescheduled: 1}, 2},
		{"pending: Peek, Claim, Complete, Reschedule", []kind{pending}, cofidis.ReconcileResult{Checked: 1, Delivered: 1, Rescheduled: 1}, 4},
		{"a batch", []kind{lost, settled, lost, lost, settled, running, lost, settled, lost},
			cofidis.ReconcileResult{Settled: 3, Checked: 6, Delivered: 5, Rescheduled: 1}, 5*4 + 3*2 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, round(t, tt.kinds, tt.result), "round trips besides the TakeDue calls")
		})
	}
}
