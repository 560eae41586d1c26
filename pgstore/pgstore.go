// Package pgstore is a cofidis.Store kept in PostgreSQL, for merchants whose
// orders live there: the claim of a decision can be completed in the same
// transaction as the order it changes (CompleteTx, RunInTx), so that the
// order update and its record as done commit, or roll back, together. A
// replica that dies between the two cannot repeat the action, as it can with
// a store in another system.
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	store, err := pgstore.New(pool, pgstore.Options{})
//	err = store.Migrate(ctx) // or run store.DDL() with your migration tool
//	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification, cofidis.WithIdempotency(store))
//
// and, in the notification callback:
//
//	return store.RunInTx(ctx, func(tx pgx.Tx) error {
//		_, err := tx.Exec(ctx, `UPDATE orders SET status = 'accepted' WHERE id = $1`, ev.TransactionKey.MerchantTransactionID)
//		return err
//	})
//
// # Guarantee
//
// Writes made in the transaction that CompleteTx completes happen exactly
// once per decision: if it commits, the action is done, even if the process
// dies before answering; if it rolls back, the Router releases the claim (or
// the lease ends) and the next delivery runs the action. Effects outside the
// database (an e-mail, a call to Cofidis' confirm) are at least once: make
// them idempotent.
//
// # Schema
//
// Three tables, created by Migrate (idempotent: CREATE ... IF NOT EXISTS, in
// one transaction under an advisory lock, so replicas may all run it at
// start, and a database created by an earlier version gains the tables it
// lacks) or by your own migration tool from DDL. Their names are
// Options.Prefix (DefaultPrefix) followed by "actions", "transactions" and
// "tracked", in Options.Schema (or the connection's search_path); names are
// quoted with pgx.Identifier.Sanitize, so they are taken verbatim, case
// included.
//
//   - <prefix>actions: one row per action claimed or done (transaction_id,
//     action, token, done, lease_until, written_at); a released claim is
//     deleted.
//   - <prefix>transactions: one row per transaction, its furthest status
//     (transaction_id, furthest_rank, furthest_status, written_at).
//   - <prefix>tracked: the due list of cofidis.WithReconciliation, one row
//     per transaction awaiting its outcome (transaction_id,
//     transaction_key, since, due, attempts, token), from Track until
//     Untrack.
//
// # Atomicity, clock and round trips
//
// Each method is one SQL statement, so atomic and one round trip (with
// pgx's default statement cache, the first use of a statement on a
// connection also prepares it): a notification costs two (Claim, then
// Complete or Release), plus one inside your transaction with CompleteTx; a
// redirect costs one (Peek). Leases and retention are judged by the
// database's clock (now()), so replicas' clocks need not agree.
//
// Claim is an INSERT ... ON CONFLICT DO UPDATE whose update takes the action
// over only when it is free (expired lease, or a record past the retention)
// and otherwise writes the row back unchanged, and RETURNING reports the row
// as it is after the statement. The conflict locks the row, so concurrent
// Claims of one action are serialised and exactly one gets it; the update
// in every case is what makes RETURNING report the row that won, even when
// it was inserted by a transaction that committed after the statement
// began, which a conditional update (no row returned) followed by a SELECT
// (whose snapshot predates it) could not see. A Claim on an action whose
// completion is in an open transaction (CompleteTx) waits for that
// transaction, then reports Done or takes the claim over.
//
// # Reconciliation
//
// Store implements cofidis.Tracker, so that it can keep the due list of
// cofidis.WithReconciliation for every replica. TakeDue is one UPDATE of
// the rows picked by a SELECT ... FOR UPDATE SKIP LOCKED: replicas taking
// due transactions at once skip the rows another is taking instead of
// waiting for it, and each row goes to one of them, under a new random
// token (gen_random_uuid, core from PostgreSQL 13) and with its due time
// moved to the end of the lease. Reschedule and Untrack change or delete a
// row only where its token still holds it. Tracked transactions cost one
// round trip each to Track, and, reconciled, a share of a TakeDue and
// Untrack or Reschedule on top of the Router's own Peek, Claim and
// Complete (README.md has the table).
//
// Unlike the claims, the Tracker's times are the caller's: the now given
// to TakeDue and the times in Tracked, from the Router's clock
// (cofidis.WithClock), which tests fake to skip the 50 minutes. They are
// kept to the microsecond, the database's resolution: finer digits are
// truncated before they are written.
//
// # Retention
//
// PostgreSQL has no TTL: a record not written for Options.Retention
// (cofidis.DefaultRetention) counts as absent at once, and Purge deletes
// such records in small batches. Schedule it (hourly, say) from one replica
// or all of them. Tracked transactions are not records of that kind: they
// stay until untracked, and Purge leaves them alone.
package pgstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cofidis-go/cofidis"
)

