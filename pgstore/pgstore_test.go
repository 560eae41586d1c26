package pgstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
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
	"github.com/cofidis-go/cofidis/pgstore"
	"github.com/cofidis-go/cofidis/storetest"
)

// databaseURL is the database the tests use: PGSTORE_URL. Without it the
// tests that need one are skipped, except in CI (CI set), where they fail:
// a green CI must have run them.
func databaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("PGSTORE_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PGSTORE_URL is not set in CI: the pgstore tests need a PostgreSQL database (see .ci/steps/75-postgres.sh)")
		}
		t.Skip("no database: set PGSTORE_URL (postgres://user@host:port/db) to run the pgstore tests")
	}
	return u
}

// newPool connects to the test database; a database named but unreachable
// fails the test.
func newPool(t testing.TB, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(databaseURL(t))
	require.NoError(t, err, "PGSTORE_URL")
	for _, f := range configure {
		f(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pool.Ping(ctx), "no database at PGSTORE_URL")
	return pool
}

// newSchema returns a schema name no other test uses, dropped with
// everything in it when the test ends.
func newSchema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	name := "pgstore_test_" + strings.ToLower(rand.Text())
	dropAtEnd(t, pool, name)
	return name
}

// dropAtEnd drops schema with everything in it when the test ends.
func dropAtEnd(t testing.TB, pool *pgxpool.Pool, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		assert.NoError(t, err, "dropping the test schema")
	})
}

// newStore returns a migrated store in a schema of its own, unless opts
// names one.
func newStore(t testing.TB, pool *pgxpool.Pool, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	if opts.Schema == "" {
		opts.Schema = newSchema(t, pool)
	}
	s, err := pgstore.New(pool, opts)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(testContext(t)))
	return s
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// actionKey returns a key of a transaction no other test uses.
func actionKey(st cofidis.Status) cofidis.ActionKey {
	return cofidis.ActionKey{Transaction: "020280098/" + rand.Text() + "/20260227", Action: string(st), Status: st, Rank: st.Rank()}
}

// TestContract runs the contract suite, the Tracker's included, on a store
// of its own per test, in a schema of its own: the suite asks for that,
// since TakeDue returns whatever is due in the store.
func TestContract(t *testing.T) {
	pool := newPool(t)
	storetest.Run(t, func(t *testing.T) cofidis.Store { return newStore(t, pool, pgstore.Options{}) })
}

func TestNew_rejectsBadArguments(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never") // never contacted
	require.NoError(t, err)
	defer pool.Close()
	tests := []struct {
		name    string
		pool    *pgxpool.Pool
		opts    pgstore.Options
		mention string // what the error names
	}{
		{"nil pool", nil, pgstore.Options{}, "pool"},
		{"negative retention", pool, pgstore.Options{Retention: -time.Hour}, "Retention"},
		{"sub-millisecond retention", pool, pgstore.Options{Retention: time.Microsecond}, "Retention"},
		{"NUL in the schema: Sanitize would drop it", pool, pgstore.Options{Schema: "shop\x00"}, "NUL"},
		{"NUL in the prefix", pool, pgstore.Options{Prefix: "a\x00b_"}, "NUL"},
		{"invalid UTF-8 in the prefix", pool, pgstore.Options{Prefix: "caf\xe9_"}, "UTF-8"},
		{"schema over 63 bytes: PostgreSQL would truncate it", pool, pgstore.Options{Schema: strings.Repeat("s", 64)}, "63 bytes"},
		{"prefix leaving index names over 63 bytes", pool, pgstore.Options{Prefix: strings.Repeat("p", 41)}, "40 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pgstore.New(tt.pool, tt.opts)
			require.ErrorIs(t, err, cofidis.ErrInvalidOption)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.mention)
		})
	}
}

