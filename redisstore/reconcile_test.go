package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/redisstore"
)

// Reconciliation through the Router, on Redis: replicas (Routers, each
// with a go-redis client of its own) share one store, the fake Cofidis
// plays the journeys, and a fake clock skips the 50 minutes.

// reconcileStart is when the tests' journeys begin, by the fake clock.
var reconcileStart = time.Date(2026, 2, 27, 10, 0, 0, 0, time.UTC)

// shop is a merchant's receiver with reconciliation, on a fake clock, with
// the fake Cofidis' Ledger as getStatus; its replicas share the store
// under prefix.
type shop struct {
	clock  *cofidistest.Clock
	ledger *cofidistest.Ledger
	rec    *cofidistest.Recorder
	urls   cofidis.URLs
	prefix string
	ctx    context.Context

	mu     sync.Mutex
	checks map[cofidis.TransactionID]int // getStatus calls, by transaction
	stores []*takeCounter                // the replicas'
}

// takeCounter is a replica's store, counting its TakeDue calls.
type takeCounter struct {
	*redisstore.Store
	calls atomic.Int64
}

// TakeDue implements cofidis.Tracker.
func (c *takeCounter) TakeDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]cofidis.Tracked, error) {
	got, err := c.Store.TakeDue(ctx, now, limit, lease)
	c.calls.Add(1)
	return got, err
}

// takes returns the TakeDue calls of every replica so far.
func (sh *shop) takes() (calls int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, c := range sh.stores {
		calls += c.calls.Load()
	}
	return calls
}

func newShop(t *testing.T) *shop {
	t.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &shop{
		clock:  cofidistest.NewClock(reconcileStart),
		ledger: &cofidistest.Ledger{},
		rec:    &cofidistest.Recorder{RedirectURL: "/orders/1"},
		urls:   urls,
		prefix: uniquePrefix(),
		ctx:    ctx,
		checks: map[cofidis.TransactionID]int{},
	}
}

// getStatus is the Ledger, counting the calls per transaction.
func (sh *shop) getStatus(ctx context.Context, key cofidis.TransactionKey) (cofidis.Status, error) {
	sh.mu.Lock()
	sh.checks[key.ID()]++
	sh.mu.Unlock()
	return sh.ledger.CurrentStatus(ctx, key)
}

// checksSoFar returns a copy of the getStatus calls per transaction.
func (sh *shop) checksSoFar() map[cofidis.TransactionID]int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return maps.Clone(sh.checks)
}