// DefaultPrefix starts the name of every table the store uses, unless
// Options.Prefix sets another.
const DefaultPrefix = "cofidis_"

// maxIdentifier is the longest identifier PostgreSQL keeps (NAMEDATALEN-1
// bytes): it silently truncates longer ones, which could make two names one.
const maxIdentifier = 63

// longestSuffix is the longest name the store appends to the prefix.
const longestSuffix = "transactions_written_at"

// Options configures New. The zero value gives the defaults.
type Options struct {
	// Schema is the schema of the tables, which Migrate creates if needed;
	// empty leaves the names unqualified, found through the connection's
	// search_path (usually "public").
	Schema string
	// Prefix starts every table and index name; DefaultPrefix when empty.
	// Give each environment sharing a schema its own.
	Prefix string
	// Retention is how long a record is kept after its last write;
	// cofidis.DefaultRetention when zero. An older record counts as absent,
	// and Purge deletes it.
	Retention time.Duration
}

// Store is a cofidis.Store in PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	schema    string // Options.Schema, sanitized; empty without one
	ddl       string // DDL(): the schema (with Options.Schema), the tables and indexes
	tablesDDL string // the tables and indexes only

	claimSQL, completeSQL, releaseSQL, peekSQL string
	purgeSQL                                   [2]string // actions, transactions

	trackSQL, takeDueSQL, rescheduleSQL, untrackSQL string
}

var (
	_ cofidis.Store   = (*Store)(nil)
	_ cofidis.Tracker = (*Store)(nil)
)

// New returns a Store on pool. It checks its arguments only: the database
// is first contacted by the first call. Run Migrate (or DDL with your own
// tool) before serving.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: pgstore.New: want a non-nil pool", cofidis.ErrInvalidOption)
	}
	if opts.Retention < 0 || (opts.Retention > 0 && opts.Retention < time.Millisecond) {
		return nil, fmt.Errorf("%w: pgstore.New: want a Retention of at least 1ms, got %v", cofidis.ErrInvalidOption, opts.Retention)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if err := checkName("Schema", opts.Schema, 0); err != nil {
		return nil, err
	}
	if err := checkName("Prefix", opts.Prefix, len(longestSuffix)); err != nil {
		return nil, err
	}
	if opts.Retention == 0 {
		opts.Retention = cofidis.DefaultRetention
	}
	s := &Store{pool: pool}
	s.build(opts.Schema, opts.Prefix, opts.Retention.Microseconds())
	return s, nil
}

// checkName rejects a schema or prefix PostgreSQL would not keep as given:
// NUL bytes (which Sanitize drops), invalid UTF-8, and names that a suffix
// of reserve bytes would take past the identifier limit.
func checkName(field, name string, reserve int) error {
	switch {
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: pgstore.New: %s %q contains a NUL byte", cofidis.ErrInvalidOption, field, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: pgstore.New: %s %q is not valid UTF-8", cofidis.ErrInvalidOption, field, name)
	case len(name)+reserve > maxIdentifier:
		return fmt.Errorf("%w: pgstore.New: %s %q is longer than %d bytes: PostgreSQL would truncate the names built on it",
			cofidis.ErrInvalidOption, field, name, maxIdentifier-reserve)
	}
	return nil
}

// ident returns the sanitized name of table name in schema (unqualified
// when schema is empty).
func ident(schema, name string) string {
	if schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{schema, name}.Sanitize()
}