// TestNames_areQuotedVerbatim creates the tables under names that would
// inject SQL, or change meaning, if they were not quoted, and checks that
// the store works under them and that they are the only tables created.
func TestNames_areQuotedVerbatim(t *testing.T) {
	pool := newPool(t)
	tests := []struct {
		name   string
		schema string // suffix of a fresh schema name
		prefix string
	}{
		{"the defaults", "", ""},
		{"a statement in the prefix", "", `x"; DROP TABLE cofidis_actions; --`},
		{"a quote and a dot", `"."`, `a.b"_`},
		{"upper case kept", "Shop", "Cofidis_"},
		{"the store's own placeholders", "{actions}", "{retention}{expired}_"},
		{"spaces and non-ASCII", " bestellungen ü", "zahlungen ü "},
		{"prefix at the length limit", "", strings.Repeat("p", 40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			schema := newSchema(t, pool) + tt.schema
			dropAtEnd(t, pool, schema)
			s := newStore(t, pool, pgstore.Options{Schema: schema, Prefix: tt.prefix})
			require.NoError(t, s.Migrate(ctx), "a second Migrate")
			k := actionKey(cofidis.StatusToConfirm)
			res, err := s.Claim(ctx, k, time.Minute)
			require.NoError(t, err)
			require.NoError(t, s.Complete(ctx, k, res.Token))
			x := trackedAt(time.Now(), time.Now())
			require.NoError(t, s.Track(ctx, x))
			taken, err := s.TakeDue(ctx, x.Due, 10, time.Minute)
			require.NoError(t, err)
			require.Len(t, taken, 1)
			require.NoError(t, s.Untrack(ctx, taken[0]))

			prefix := tt.prefix
			if prefix == "" {
				prefix = pgstore.DefaultPrefix
			}
			rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, schema)
			require.NoError(t, err)
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			assert.Equal(t, []string{prefix + "actions", prefix + "tracked", prefix + "transactions"}, tables)
		})
	}
}

func TestMigrate_concurrentAndRepeated(t *testing.T) {
	pool := newPool(t)
	s, err := pgstore.New(pool, pgstore.Options{Schema: newSchema(t, pool)})
	require.NoError(t, err)
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Migrate(ctx) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...), "replicas migrating at once")
	require.NoError(t, s.Migrate(ctx), "migrating an up-to-date schema")
	_, err = s.Claim(ctx, actionKey(cofidis.StatusToConfirm), time.Minute)
	require.NoError(t, err)
}

// TestMigrate_roleWithRightsOnItsSchemaOnly: an application role with
// USAGE and CREATE on an existing schema, and no CREATE on the database,
// migrates into it, as every replica does at start, and the store works.
func TestMigrate_roleWithRightsOnItsSchemaOnly(t *testing.T) {
	admin := newPool(t)
	ctx := testContext(t)
	schema := newSchema(t, admin)
	role := pgx.Identifier{"pgstore_app_" + strings.ToLower(rand.Text()[:10])}.Sanitize()
	sch := pgx.Identifier{schema}.Sanitize()
	_, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN; CREATE SCHEMA "+sch+"; GRANT USAGE, CREATE ON SCHEMA "+sch+" TO "+role)
	require.NoError(t, err)
	t.Cleanup(func() { // before the schema is dropped: the role's tables go with it
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := admin.Exec(ctx, "DROP OWNED BY "+role+"; DROP ROLE "+role)
		assert.NoError(t, err, "dropping the test role")
	})
	app := newPool(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.User = strings.Trim(role, `"`) })
	s, err := pgstore.New(app, pgstore.Options{Schema: schema})
	require.NoError(t, err)

	require.NoError(t, s.Migrate(ctx), "first migration")
	require.NoError(t, s.Migrate(ctx), "repeated migration")
	k := actionKey(cofidis.StatusToConfirm)
	res, err := s.Claim(ctx, k, time.Minute)
	require.NoError(t, err)
	require.Equal(t, cofidis.Claimed, res.State)
	require.NoError(t, s.Complete(ctx, k, res.Token))
}

func TestMigrate_withoutTablesIsAnError(t *testing.T) {
	pool := newPool(t)
	s, err := pgstore.New(pool, pgstore.Options{Schema: newSchema(t, pool)})
	require.NoError(t, err)
	_, err = s.Claim(testContext(t), actionKey(cofidis.StatusToConfirm), time.Minute)
	require.Error(t, err, "Claim before Migrate")
	assert.Contains(t, err.Error(), "pgstore: claim")
}

// TestDDL_isTheReadmes keeps the README's schema the one the store creates.
func TestDDL_isTheReadmes(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never") // never contacted
	require.NoError(t, err)
	defer pool.Close()
	s, err := pgstore.New(pool, pgstore.Options{})
	require.NoError(t, err)
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	block := regexp.MustCompile("(?s)<!-- ddl -->\n```sql\n(.*?)```").FindSubmatch(readme)
	require.NotNil(t, block, "README.md: no ```sql block after <!-- ddl -->")
	assert.Equal(t, s.DDL(), string(block[1]), "README.md's DDL differs from Store.DDL()")
}