// replica returns a Router on a store on rdb under the shop's prefix, with
// verifier as getStatus (the counting Ledger when nil).
func (sh *shop) replica(t *testing.T, rdb redis.Scripter, verifier cofidis.Verifier) *cofidis.Router {
	t.Helper()
	if verifier == nil {
		verifier = cofidis.VerifierFunc(sh.getStatus)
	}
	store := &takeCounter{Store: newStore(t, rdb, redisstore.Options{Prefix: sh.prefix})}
	sh.mu.Lock()
	sh.stores = append(sh.stores, store)
	sh.mu.Unlock()
	rt, err := cofidis.NewRouter(sh.urls, sh.rec.Redirect, sh.rec.Notify,
		cofidis.WithVerifier(verifier),
		cofidis.WithIdempotency(store),
		cofidis.WithReconciliation(cofidis.ReconcileOptions{}),
		cofidis.WithClock(sh.clock.Now),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// begin registers a new transaction on rt, as after a successful
// initialize, and returns its key.
func (sh *shop) begin(rt *cofidis.Router, id string) (cofidis.TransactionKey, error) {
	key := cofidistest.NewKey(cofidistest.KeyOptions{MerchantTransactionID: id, Now: sh.clock.Now()})
	sh.ledger.Set(key, cofidis.StatusInitialized)
	return key, rt.Track(sh.ctx, key, sh.clock.Now())
}

// play plays j on rt, each notification posted 1+repeat times, and fails
// unless every delivery was answered as Cofidis wants.
func (sh *shop) play(rt http.Handler, j cofidistest.Journey, repeat int) error {
	fake := cofidistest.Fake{URLs: sh.urls, Handler: rt, Ledger: sh.ledger, RepeatNotifications: repeat}
	ds, err := fake.Play(sh.ctx, j)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if !d.OK() {
			return fmt.Errorf("%s: %s", j.Name, d)
		}
	}
	return nil
}

// tracker returns the shop's due list: the sorted set and the hash.
func (sh *shop) tracker() (zset, hash string) {
	k := trackerKeys(sh.prefix)
	return k[0], k[1]
}

// tracked counts the transactions the due list holds, and checks that its
// two keys agree.
func (sh *shop) tracked(t *testing.T, rdb redis.Cmdable) int {
	t.Helper()
	zset, hash := sh.tracker()
	n, err := rdb.ZCard(sh.ctx, zset).Result()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := rdb.HLen(sh.ctx, hash).Result(); err != nil || m != n {
		t.Fatalf("the due list holds %d transactions and %d records (%v)", n, m, err)
	}
	return int(n)
}

// due returns when key's transaction is next due, by the Router's clock
// (while a replica holds it, the end of its lease), and whether a replica
// holds it.
func (sh *shop) due(t *testing.T, rdb redis.Cmdable, key cofidis.TransactionKey) (time.Time, bool) {
	t.Helper()
	zset, hash := sh.tracker()
	score, err := rdb.ZScore(sh.ctx, zset, key.ID().String()).Result()
	if err != nil {
		t.Fatalf("ZSCORE %s: %v", key.ID(), err)
	}
	rec, err := rdb.HGet(sh.ctx, hash, key.ID().String()).Result()
	if err != nil {
		t.Fatalf("HGET %s: %v", key.ID(), err)
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(rec), &r); err != nil {
		t.Fatal(err)
	}
	return time.UnixMilli(int64(score)).UTC(), r.Token != ""
}

// scaleRun is what became of reconcileAtScale.
type scaleRun struct {
	n, lost     int
	results     [2]cofidis.ReconcileResult
	checks      int           // getStatus calls by the reconciliation
	takes       int64         // TakeDue calls by the reconciliation
	journeys    time.Duration // tracking and playing every journey
	reconciling time.Duration // both replicas' ReconcileDue, at once
}

// reconcileAtScale is the in-memory TestReconciliation_atScale of the
// cofidis package, on Redis: n tracked transactions, 30% of them with
// every callback lost, the rest with the usual duplicates, two replicas
// (one on each of clients) sharing one store, fake time; admin counts
// the transactions tracked before and after. When the 50
// minutes have passed, both replicas reconcile at once. It checks that
// every decision reaches the callback exactly once, that only the
// transactions whose callbacks were lost are reconciled, each checked with
// getStatus once, and that none is left tracked. beforeReconcile, when
// set, runs once every journey was played.
func reconcileAtScale(t *testing.T, n int, clients [2]redis.UniversalClient, admin redis.Cmdable, beforeReconcile func(sh *shop)) scaleRun {
	t.Helper()
	sh := newShop(t)
	replicas := []*cofidis.Router{sh.replica(t, clients[0], nil), sh.replica(t, clients[1], nil)}
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
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
		start = time.Now()
	)
	for i := range n {
		id := fmt.Sprintf("R%09d", i)
		// Drawn here, in order, so that the seed decides the run (the
		// same draws as the in-memory test's).
		journey, handler := journeys[rng.IntN(len(journeys))], replicas[rng.IntN(2)]
		lose, repeat := rng.IntN(10) < 3, 0
		if !lose {
			repeat = 1 + rng.IntN(2)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key, err := sh.begin(replicas[i%2], id)
			if err != nil {
				t.Errorf("Track(%s): %v", id, err)
				return
			}
			ids[i] = key.ID()
			j := journey(key)
			if lose {
				mu.Lock()
				lost[key.ID()] = true
				mu.Unlock()
				j = j.LoseNotifications().CloseBrowser()
			}
			if err := sh.play(handler, j, repeat); err != nil {
				t.Errorf("transaction %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	run := scaleRun{n: n, lost: len(lost), journeys: time.Since(start)}
	if got := sh.tracked(t, admin); got != n {
		t.Fatalf("%d transactions tracked before the deadline, want %d", got, n)
	}
	if beforeReconcile != nil {
		beforeReconcile(sh)
	}
	before := sh.checksSoFar()
	takesBefore := sh.takes()

	// The 50 minutes pass; both replicas reconcile at once.
	sh.clock.Advance(cofidis.DefaultReconcileDeadline)
	start = time.Now()
	for i, rt := range replicas {
		wg.Go(func() {
			res, err := rt.ReconcileDue(sh.ctx)
			if err != nil {
				t.Errorf("replica %d: ReconcileDue: %v", i, err)
			}
			run.results[i] = res
		})
	}
	wg.Wait()
	run.reconciling = time.Since(start)
	takes := sh.takes()
	run.takes = takes - takesBefore
	var total cofidis.ReconcileResult
	for _, r := range run.results {
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
		want := 0
		if lost[id] {
			want = 1
		}
		if decisions[id] != 1 {
			t.Fatalf("transaction %s: its decision reached the callback %d times, want exactly once", id, decisions[id])
		}
		if reconciled[id] != want {
			t.Fatalf("transaction %s: reconciled %d times, want %d (lost callbacks: %t)", id, reconciled[id], want, lost[id])
		}
		if got := after[id] - before[id]; got != want {
			t.Fatalf("transaction %s: %d getStatus calls by the reconciliation, want %d", id, got, want)
		}
		run.checks += after[id] - before[id]
	}
	if want := (cofidis.ReconcileResult{Settled: n - len(lost), Checked: len(lost), Delivered: len(lost)}); total != want {
		t.Errorf("both replicas' results add up to %+v, want %+v", total, want)
	}
	if got := sh.tracked(t, admin); got != 0 {
		t.Errorf("%d transactions left tracked", got)
	}
	return run
}

// logf reports the run's figures (shown under -v, as in CI).
func (r scaleRun) logf(t *testing.T, title string, extra string) {
	t.Helper()
	t.Logf("%s: %d tracked transactions, %d with every callback lost (%.1f%%), two replicas\n"+
		"  tracking and journeys %v; both replicas' ReconcileDue at once %v (%.0f transactions/s)\n"+
		"  replica 1 %+v\n  replica 2 %+v\n"+
		"  getStatus calls by the reconciliation %d; settled without one %d; TakeDue calls %d (%.2f transactions each)%s",
		title, r.n, r.lost, 100*float64(r.lost)/float64(r.n),
		r.journeys.Round(time.Millisecond), r.reconciling.Round(time.Millisecond), float64(r.n)/r.reconciling.Seconds(),
		r.results[0], r.results[1],
		r.checks, r.results[0].Settled+r.results[1].Settled, r.takes, float64(r.n)/float64(r.takes), extra)
}

// TestReconciliation_atScale is the test on one redis-server:
// 10,000 tracked transactions, 30% of them with every callback lost, two
// replicas with a client each, fake time (see reconcileAtScale). It logs
// the figures, the Redis round trips of the reconciliation and the memory
// the due list takes.
func TestReconciliation_atScale(t *testing.T) {
	if testing.Short() {
		t.Skip("at-scale test skipped in -short mode")
	}
	const n = 10_000
	clients := [2]redis.UniversalClient{newClient(t), newClient(t)}
	counters := [2]*commandCounter{{}, {}}
	var memory int64
	admin := newClient(t)
	run := reconcileAtScale(t, n, clients, admin, func(sh *shop) {
		zset, hash := sh.tracker()
		for _, k := range []string{zset, hash} {
			m, err := admin.MemoryUsage(sh.ctx, k, 0).Result() // every element, not a sample
			if err != nil {
				t.Fatalf("MEMORY USAGE %s: %v", k, err)
			}
			memory += m
		}
		for i, c := range counters {
			clients[i].AddHook(c)
		}
	})
	trips := counters[0].n.Load() + counters[1].n.Load()
	run.logf(t, "reconciliation at scale, one redis-server", fmt.Sprintf(
		"\n  Redis round trips of the reconciliation %d (%.2f per transaction)"+
			"\n  the due list before the deadline: %d bytes (MEMORY USAGE), %d per tracked transaction",
		trips, float64(trips)/float64(n), memory, memory/n))
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
		die func(t *testing.T, sh *shop)
	}{
		{"dies right after TakeDue", func(t *testing.T, sh *shop) {
			s := newStore(t, newClient(t), redisstore.Options{Prefix: sh.prefix})
			taken, err := s.TakeDue(sh.ctx, sh.clock.Now(), 100, 5*time.Minute)
			if err != nil || len(taken) != 1 {
				t.Fatalf("TakeDue = %d taken, %v; want the transaction", len(taken), err)
			}
		}},
		{"dies while getStatus is under way", func(t *testing.T, sh *shop) {
			// A Router whose context ends still settles its take (the
			// Router writes Reschedule and Untrack without the
			// cancellation), so the replica dies with its connections: its
			// client closes while getStatus is under way, and nothing it
			// writes afterwards reaches Redis.
			called, dead := make(chan struct{}), make(chan struct{})
			hang := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				close(called)
				<-dead
				return "", errors.New("the replica died")
			})
			rdb := newClient(t)
			dying := sh.replica(t, rdb, hang)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = dying.ReconcileDue(sh.ctx)
			}()
			<-called
			if err := rdb.Close(); err != nil {
				t.Error(err)
			}
			close(dead)
			<-done
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := newShop(t)
			rdb := newClient(t)
			survivor := sh.replica(t, rdb, nil)
			key, err := sh.begin(survivor, "D000000001")
			if err != nil {
				t.Fatal(err)
			}
			if err := sh.play(survivor, cofidistest.Accepted(key).LoseNotifications().CloseBrowser(), 0); err != nil {
				t.Fatal(err)
			}
			sh.clock.Advance(cofidis.DefaultReconcileDeadline)

			tt.die(t, sh)
			handover, held := sh.due(t, rdb, key)
			if !held || !handover.After(sh.clock.Now()) {
				t.Fatalf("held %t, due %s: want the dead replica to hold the transaction until the end of its lease, after %s",
					held, handover, sh.clock.Now())
			}
			t.Logf("lease of the take: %s", handover.Sub(sh.clock.Now()))
			reconcile := func(what string, want cofidis.ReconcileResult) {
				t.Helper()
				res, err := survivor.ReconcileDue(sh.ctx)
				if err != nil || res != want {
					t.Fatalf("%s: ReconcileDue = %+v, %v; want %+v", what, res, err, want)
				}
			}
			reconcile("held by the dead replica", cofidis.ReconcileResult{})
			sh.clock.Advance(handover.Sub(sh.clock.Now()) - time.Millisecond)
			reconcile("a millisecond before the lease ends", cofidis.ReconcileResult{})

			sh.clock.Advance(time.Millisecond)
			reconcile("handed over when the lease ends", cofidis.ReconcileResult{Checked: 1, Delivered: 1})
			evs := sh.rec.Filter(cofidistest.OnChannel(cofidis.ChannelReconciliation))
			if len(evs) != 1 || evs[0].Status != cofidis.StatusToConfirm || !evs[0].Verified {
				t.Errorf("reconciled events %v, want one verified to_confirm", evs)
			}
			if n := sh.tracked(t, rdb); n != 0 {
				t.Errorf("%d transactions left tracked", n)
			}
		})
	}
}