// build writes the store's SQL for its table names and its retention, in
// microseconds (the database's resolution).
func (s *Store) build(schema, prefix string, retentionUS int64) {
	// The retention is written into the statements as an integer (no
	// injection), so that each takes only the parameters of its operation.
	// One pass of one Replacer, which never rescans what it inserted: a
	// table name cannot bring placeholders of its own.
	retention := fmt.Sprintf("%d * interval '1 microsecond'", retentionUS)
	expand := strings.NewReplacer(
		"{actions}", ident(schema, prefix+"actions"),
		"{transactions}", ident(schema, prefix+"transactions"),
		"{tracked}", ident(schema, prefix+"tracked"),
		"{actions_written_at}", pgx.Identifier{prefix + "actions_written_at"}.Sanitize(),
		"{transactions_written_at}", pgx.Identifier{prefix + longestSuffix}.Sanitize(),
		"{tracked_due}", pgx.Identifier{prefix + "tracked_due"}.Sanitize(),
		"{free}", strings.ReplaceAll(free, "{retention}", retention),
		"{expired}", strings.ReplaceAll(expired, "{retention}", retention),
	).Replace
	s.tablesDDL = expand(ddlSQL)
	s.ddl = s.tablesDDL
	if schema != "" {
		s.schema = pgx.Identifier{schema}.Sanitize()
		s.ddl = "CREATE SCHEMA IF NOT EXISTS " + s.schema + ";\n" + s.tablesDDL
	}
	s.claimSQL = expand(claimSQL)
	s.completeSQL = expand(completeSQL)
	s.releaseSQL = expand(releaseSQL)
	s.peekSQL = expand(peekSQL)
	s.purgeSQL = [2]string{
		expand(strings.NewReplacer("{table}", "{actions}", "{key}", "transaction_id, action").Replace(purgeSQL)),
		expand(strings.NewReplacer("{table}", "{transactions}", "{key}", "transaction_id").Replace(purgeSQL)),
	}
	s.trackSQL = expand(trackSQL)
	s.takeDueSQL = expand(takeDueSQL)
	s.rescheduleSQL = expand(rescheduleSQL)
	s.untrackSQL = expand(untrackSQL)
}

// ddlSQL creates the tables and their indexes; the store adds the schema.
// written_at is indexed for Purge, due for TakeDue. Only CREATE ... IF NOT
// EXISTS: run again on a database that an earlier version created, it adds
// the tables that version lacked.
const ddlSQL = `CREATE TABLE IF NOT EXISTS {actions} (
	transaction_id text        NOT NULL, -- cofidis.ActionKey.Transaction
	action         text        NOT NULL, -- cofidis.ActionKey.Action
	token          text        NOT NULL, -- the claim's or the completion's
	done           boolean     NOT NULL,
	lease_until    timestamptz,          -- end of the lease while held; NULL once done
	written_at     timestamptz NOT NULL, -- last claim or completion
	PRIMARY KEY (transaction_id, action)
);
CREATE INDEX IF NOT EXISTS {actions_written_at} ON {actions} (written_at);
CREATE TABLE IF NOT EXISTS {transactions} (
	transaction_id  text        PRIMARY KEY,
	furthest_rank   integer     NOT NULL, -- cofidis.Status.Rank of furthest_status
	furthest_status text        NOT NULL, -- '' until an action with a rank completes
	written_at      timestamptz NOT NULL  -- last completion
);
CREATE INDEX IF NOT EXISTS {transactions_written_at} ON {transactions} (written_at);
CREATE TABLE IF NOT EXISTS {tracked} (
	transaction_id  text        PRIMARY KEY, -- cofidis.TransactionKey.ID().String()
	transaction_key text        NOT NULL,    -- the cofidis.TransactionKey as json.Marshal writes it
	since           timestamptz NOT NULL,    -- when the customer was sent to the journey
	due             timestamptz NOT NULL,    -- next check; while taken, the end of the lease
	attempts        integer     NOT NULL,    -- getStatus checks so far
	token           text                     -- the taker's (TakeDue); NULL when not taken
);
CREATE INDEX IF NOT EXISTS {tracked_due} ON {tracked} (due);
`

// migrateLock is the advisory lock Migrate holds while it creates the
// tables: concurrent CREATE ... IF NOT EXISTS of one table can fail.
const migrateLock int64 = 0x636f666964697301 // "cofidis" and 1

// expired is the condition on a row's written_at under which the record
// counts as absent: written before now() minus the retention. Prefixed with
// a table alias and a dot, it applies to that table's row.
const expired = `written_at <= now() - {retention}`

// free is the condition on an action's row a, in Claim, under which the
// row is taken over: past the retention, or held under an ended lease.
const free = `(a.` + expired + ` OR (NOT a.done AND a.lease_until <= now()))`

// leaseLeftUS is what is left of the lease of an action's row a, in
// microseconds (0 without a lease).
const leaseLeftUS = `coalesce((extract(epoch FROM a.lease_until - now()) * 1000000)::bigint, 0)`

// claimSQL: $1 transaction, $2 action, $3 the new token, $4 the lease in
// microseconds. It returns whether $3 got the claim, whether the action is
// done, what is left of the holder's lease (microseconds) and the
// transaction's furthest status.
const claimSQL = `INSERT INTO {actions} AS a (transaction_id, action, token, done, lease_until, written_at)
VALUES ($1, $2, $3, false, now() + $4::bigint * interval '1 microsecond', now())
ON CONFLICT (transaction_id, action) DO UPDATE SET
	token       = CASE WHEN {free} THEN excluded.token       ELSE a.token       END,
	done        = CASE WHEN {free} THEN false                ELSE a.done        END,
	lease_until = CASE WHEN {free} THEN excluded.lease_until ELSE a.lease_until END,
	written_at  = CASE WHEN {free} THEN excluded.written_at  ELSE a.written_at  END
RETURNING
	a.token = $3,
	a.done,
	` + leaseLeftUS + `,
	coalesce((SELECT t.furthest_status FROM {transactions} t WHERE t.transaction_id = $1 AND NOT t.{expired}), '')`

