package pgstore_test

import (
	"crypto/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/pgstore"
)

// trackedAt returns a transaction no other test uses, sent at since and
// due at due.
func trackedAt(since, due time.Time) cofidis.Tracked {
	return cofidis.Tracked{
		Key: cofidis.TransactionKey{
			MerchantCountry: "fr", ProviderID: "providrid", ProviderTransactionID: cofidis.NullValue(),
			MerchantID: "020280098", MerchantTransactionID: rand.Text()[:10], MerchantTransactionDate: "20260227",
		},
		Since: since,
		Due:   due,
	}
}

// trackedTable returns the sanitized name of the store's tracked table in
// schema, with the default prefix.
func trackedTable(schema string) string {
	return pgx.Identifier{schema, pgstore.DefaultPrefix + "tracked"}.Sanitize()
}

// TestTracker_times checks that the Tracker keeps the caller's times to
// the microsecond, the database's resolution, whatever their location or
// monotonic reading: a transaction is due at exactly its due time, and
// comes back with its times truncated, never rounded up. It runs with
// pgx's default query mode, which sends times in binary, and with the
// simple protocol (as behind PgBouncer in transaction mode), which sends
// them as text, where PostgreSQL would round digits past the microsecond.
func TestTracker_times(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			pool := newPool(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = mode })
			testTrackerTimes(t, newStore(t, pool, pgstore.Options{}))
		})
	}
}

func testTrackerTimes(t *testing.T, s *pgstore.Store) {
	ctx := testContext(t)
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	tests := []struct {
		name       string
		since, due time.Time
	}{
		{"whole seconds", time.Date(2026, 2, 27, 10, 0, 0, 0, time.UTC), time.Date(2026, 2, 27, 10, 50, 0, 0, time.UTC)},
		{"nanoseconds, below half a microsecond", time.Date(2026, 2, 27, 10, 0, 0, 123_456_001, time.UTC), time.Date(2026, 2, 27, 10, 50, 0, 1, time.UTC)},
		{"nanoseconds, above half a microsecond", time.Date(2026, 2, 27, 10, 0, 0, 999_999_999, time.UTC), time.Date(2026, 2, 27, 10, 50, 0, 999, time.UTC)},
		{"another location", time.Date(2026, 3, 29, 1, 59, 59, 999_999_500, paris), time.Date(2026, 3, 29, 3, 0, 0, 500, paris)},
		{"a monotonic reading", time.Now(), time.Now().Add(time.Hour)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := trackedAt(tt.since, tt.due)
			require.NoError(t, s.Track(ctx, x))
			got, err := s.TakeDue(ctx, tt.due.Truncate(time.Microsecond).Add(-time.Microsecond), 10, time.Minute)
			require.NoError(t, err)
			assert.Empty(t, got, "a microsecond before its due time")
			got, err = s.TakeDue(ctx, tt.due, 10, time.Minute)
			require.NoError(t, err)
			require.Len(t, got, 1, "at its due time")
			assert.Equal(t, x.Key, got[0].Key)
			assert.True(t, got[0].Since.Equal(tt.since.Truncate(time.Microsecond)), "since %s, want %s", got[0].Since, tt.since)
			assert.True(t, got[0].Due.Equal(tt.due.Truncate(time.Microsecond)), "due %s, want %s", got[0].Due, tt.due)
			require.NoError(t, s.Untrack(ctx, got[0]))
		})
	}
}