// TestExpiredRecords_countAsAbsent ages records in the database, as the
// database's clock would, and checks that the answers ignore them before
// Purge deletes them.
func TestExpiredRecords_countAsAbsent(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	const retention = time.Hour
	s := newStore(t, pool, pgstore.Options{Schema: schema, Retention: retention})
	actions := pgx.Identifier{schema, pgstore.DefaultPrefix + "actions"}.Sanitize()
	transactions := pgx.Identifier{schema, pgstore.DefaultPrefix + "transactions"}.Sanitize()
	ctx := testContext(t)
	// age moves every record of k's transaction back by d.
	age := func(t *testing.T, k cofidis.ActionKey, d time.Duration) {
		for _, table := range []string{actions, transactions} {
			_, err := pool.Exec(ctx, `UPDATE `+table+` SET written_at = written_at - $2::bigint * interval '1 microsecond' WHERE transaction_id = $1`,
				k.Transaction, d.Microseconds())
			require.NoError(t, err)
		}
	}
	claim := func(t *testing.T, k cofidis.ActionKey) string {
		res, err := s.Claim(ctx, k, time.Minute)
		require.NoError(t, err)
		require.Equal(t, cofidis.Claimed, res.State)
		return res.Token
	}
	done := func(t *testing.T, k cofidis.ActionKey) { require.NoError(t, s.Complete(ctx, k, claim(t, k))) }

	tests := []struct {
		name      string
		by        time.Duration // how far back the records are moved
		setup     func(t *testing.T, k cofidis.ActionKey)
		peek      cofidis.ClaimState
		claim     cofidis.ClaimState
		furthest  cofidis.Status
		otherDone error // Complete with another token, after the Claim
	}{
		{"done, within the retention", retention - time.Minute, done, cofidis.Done, cofidis.Done, cofidis.StatusToConfirm, cofidis.ErrLeaseLost},
		{"done, past the retention", retention, done, cofidis.Unclaimed, cofidis.Claimed, "", cofidis.ErrLeaseLost},
		{"held, past the retention, lease still running", retention + time.Minute, func(t *testing.T, k cofidis.ActionKey) {
			_, err := s.Claim(ctx, k, 10*retention)
			require.NoError(t, err)
		}, cofidis.Unclaimed, cofidis.Claimed, "", cofidis.ErrLeaseLost},
		{"held, lease ended by the database's clock", 0, func(t *testing.T, k cofidis.ActionKey) {
			claim(t, k)
			_, err := pool.Exec(ctx, `UPDATE `+actions+` SET lease_until = now() - interval '1 second' WHERE transaction_id = $1`, k.Transaction)
			require.NoError(t, err)
		}, cofidis.Unclaimed, cofidis.Claimed, "", cofidis.ErrLeaseLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := actionKey(cofidis.StatusToConfirm)
			tt.setup(t, k)
			age(t, k, tt.by)
			res, err := s.Peek(ctx, k)
			require.NoError(t, err)
			assert.Equal(t, tt.peek, res.State, "Peek")
			assert.Equal(t, tt.furthest, res.Furthest, "Peek's furthest status")
			res, err = s.Claim(ctx, k, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, tt.claim, res.State, "Claim")
			assert.Equal(t, tt.furthest, res.Furthest, "Claim's furthest status")
			assert.ErrorIs(t, s.Complete(ctx, k, "another-token"), tt.otherDone)
		})
	}

	t.Run("an expired furthest status is replaced, not compared", func(t *testing.T) {
		k := actionKey(cofidis.StatusValidated)
		done(t, k)
		age(t, k, retention)
		pending := cofidis.ActionKey{Transaction: k.Transaction, Action: "pending", Status: cofidis.StatusPending, Rank: cofidis.StatusPending.Rank()}
		done(t, pending)
		res, err := s.Peek(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, cofidis.StatusPending, res.Furthest)
	})
	t.Run("an expired claim releases as a no-op", func(t *testing.T) {
		k := actionKey(cofidis.StatusToConfirm)
		claim(t, k)
		age(t, k, retention)
		require.NoError(t, s.Release(ctx, k, "another-token"))
	})
	t.Run("an expired completion is completed again by anyone", func(t *testing.T) {
		k := actionKey(cofidis.StatusToConfirm)
		done(t, k)
		age(t, k, retention)
		require.NoError(t, s.Complete(ctx, k, "another-token"))
		res, err := s.Claim(ctx, k, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, cofidis.Done, res.State)
	})
}