// completeSQL: $1 transaction, $2 action, $3 token, $4 rank, $5 status.
// It marks the action done unless another token claimed or completed it
// since (an expired record counts as none), then moves the furthest status
// when the rank exceeds the live one, and returns whether the action is now
// done with the token. The update of a conflicting row locks it until the
// transaction ends: inside a merchant's transaction (CompleteTx), no other
// delivery can take the claim over before it commits or rolls back.
const completeSQL = `WITH act AS (
	INSERT INTO {actions} AS a (transaction_id, action, token, done, lease_until, written_at)
	VALUES ($1, $2, $3, true, NULL, now())
	ON CONFLICT (transaction_id, action) DO UPDATE
		SET token = excluded.token, done = true, lease_until = NULL, written_at = excluded.written_at
		WHERE a.token = excluded.token OR a.{expired}
	RETURNING 1
), txn AS (
	INSERT INTO {transactions} AS t (transaction_id, furthest_rank, furthest_status, written_at)
	SELECT $1, $4::integer, CASE WHEN $4::integer > 0 THEN $5::text ELSE '' END, now() FROM act
	ON CONFLICT (transaction_id) DO UPDATE SET
		furthest_rank   = CASE WHEN t.{expired} OR excluded.furthest_rank > t.furthest_rank THEN excluded.furthest_rank   ELSE t.furthest_rank   END,
		furthest_status = CASE WHEN t.{expired} OR excluded.furthest_rank > t.furthest_rank THEN excluded.furthest_status ELSE t.furthest_status END,
		written_at      = excluded.written_at
)
SELECT EXISTS (SELECT FROM act)`

// releaseSQL: $1 transaction, $2 action, $3 token. It locks the action's
// row (FOR UPDATE reads its latest version, even one a takeover committed
// after the statement began), deletes it when the token holds it, and
// returns whether the release succeeded: the token held it, or nothing live
// is recorded (a row inserted after the statement began is not seen: the
// release came first).
const releaseSQL = `WITH cur AS (
	SELECT NOT done AND token = $3 AS ours, {expired} AS gone
	FROM {actions} WHERE transaction_id = $1 AND action = $2
	FOR UPDATE
), del AS (
	DELETE FROM {actions} a USING cur
	WHERE a.transaction_id = $1 AND a.action = $2 AND cur.ours
)
SELECT coalesce((SELECT ours OR gone FROM cur), true)`

// peekSQL: $1 transaction, $2 action. It returns whether the action is
// done (NULL when nothing live is recorded), what is left of its lease
// (microseconds) and the transaction's furthest status.
const peekSQL = `SELECT
	a.done,
	` + leaseLeftUS + `,
	coalesce(t.furthest_status, '')
FROM (VALUES (1)) AS one
LEFT JOIN {actions} a ON a.transaction_id = $1 AND a.action = $2 AND NOT a.{expired}
LEFT JOIN {transactions} t ON t.transaction_id = $1 AND NOT t.{expired}`

// purgeSQL deletes up to $1 expired rows of {table} (primary key {key}),
// skipping the rows other statements hold: a short statement that blocks
// nobody. FOR UPDATE re-checks the expiry on the latest version of each
// row, so a record written again meanwhile stays.
const purgeSQL = `WITH doomed AS (
	SELECT {key} FROM {table}
	WHERE {expired}
	LIMIT $1
	FOR UPDATE SKIP LOCKED
)
DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM doomed)`

// DDL returns the SQL that Migrate runs (without its advisory lock): the
// tables and indexes, and the schema when Options.Schema is set. Give it to
// your migration tool when the application's role may not create tables.
func (s *Store) DDL() string { return s.ddl }