// TestTracker_withoutARoundTrip covers the calls the store answers without
// asking the database.
func TestTracker_withoutARoundTrip(t *testing.T) {
	pool, err := pgxpool.New(testContext(t), "postgres://127.0.0.1:1/never") // never contacted
	require.NoError(t, err)
	defer pool.Close()
	s, err := pgstore.New(pool, pgstore.Options{})
	require.NoError(t, err)
	ctx := testContext(t)
	untaken := trackedAt(time.Now(), time.Now())
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"TakeDue of none", func() error {
			got, err := s.TakeDue(ctx, time.Now(), 0, time.Minute)
			assert.Empty(t, got)
			return err
		}, nil},
		{"Reschedule without a token", func() error { return s.Reschedule(ctx, untaken) }, cofidis.ErrLeaseLost},
		{"Untrack without a token", func() error { return s.Untrack(ctx, untaken) }, cofidis.ErrLeaseLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

// TestTakeDue_skipsRowsHeldElsewhere holds a due row in an open
// transaction, as another replica's TakeDue or Reschedule would, and checks
// that TakeDue takes the others without waiting for it, then takes it once
// it is free.
func TestTakeDue_skipsRowsHeldElsewhere(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	s := newStore(t, pool, pgstore.Options{Schema: schema})
	ctx := testContext(t)
	now := time.Date(2026, 2, 27, 11, 0, 0, 0, time.UTC)
	var xs []cofidis.Tracked
	for i := range 3 {
		x := trackedAt(now.Add(-time.Hour), now.Add(time.Duration(i-3)*time.Minute))
		require.NoError(t, s.Track(ctx, x))
		xs = append(xs, x)
	}
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT FROM `+trackedTable(schema)+` WHERE transaction_id = $1 FOR UPDATE`, xs[0].Key.ID().String())
	require.NoError(t, err)

	got, err := s.TakeDue(ctx, now, 10, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, []cofidis.TransactionKey{xs[1].Key, xs[2].Key}, keys(got), "the rows nobody holds, earliest first")
	require.NoError(t, tx.Rollback(ctx))
	got, err = s.TakeDue(ctx, now, 10, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, []cofidis.TransactionKey{xs[0].Key}, keys(got), "the held row, once free")
}

func keys(ts []cofidis.Tracked) []cofidis.TransactionKey {
	out := make([]cofidis.TransactionKey, len(ts))
	for i, x := range ts {
		out[i] = x.Key
	}
	return out
}

// TestTakeDue_acrossReplicas has replicas (one pool each) take the due
// transactions of one store at once, in small batches, and checks that
// each is taken exactly once, under a token of its own, each batch
// earliest due first.
func TestTakeDue_acrossReplicas(t *testing.T) {
	const (
		replicas = 4
		takers   = 4 // per replica
		n        = 1000
		limit    = 7
	)
	first := newPool(t)
	schema := newSchema(t, first)
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		pool := first
		if i > 0 {
			pool = newPool(t)
		}
		stores[i] = newStore(t, pool, pgstore.Options{Schema: schema})
	}
	ctx := testContext(t)
	now := time.Date(2026, 2, 27, 11, 0, 0, 0, time.UTC)
	_, err := first.Exec(ctx, `INSERT INTO `+trackedTable(schema)+` (transaction_id, transaction_key, since, due, attempts)
		SELECT '020280098/T' || i || '/20260227',
			format('{"merchantCountry":"fr","providerId":"providrid","merchantId":"020280098","merchantTransactionId":"T%s","merchantTransactionDate":"20260227"}', i),
			$1::timestamptz, $1::timestamptz + (i % 97) * interval '1 second', 0
		FROM generate_series(1, $2::integer) i`, now.Add(-time.Hour), n)
	require.NoError(t, err)

	var (
		mu     sync.Mutex
		taken  = map[string]int{}
		tokens = map[string]bool{}
		wg     sync.WaitGroup
	)
	for i := range replicas * takers {
		wg.Go(func() {
			for {
				got, err := stores[i%replicas].TakeDue(ctx, now.Add(time.Hour), limit, time.Hour)
				if !assert.NoError(t, err) || len(got) == 0 {
					return
				}
				assert.True(t, slices.IsSortedFunc(got, func(a, b cofidis.Tracked) int { return a.Due.Compare(b.Due) }), "a batch earliest due first")
				mu.Lock()
				for _, g := range got {
					taken[g.Key.MerchantTransactionID]++
					tokens[g.Token] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var left int
	require.NoError(t, first.QueryRow(ctx, `SELECT count(*) FROM `+trackedTable(schema)+` WHERE token IS NULL`).Scan(&left))
	assert.Zero(t, left, "rows never taken")
	assert.Len(t, taken, n, "rows taken")
	for id, times := range taken {
		assert.Equal(t, 1, times, "%s taken %d times", id, times)
	}
	assert.Len(t, tokens, n, "distinct tokens")
}

// TestMigrate_addsTheTrackedTable runs Migrate on a database that a version
// without the Tracker created: it gains the tracked table, and keeps its
// records.
func TestMigrate_addsTheTrackedTable(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	s := newStore(t, pool, pgstore.Options{Schema: schema})
	ctx := testContext(t)
	_, err := pool.Exec(ctx, `DROP TABLE `+trackedTable(schema)) // as the earlier version left it
	require.NoError(t, err)
	k := actionKey(cofidis.StatusToConfirm)
	res, err := s.Claim(ctx, k, time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Complete(ctx, k, res.Token))
	x := trackedAt(time.Now(), time.Now())
	require.Error(t, s.Track(ctx, x), "Track before the migration")

	require.NoError(t, s.Migrate(ctx))
	require.NoError(t, s.Track(ctx, x))
	got, err := s.TakeDue(ctx, x.Due, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []cofidis.TransactionKey{x.Key}, keys(got))
	res, err = s.Peek(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, cofidis.Done, res.State, "the records made before the migration")
}

// TestTakeDue_aKeyEditedByHand has TakeDue fail loudly, naming the
// transaction, when a tracked row's key no longer parses: the Router logs
// the failed pass at every interval until the row is mended or deleted.
func TestTakeDue_aKeyEditedByHand(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	s := newStore(t, pool, pgstore.Options{Schema: schema})
	ctx := testContext(t)
	x := trackedAt(time.Now(), time.Now())
	require.NoError(t, s.Track(ctx, x))
	_, err := pool.Exec(ctx, `UPDATE `+trackedTable(schema)+` SET transaction_key = '{"merchantId": 42}'`)
	require.NoError(t, err)
	_, err = s.TakeDue(ctx, x.Due, 10, time.Minute)
	require.ErrorIs(t, err, cofidis.ErrInvalidField)
	assert.Contains(t, err.Error(), x.Key.ID().String())
}
