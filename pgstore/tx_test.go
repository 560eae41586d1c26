package pgstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/pgstore"
)

// shop is a merchant's database in a test schema: its orders, an effects
// table with one row per business action run (no unique constraint, so a
// repeated action shows), and the store beside them.
type shop struct {
	pool    *pgxpool.Pool
	store   *pgstore.Store
	orders  string // sanitized table names
	effects string
}

func newShop(t testing.TB, pool *pgxpool.Pool, opts pgstore.Options) *shop {
	t.Helper()
	schema := newSchema(t, pool)
	opts.Schema = schema
	s := &shop{
		pool:    pool,
		store:   newStore(t, pool, opts),
		orders:  pgx.Identifier{schema, "orders"}.Sanitize(),
		effects: pgx.Identifier{schema, "effects"}.Sanitize(),
	}
	_, err := pool.Exec(testContext(t), `
		CREATE TABLE `+s.orders+` (id text PRIMARY KEY, status text NOT NULL);
		CREATE TABLE `+s.effects+` (id bigserial PRIMARY KEY, action_key text NOT NULL)`)
	require.NoError(t, err)
	return s
}

// accept is the merchant's business action for ev, in tx: the order takes
// the event's status and one effect row records the action.
func (s *shop) accept(ctx context.Context, tx pgx.Tx, ev cofidis.Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO `+s.orders+` (id, status) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET status = excluded.status`,
		ev.TransactionKey.MerchantTransactionID, string(ev.Status))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+s.effects+` (action_key) VALUES ($1)`, ev.ActionKey().String())
	return err
}

// effectCount returns how many times the action of ev ran.
func (s *shop) effectCount(t testing.TB, ev cofidis.Event) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(testContext(t), `SELECT count(*) FROM `+s.effects+` WHERE action_key = $1`, ev.ActionKey().String()).Scan(&n))
	return n
}

// orderStatus returns the status of key's order, "" when there is none.
func (s *shop) orderStatus(t testing.TB, key cofidis.TransactionKey) string {
	t.Helper()
	var st string
	err := s.pool.QueryRow(testContext(t), `SELECT status FROM `+s.orders+` WHERE id = $1`, key.MerchantTransactionID).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	require.NoError(t, err)
	return st
}

// outcomes records what the Router reported for each delivery.
type outcomes struct {
	mu   sync.Mutex
	list []cofidis.Outcome
}

func (o *outcomes) hook(_ context.Context, _ cofidis.Event, out cofidis.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, out)
}

func (o *outcomes) last() cofidis.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.list) == 0 {
		return 0
	}
	return o.list[len(o.list)-1]
}

// newRouter returns a Router whose notification callback is fn, with opts
// (the store among them: the caller chooses).
func newRouter(t testing.TB, fn cofidis.NotificationFunc, out *outcomes, opts ...cofidis.Option) (*cofidis.Router, cofidis.URLs) {
	t.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	require.NoError(t, err)
	opts = append(opts, cofidis.WithInsecureSkipVerify(), cofidis.WithDeliveryHook(out.hook), cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	rt, err := cofidis.NewRouter(urls,
		func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
		fn, opts...)
	require.NoError(t, err)
	return rt, urls
}

// deliver posts a to_confirm notification of key and returns the answer's
// status code.
func deliver(rt http.Handler, urls cofidis.URLs, key cofidis.TransactionKey) int {
	req := cofidistest.Request{Endpoint: cofidis.EndpointNotificationSuccess, Key: key, Status: cofidis.StatusToConfirm}.HTTPRequest(urls)
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, req)
	return w.Code
}

// toConfirm is the event deliver posts for key.
func toConfirm(key cofidis.TransactionKey) cofidis.Event {
	return cofidis.Event{Callback: cofidis.Callback{TransactionKey: key, Status: cofidis.StatusToConfirm}}
}

// TestCompleteTx_throughTheRouter runs the merchant's transaction in the
// notification callback, ends it in each way, and delivers the decision
// again.
func TestCompleteTx_throughTheRouter(t *testing.T) {
	sh := newShop(t, newPool(t), pgstore.Options{})
	errDisk := errors.New("disk full")
	tests := []struct {
		name string
		// end ends the merchant's transaction after the order update and
		// CompleteTx, and returns the callback's result.
		end         func(ctx context.Context, tx pgx.Tx) error
		firstCode   int
		firstOut    cofidis.Outcome
		secondCode  int
		secondOut   cofidis.Outcome
		secondCalls bool // the second delivery reaches the callback
	}{
		{
			name:      "commit: done, the next delivery is a duplicate",
			end:       func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
			firstCode: http.StatusOK, firstOut: cofidis.OutcomeProcessed,
			secondCode: http.StatusOK, secondOut: cofidis.OutcomeDuplicate,
		},
		{
			name: "rollback: released, the next delivery runs the action",
			end: func(ctx context.Context, tx pgx.Tx) error {
				_ = tx.Rollback(ctx)
				return errDisk
			},
			firstCode: http.StatusInternalServerError, firstOut: cofidis.OutcomeFailed,
			secondCode: http.StatusOK, secondOut: cofidis.OutcomeProcessed, secondCalls: true,
		},
		{
			name: "commit, then the callback fails: done all the same",
			end: func(ctx context.Context, tx pgx.Tx) error {
				if err := tx.Commit(ctx); err != nil {
					return err
				}
				return errors.New("the answer could not be written")
			},
			firstCode: http.StatusInternalServerError, firstOut: cofidis.OutcomeFailed,
			secondCode: http.StatusOK, secondOut: cofidis.OutcomeDuplicate,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			var out outcomes
			rt, urls := newRouter(t, func(ctx context.Context, ev cofidis.Event) error {
				first := calls.Add(1) == 1
				claim, ok := cofidis.ClaimFromContext(ctx)
				if !ok {
					return pgstore.ErrNoClaim
				}
				tx, err := sh.pool.Begin(ctx)
				if err != nil {
					return err
				}
				defer func() { _ = tx.Rollback(ctx) }()
				if err := sh.accept(ctx, tx, ev); err != nil {
					return err
				}
				if err := sh.store.CompleteTx(ctx, tx, claim); err != nil {
					return err
				}
				if first {
					return tt.end(ctx, tx)
				}
				return tx.Commit(ctx)
			}, &out, cofidis.WithIdempotency(sh.store))
			key := cofidistest.NewKey(cofidistest.KeyOptions{})

			assert.Equal(t, tt.firstCode, deliver(rt, urls, key), "first delivery")
			assert.Equal(t, tt.firstOut, out.last(), "first delivery")
			assert.Equal(t, tt.secondCode, deliver(rt, urls, key), "second delivery")
			assert.Equal(t, tt.secondOut, out.last(), "second delivery")
			wantCalls := int32(1)
			if tt.secondCalls {
				wantCalls = 2
			}
			assert.Equal(t, wantCalls, calls.Load(), "callback calls")
			assert.Equal(t, 1, sh.effectCount(t, toConfirm(key)), "business actions")
			assert.Equal(t, string(cofidis.StatusToConfirm), sh.orderStatus(t, key))
		})
	}
}

// TestCompleteTx_afterATakeover has a callback run on past its lease,
// ignoring its context, while another delivery takes the action over and
// completes it: its CompleteTx fails with ErrLeaseLost and its writes roll
// back.
func TestCompleteTx_afterATakeover(t *testing.T) {
	sh := newShop(t, newPool(t), pgstore.Options{})
	const lease = 300 * time.Millisecond
	var (
		calls    atomic.Int32
		started  = make(chan struct{})
		proceed  = make(chan struct{})
		slowErr  = make(chan error, 1)
		out      outcomes
		firstKey = cofidistest.NewKey(cofidistest.KeyOptions{})
	)
	rt, urls := newRouter(t, func(ctx context.Context, ev cofidis.Event) error {
		if calls.Add(1) > 1 { // the delivery that takes over
			return sh.store.RunInTx(ctx, func(tx pgx.Tx) error { return sh.accept(ctx, tx, ev) })
		}
		claim, _ := cofidis.ClaimFromContext(ctx)
		close(started)
		<-proceed
		// A callback that ignores its context's end, as a stalled one would.
		ctx = context.WithoutCancel(ctx)
		tx, err := sh.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if err := sh.accept(ctx, tx, ev); err != nil {
			return err
		}
		err = sh.store.CompleteTx(ctx, tx, claim)
		slowErr <- err
		if err != nil {
			return err
		}
		return tx.Commit(ctx)
	}, &out, cofidis.WithIdempotency(sh.store), cofidis.WithLease(lease))

	firstCode := make(chan int, 1)
	go func() { firstCode <- deliver(rt, urls, firstKey) }()
	<-started
	ctx := testContext(t)
	k := toConfirm(firstKey).ActionKey()
	require.Eventually(t, func() bool {
		res, err := sh.store.Peek(ctx, k)
		return err == nil && res.State == cofidis.Unclaimed
	}, 10*time.Second, 5*time.Millisecond, "the first delivery's lease never ended")
	assert.Equal(t, http.StatusOK, deliver(rt, urls, firstKey), "the delivery that takes over")
	assert.Equal(t, cofidis.OutcomeProcessed, out.last())
	close(proceed)

	require.ErrorIs(t, <-slowErr, cofidis.ErrLeaseLost, "CompleteTx of the stalled callback")
	assert.Equal(t, http.StatusInternalServerError, <-firstCode, "the stalled delivery")
	assert.Equal(t, 1, sh.effectCount(t, toConfirm(firstKey)), "business actions: the stalled one rolled back")
}

// TestCompleteTx_followsComplete checks CompleteTx against Store.Complete's
// contract, each case in a transaction that commits.
func TestCompleteTx_followsComplete(t *testing.T) {
	pool := newPool(t)
	s := newStore(t, pool, pgstore.Options{})
	ctx := testContext(t)
	claim := func(t *testing.T, k cofidis.ActionKey, lease time.Duration) string {
		res, err := s.Claim(ctx, k, lease)
		require.NoError(t, err)
		require.Equal(t, cofidis.Claimed, res.State)
		return res.Token
	}
	tests := []struct {
		name string
		// setup records what the case needs and returns the token to
		// complete with.
		setup func(t *testing.T, k cofidis.ActionKey) string
		want  error
		after cofidis.ClaimState // what a Claim finds once the transaction ended
	}{
		{"the token holds the claim", func(t *testing.T, k cofidis.ActionKey) string {
			return claim(t, k, time.Minute)
		}, nil, cofidis.Done},
		{"done already with the same token", func(t *testing.T, k cofidis.ActionKey) string {
			tok := claim(t, k, time.Minute)
			require.NoError(t, s.Complete(ctx, k, tok))
			return tok
		}, nil, cofidis.Done},
		{"nothing recorded", func(*testing.T, cofidis.ActionKey) string { return "a-token" }, nil, cofidis.Done},
		{"lease ended, nobody claimed since", func(t *testing.T, k cofidis.ActionKey) string {
			tok := claim(t, k, time.Millisecond)
			require.Eventually(t, func() bool {
				res, err := s.Peek(ctx, k)
				return err == nil && res.State == cofidis.Unclaimed
			}, 5*time.Second, time.Millisecond)
			return tok
		}, nil, cofidis.Done},
		{"another token holds the claim", func(t *testing.T, k cofidis.ActionKey) string {
			claim(t, k, time.Minute)
			return "not-the-token"
		}, cofidis.ErrLeaseLost, cofidis.InProgress},
		{"another token completed it", func(t *testing.T, k cofidis.ActionKey) string {
			require.NoError(t, s.Complete(ctx, k, claim(t, k, time.Minute)))
			return "not-the-token"
		}, cofidis.ErrLeaseLost, cofidis.Done},
		{"no claim: the Router has no WithIdempotency", func(*testing.T, cofidis.ActionKey) string { return "" }, pgstore.ErrNoClaim, cofidis.Claimed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := actionKey(cofidis.StatusToConfirm)
			tok := tt.setup(t, k)
			tx, err := pool.Begin(ctx)
			require.NoError(t, err)
			err = s.CompleteTx(ctx, tx, cofidis.Claim{Key: k, Token: tok})
			if tt.want == nil {
				require.NoError(t, err)
				require.NoError(t, tx.Commit(ctx))
			} else {
				require.ErrorIs(t, err, tt.want)
				require.NoError(t, tx.Rollback(ctx))
			}
			res, err := s.Claim(ctx, k, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, tt.after, res.State)
			if tt.want == nil {
				res, err := s.Peek(ctx, k)
				require.NoError(t, err)
				assert.Equal(t, cofidis.StatusToConfirm, res.Furthest, "furthest status moved")
			}
		})
	}
}

// TestCompleteTx_holdsOffTakeovers checks that once CompleteTx ran, a
// delivery whose claim would take the action over (the lease ended) waits
// for the merchant's transaction: it finds the action done after a commit,
// and takes it over after a rollback.
func TestCompleteTx_holdsOffTakeovers(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	s := newStore(t, pool, pgstore.Options{Schema: schema})
	actions := pgx.Identifier{schema, pgstore.DefaultPrefix + "actions"}.Sanitize()
	ctx := testContext(t)
	tests := []struct {
		name string
		end  func(pgx.Tx) error
		want cofidis.ClaimState
	}{
		{"commit", func(tx pgx.Tx) error { return tx.Commit(ctx) }, cofidis.Done},
		{"rollback", func(tx pgx.Tx) error { return tx.Rollback(ctx) }, cofidis.Claimed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := actionKey(cofidis.StatusToConfirm)
			res, err := s.Claim(ctx, k, 200*time.Millisecond)
			require.NoError(t, err)
			tx, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			require.NoError(t, s.CompleteTx(ctx, tx, cofidis.Claim{Key: k, Token: res.Token}))
			require.Eventually(t, func() bool {
				var ended bool
				err := pool.QueryRow(ctx, `SELECT lease_until <= now() FROM `+actions+` WHERE transaction_id = $1`, k.Transaction).Scan(&ended)
				return err == nil && ended
			}, 10*time.Second, 5*time.Millisecond, "the lease never ended")

			type answer struct {
				res cofidis.ClaimResult
				err error
			}
			other := make(chan answer, 1)
			go func() {
				res, err := s.Claim(ctx, k, time.Minute)
				other <- answer{res, err}
			}()
			require.Eventually(t, func() bool {
				var waiting int
				err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 IN query) > 0`, actions).Scan(&waiting)
				return err == nil && waiting == 1
			}, 10*time.Second, 5*time.Millisecond, "the other claim does not wait for the transaction")
			select {
			case a := <-other:
				t.Fatalf("the other claim answered %v, %v while the transaction was open", a.res.State, a.err)
			default:
			}
			require.NoError(t, tt.end(tx))
			a := <-other
			require.NoError(t, a.err)
			assert.Equal(t, tt.want, a.res.State)
		})
	}
}