// Migrate creates the schema (when Options.Schema is set), the tables and
// their indexes unless they exist, in one transaction under an advisory
// lock, so that replicas starting together may all call it. It never alters
// or drops anything.
func (s *Store) Migrate(ctx context.Context) error {
	ddl := s.ddl
	if s.schema != "" {
		// CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
		// database even when the schema exists: an application role with
		// rights on its schema only would fail it. An existing schema is
		// left out.
		var exists bool
		if err := s.pool.QueryRow(ctx, "SELECT to_regnamespace($1::text) IS NOT NULL", s.schema).Scan(&exists); err != nil {
			return fmt.Errorf("pgstore: migrate: %w", err)
		}
		if exists {
			ddl = s.tablesDDL
		}
	}
	// Without arguments, pgx sends the statements as one simple query,
	// which PostgreSQL runs as one transaction.
	sql := fmt.Sprintf("SELECT pg_advisory_xact_lock(%d);\n%s", migrateLock, ddl)
	if _, err := s.pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// Claim implements cofidis.Store.
func (s *Store) Claim(ctx context.Context, key cofidis.ActionKey, lease time.Duration) (cofidis.ClaimResult, error) {
	token := rand.Text()
	var (
		claimed, done bool
		leftUS        int64
		furthest      string
	)
	err := s.pool.QueryRow(ctx, s.claimSQL, key.Transaction, key.Action, token, max(lease.Microseconds(), 1)).
		Scan(&claimed, &done, &leftUS, &furthest)
	if err != nil {
		return cofidis.ClaimResult{}, fmt.Errorf("pgstore: claim %s: %w", key, err)
	}
	res := cofidis.ClaimResult{Furthest: cofidis.Status(furthest)}
	switch {
	case claimed:
		res.State, res.Token = cofidis.Claimed, token
	case done:
		res.State = cofidis.Done
	default:
		res.State, res.RetryAfter = cofidis.InProgress, max(time.Duration(leftUS)*time.Microsecond, time.Microsecond)
	}
	return res, nil
}

// Complete implements cofidis.Store.
func (s *Store) Complete(ctx context.Context, key cofidis.ActionKey, token string) error {
	if err := s.complete(ctx, s.pool, key, token); err != nil {
		return fmt.Errorf("pgstore: complete %s: %w", key, err)
	}
	return nil
}

// querier is what runs the store's statements: the pool, or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// complete runs completeSQL on q; ErrLeaseLost when another token claimed or
// completed the action since.
func (s *Store) complete(ctx context.Context, q querier, key cofidis.ActionKey, token string) error {
	var ok bool
	if err := q.QueryRow(ctx, s.completeSQL, key.Transaction, key.Action, token, key.Rank, string(key.Status)).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return cofidis.ErrLeaseLost
	}
	return nil
}

// Release implements cofidis.Store.
func (s *Store) Release(ctx context.Context, key cofidis.ActionKey, token string) error {
	var ok bool
	if err := s.pool.QueryRow(ctx, s.releaseSQL, key.Transaction, key.Action, token).Scan(&ok); err != nil {
		return fmt.Errorf("pgstore: release %s: %w", key, err)
	}
	if !ok {
		return fmt.Errorf("pgstore: release %s: %w", key, cofidis.ErrLeaseLost)
	}
	return nil
}

// Peek implements cofidis.Store.
func (s *Store) Peek(ctx context.Context, key cofidis.ActionKey) (cofidis.ClaimResult, error) {
	var (
		done     *bool
		leftUS   int64
		furthest string
	)
	err := s.pool.QueryRow(ctx, s.peekSQL, key.Transaction, key.Action).Scan(&done, &leftUS, &furthest)
	if err != nil {
		return cofidis.ClaimResult{}, fmt.Errorf("pgstore: peek %s: %w", key, err)
	}
	res := cofidis.ClaimResult{State: cofidis.Unclaimed, Furthest: cofidis.Status(furthest)}
	switch {
	case done == nil:
	case *done:
		res.State = cofidis.Done
	case leftUS > 0:
		res.State, res.RetryAfter = cofidis.InProgress, time.Duration(leftUS)*time.Microsecond
	}
	return res, nil
}

// purgeBatch is how many rows one statement of Purge deletes at most: small
// enough to keep each statement short, large enough that a week of a busy
// shop's records goes in a few hundred statements.
const purgeBatch = 1000

// Purge deletes the records not written for the retention, which already
// count as absent, and returns how many rows it deleted. It works in
// statements of at most a thousand rows, each its own short transaction
// that skips the rows other statements hold, so it neither holds long locks
// nor waits for deliveries; stopped by ctx, it returns what it deleted so
// far and the context's error. Schedule it (hourly, say); concurrent calls
// from several replicas are safe.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	var total int64
	for _, sql := range s.purgeSQL {
		for {
			tag, err := s.pool.Exec(ctx, sql, purgeBatch)
			if err != nil {
				return total, fmt.Errorf("pgstore: purge: %w", err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < purgeBatch {
				break
			}
		}
	}
	return total, nil
}