// TestConcurrentClaims_acrossReplicas has replicas (one pool each) claim
// actions at once, fresh ones and ones whose lease ended, and checks that
// exactly one claim wins each and that every other reports the winner's
// state.
func TestConcurrentClaims_acrossReplicas(t *testing.T) {
	const (
		replicas = 4
		perPool  = 8 // concurrent claims per replica
		rounds   = 20
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
	tests := []struct {
		name  string
		setup func(t *testing.T, k cofidis.ActionKey)
	}{
		{"fresh action", func(*testing.T, cofidis.ActionKey) {}},
		{"lease ended", func(t *testing.T, k cofidis.ActionKey) {
			res, err := stores[0].Claim(ctx, k, time.Microsecond)
			require.NoError(t, err)
			require.Equal(t, cofidis.Claimed, res.State)
			require.Eventually(t, func() bool {
				res, err := stores[0].Peek(ctx, k)
				return err == nil && res.State == cofidis.Unclaimed
			}, 5*time.Second, time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range rounds {
				k := actionKey(cofidis.StatusToConfirm)
				tt.setup(t, k)
				var (
					wg                sync.WaitGroup
					claimed, inFlight atomic.Int32
					errs              = make(chan error, replicas*perPool)
				)
				for i := range replicas * perPool {
					wg.Go(func() {
						res, err := stores[i%replicas].Claim(ctx, k, time.Minute)
						switch {
						case err != nil:
							errs <- err
						case res.State == cofidis.Claimed:
							claimed.Add(1)
						case res.State == cofidis.InProgress && res.RetryAfter > 0:
							inFlight.Add(1)
						default:
							errs <- errors.New("unexpected answer " + res.State.String())
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				require.Equal(t, int32(1), claimed.Load(), "claims granted")
				require.Equal(t, int32(replicas*perPool-1), inFlight.Load(), "claims answered in progress")
			}
		})
	}
}

// countingConn counts the writes of a connection: pgx writes each request
// (a query's Parse/Bind/Execute/Sync, say) at once, so one write is one
// round trip.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// countingPool connects a pool of at most maxConns connections to the test
// database, counting the writes (the round trips) on all of them.
func countingPool(t testing.TB, maxConns int32) (*pgxpool.Pool, *atomic.Int64) {
	t.Helper()
	writes := new(atomic.Int64)
	pool := newPool(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = maxConns
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: c, writes: writes}, nil
		}
	})
	return pool, writes
}

func TestRoundTrips_perOperation(t *testing.T) {
	pool, writes := countingPool(t, 1)
	s := newStore(t, pool, pgstore.Options{})
	ctx := testContext(t)
	k := actionKey(cofidis.StatusToConfirm)
	var (
		token string
		x     cofidis.Tracked
	)
	// take takes x, due by now.
	take := func() error {
		got, err := s.TakeDue(ctx, time.Now(), 10, time.Minute)
		if err == nil && len(got) != 1 {
			err = fmt.Errorf("TakeDue took %d transactions, want 1", len(got))
		}
		if err == nil {
			x = got[0]
		}
		return err
	}
	ops := []struct {
		name string
		op   func() error
	}{
		{"Claim", func() error {
			res, err := s.Claim(ctx, k, time.Minute)
			token = res.Token
			return err
		}},
		{"Peek", func() error { _, err := s.Peek(ctx, k); return err }},
		{"Release", func() error { return s.Release(ctx, k, token) }},
		{"Claim again", func() error {
			res, err := s.Claim(ctx, k, time.Minute)
			token = res.Token
			return err
		}},
		{"Complete", func() error { return s.Complete(ctx, k, token) }},
		{"Claim of a done action", func() error { _, err := s.Claim(ctx, k, time.Minute); return err }},
		{"Purge with nothing to purge", func() error { _, err := s.Purge(ctx); return err }},
		{"Track", func() error {
			x = trackedAt(time.Now(), time.Now())
			return s.Track(ctx, x)
		}},
		{"Track again", func() error { return s.Track(ctx, x) }},
		{"TakeDue", take},
		{"TakeDue with nothing due", func() error { _, err := s.TakeDue(ctx, time.Now(), 10, time.Minute); return err }},
		{"Reschedule", func() error {
			x.Due = time.Now()
			return s.Reschedule(ctx, x)
		}},
		{"TakeDue again", take},
		{"Untrack", func() error { return s.Untrack(ctx, x) }},
		{"Untrack with a lost lease", func() error {
			if err := s.Untrack(ctx, x); !errors.Is(err, cofidis.ErrLeaseLost) {
				return fmt.Errorf("Untrack twice = %w, want ErrLeaseLost", err)
			}
			return nil
		}},
	}
	// The first use of a statement on a connection prepares it: one more
	// round trip, once.
	for _, o := range ops {
		require.NoError(t, o.op(), "warming up %s", o.name)
	}
	k = actionKey(cofidis.StatusToConfirm)
	for _, o := range ops {
		writes.Store(0)
		require.NoError(t, o.op(), o.name)
		want := int64(1)
		if strings.HasPrefix(o.name, "Purge") {
			want = 2 // a statement per table
		}
		assert.Equal(t, want, writes.Load(), "%s: round trips", o.name)
	}
}

func TestPurge(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	const (
		retention = time.Hour
		old       = 2500 // expired records of each table: three statements for the actions
	)
	s := newStore(t, pool, pgstore.Options{Schema: schema, Retention: retention})
	actions := pgx.Identifier{schema, pgstore.DefaultPrefix + "actions"}.Sanitize()
	transactions := pgx.Identifier{schema, pgstore.DefaultPrefix + "transactions"}.Sanitize()
	ctx := testContext(t)
	count := func(t *testing.T, table string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n))
		return n
	}

	// Live records: a completed action, a held one, and one whose lease
	// outlives the retention (written long ago all the same: expired).
	done, held := actionKey(cofidis.StatusToConfirm), actionKey(cofidis.StatusPending)
	res, err := s.Claim(ctx, done, time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Complete(ctx, done, res.Token))
	_, err = s.Claim(ctx, held, time.Minute)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+actions+` SELECT 'old/' || i, 'to_confirm', 'token', i % 2 = 0,
		CASE WHEN i % 2 = 1 THEN now() + interval '1 day' END, now() - interval '1 hour' - i * interval '1 second'
		FROM generate_series(1, $1::integer) i`, old)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+transactions+` SELECT 'old/' || i, 4, 'to_confirm', now() - interval '1 hour'
		FROM generate_series(1, $1::integer) i`, old)
	require.NoError(t, err)

	// Tracked transactions, sent long ago, due long ago, one of them taken:
	// not records Purge deletes.
	const tracked = 3
	for i := range tracked {
		x := trackedAt(time.Now().Add(-30*24*time.Hour), time.Now().Add(-20*24*time.Hour))
		require.NoError(t, s.Track(ctx, x))
		if i == 0 {
			_, err := s.TakeDue(ctx, x.Due, 1, time.Hour)
			require.NoError(t, err)
		}
	}

	t.Run("a cancelled context stops it", func(t *testing.T) {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		n, err := s.Purge(cancelled)
		require.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, n)
	})
	t.Run("rows another transaction holds are skipped, not waited for", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, `SELECT FROM `+actions+` WHERE transaction_id = 'old/1' FOR UPDATE`)
		require.NoError(t, err)
		n, err := s.Purge(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(2*old-1), n, "rows deleted")
		require.NoError(t, tx.Rollback(ctx))
		n, err = s.Purge(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "the held row, once free")
	})
	t.Run("tracked transactions stay", func(t *testing.T) {
		assert.Equal(t, tracked, count(t, trackedTable(schema)))
	})
	t.Run("live records stay", func(t *testing.T) {
		assert.Equal(t, 2, count(t, actions))
		assert.Equal(t, 1, count(t, transactions))
		res, err := s.Peek(ctx, done)
		require.NoError(t, err)
		assert.Equal(t, cofidis.Done, res.State)
		assert.Equal(t, cofidis.StatusToConfirm, res.Furthest)
		res, err = s.Peek(ctx, held)
		require.NoError(t, err)
		assert.Equal(t, cofidis.InProgress, res.State)
	})
	t.Run("concurrent purges share the work", func(t *testing.T) {
		_, err = pool.Exec(ctx, `INSERT INTO `+actions+` SELECT 'again/' || i, 'to_confirm', 'token', true, NULL, now() - interval '2 hours'
			FROM generate_series(1, $1::integer) i`, old)
		require.NoError(t, err)
		var (
			wg    sync.WaitGroup
			total atomic.Int64
		)
		for range 3 {
			wg.Go(func() {
				n, err := s.Purge(ctx)
				assert.NoError(t, err)
				total.Add(n)
			})
		}
		wg.Wait()
		assert.Equal(t, int64(old), total.Load())
		assert.Equal(t, 2, count(t, actions))
	})
}