// TestRunInTx runs the helper in the notification callback, with each
// result of the merchant's function.
func TestRunInTx(t *testing.T) {
	sh := newShop(t, newPool(t), pgstore.Options{})
	tests := []struct {
		name string
		// fn is the merchant's work on the first delivery, after the
		// order update; the second delivery's succeeds.
		fn       func() error
		code     int
		out      cofidis.Outcome
		afterOut cofidis.Outcome // the second delivery's
		effects  int
	}{
		{"nil: committed", func() error { return nil }, http.StatusOK, cofidis.OutcomeProcessed, cofidis.OutcomeDuplicate, 1},
		{"an error: rolled back, retried", func() error { return errors.New("stock service down") },
			http.StatusInternalServerError, cofidis.OutcomeFailed, cofidis.OutcomeProcessed, 1},
		{"a panic: rolled back, retried", func() error { panic("nil map") },
			http.StatusInternalServerError, cofidis.OutcomeFailed, cofidis.OutcomeProcessed, 1},
		{"a permanent error: rolled back, never retried", func() error { return cofidis.Permanent(errors.New("no such order")) },
			http.StatusOK, cofidis.OutcomePermanent, cofidis.OutcomeDuplicate, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			var out outcomes
			rt, urls := newRouter(t, func(ctx context.Context, ev cofidis.Event) error {
				first := calls.Add(1) == 1
				return sh.store.RunInTx(ctx, func(tx pgx.Tx) error {
					if err := sh.accept(ctx, tx, ev); err != nil {
						return err
					}
					if first {
						return tt.fn()
					}
					return nil
				})
			}, &out, cofidis.WithIdempotency(sh.store))
			key := cofidistest.NewKey(cofidistest.KeyOptions{})
			assert.Equal(t, tt.code, deliver(rt, urls, key))
			assert.Equal(t, tt.out, out.last())
			assert.Equal(t, http.StatusOK, deliver(rt, urls, key), "second delivery")
			assert.Equal(t, tt.afterOut, out.last(), "second delivery")
			assert.Equal(t, tt.effects, sh.effectCount(t, toConfirm(key)), "business actions")
		})
	}

	t.Run("without WithIdempotency: ErrNoClaim, nothing runs", func(t *testing.T) {
		var ran atomic.Bool
		var cbErr atomic.Value
		var out outcomes
		rt, urls := newRouter(t, func(ctx context.Context, ev cofidis.Event) error {
			err := sh.store.RunInTx(ctx, func(pgx.Tx) error { ran.Store(true); return nil })
			cbErr.Store(err)
			return err
		}, &out)
		assert.Equal(t, http.StatusInternalServerError, deliver(rt, urls, cofidistest.NewKey(cofidistest.KeyOptions{})))
		assert.ErrorIs(t, cbErr.Load().(error), pgstore.ErrNoClaim)
		assert.False(t, ran.Load(), "the function ran without a claim")
	})
	t.Run("outside a callback: ErrNoClaim", func(t *testing.T) {
		err := sh.store.RunInTx(testContext(t), func(pgx.Tx) error { return nil })
		assert.ErrorIs(t, err, pgstore.ErrNoClaim)
	})
}

// TestRunInTx_overHTTP serves the Router on a loopback listener, as a
// replica does, to check that the claim reaches the callback through a
// real request.
func TestRunInTx_overHTTP(t *testing.T) {
	sh := newShop(t, newPool(t), pgstore.Options{})
	var out outcomes
	rt, urls := newRouter(t, func(ctx context.Context, ev cofidis.Event) error {
		return sh.store.RunInTx(ctx, func(tx pgx.Tx) error { return sh.accept(ctx, tx, ev) })
	}, &out, cofidis.WithIdempotency(sh.store))
	srv := httptest.NewServer(rt)
	defer srv.Close()
	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	r := cofidistest.Request{Endpoint: cofidis.EndpointNotificationSuccess, Key: key, Status: cofidis.StatusToConfirm}
	target := srv.URL + strings.TrimPrefix(r.URL(urls), "https://shop.example")
	for range 3 {
		req, err := r.NewClientRequest(testContext(t), target)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, 1, sh.effectCount(t, toConfirm(key)))
}