// TestRoundTrips_perReconciledTransaction counts the round trips
// ReconcileDue makes to Redis: per transaction a Peek and an Untrack or
// Reschedule, with the claim and the completion of a status delivered in
// between, and the TakeDue calls, each of as many transactions as the
// replica has free slots (ReconcileOptions.Concurrency, 4 here): for a
// lone transaction one, for a batch between a quarter of it and one each.
func TestRoundTrips_perReconciledTransaction(t *testing.T) {
	rdb := newClient(t, func(o *redis.Options) { o.PoolSize = 1 })
	sh := newShop(t)
	rt := sh.replica(t, rdb, nil)
	counter := &commandCounter{}
	rdb.AddHook(counter)
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
	// reconciles and returns the round trips of ReconcileDue, TakeDue's
	// apart; then it forgets the transactions left tracked.
	round := func(t *testing.T, kinds []kind, want cofidis.ReconcileResult) (perTransaction, takes int64) {
		t.Helper()
		for _, k := range kinds {
			n++
			key, err := sh.begin(rt, fmt.Sprintf("R%09d", n))
			if err != nil {
				t.Fatal(err)
			}
			switch k {
			case settled:
				err = sh.play(rt, cofidistest.Accepted(key), 0)
			case lost:
				err = sh.play(rt, cofidistest.Accepted(key).LoseNotifications().CloseBrowser(), 0)
			case pending:
				sh.ledger.Set(key, cofidis.StatusPending)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		sh.clock.Advance(cofidis.DefaultReconcileDeadline)
		counter.n.Store(0)
		takesBefore := sh.takes()
		res, err := rt.ReconcileDue(sh.ctx)
		if err != nil || res != want {
			t.Fatalf("ReconcileDue = %+v, %v; want %+v", res, err, want)
		}
		trips := counter.n.Load()
		takes = sh.takes()
		takes -= takesBefore
		if err := rdb.Del(sh.ctx, trackerKeys(sh.prefix)...).Err(); err != nil {
			t.Fatal(err)
		}
		return trips - takes, takes
	}
	// Load the scripts (EVALSHA falls back to EVAL once per script).
	round(t, []kind{settled, lost, running, pending}, cofidis.ReconcileResult{Settled: 1, Checked: 3, Delivered: 2, Rescheduled: 2})
	tests := []struct {
		name   string
		kinds  []kind
		result cofidis.ReconcileResult
		want   int64 // round trips but TakeDue's
	}{
		{"settled: Peek, Untrack", []kind{settled}, cofidis.ReconcileResult{Settled: 1}, 2},
		{"lost: Peek, Claim, Complete, Untrack", []kind{lost}, cofidis.ReconcileResult{Checked: 1, Delivered: 1}, 4},
		{"still running: Peek, Reschedule", []kind{running}, cofidis.ReconcileResult{Checked: 1, Rescheduled: 1}, 2},
		{"pending: Peek, Claim, Complete, Reschedule", []kind{pending}, cofidis.ReconcileResult{Checked: 1, Delivered: 1, Rescheduled: 1}, 4},
		{"a batch", []kind{lost, settled, lost, lost, settled, running, lost, settled, lost, settled, settled, lost},
			cofidis.ReconcileResult{Settled: 5, Checked: 7, Delivered: 6, Rescheduled: 1}, 6*4 + 5*2 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, takes := round(t, tt.kinds, tt.result)
			if got != tt.want {
				t.Errorf("%d round trips besides TakeDue, want %d", got, tt.want)
			}
			// A quarter of the transactions (4 free slots), and an empty
			// take when that divides them; at most one each, and the
			// empty one.
			k := int64(len(tt.kinds))
			if lo, hi := k/4+1, k+1; takes < lo || takes > hi || (k == 1 && takes != 1) {
				t.Errorf("%d TakeDue calls for %d transactions, want %d to %d", takes, k, lo, hi)
			}
			t.Logf("%d TakeDue calls for %d transactions", takes, k)
		})
	}
}
