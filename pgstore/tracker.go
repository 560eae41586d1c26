package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cofidis-go/cofidis"
)

// trackSQL: $1 transaction id, $2 key (JSON), $3 since, $4 due, $5
// attempts. A transaction already tracked is left as it is.
const trackSQL = `INSERT INTO {tracked} (transaction_id, transaction_key, since, due, attempts)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (transaction_id) DO NOTHING`

// takeDueSQL: $1 now, $2 limit, $3 the end of the lease. picked locks up
// to $2 rows due at $1, earliest first, skipping the rows another statement
// holds (another replica's TakeDue, a Reschedule): concurrent takes share
// the due rows instead of queueing for them. FOR UPDATE re-checks the due
// time on the latest version of each row, so a row another take committed
// meanwhile is not taken again. MATERIALIZED runs picked exactly once,
// whatever plan the update gets. Each row taken gets a new random token
// and, as its due time, the end of the lease: another take gets it only
// after that, unless Reschedule or Untrack settle it first. It returns the
// rows earliest due first, with the due time that made them due.
const takeDueSQL = `WITH picked AS MATERIALIZED (
	SELECT transaction_id, due FROM {tracked}
	WHERE due <= $1
	ORDER BY due
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), taken AS (
	UPDATE {tracked} AS t SET token = gen_random_uuid()::text, due = $3
	FROM picked
	WHERE t.transaction_id = picked.transaction_id
	RETURNING t.transaction_id, t.transaction_key, t.since, picked.due, t.attempts, t.token
)
SELECT transaction_id, transaction_key, since, due, attempts, token FROM taken ORDER BY due, transaction_id`

// rescheduleSQL: $1 transaction id, $2 token, $3 due, $4 attempts. It
// changes the row, and frees it, only if $2 still holds it.
const rescheduleSQL = `UPDATE {tracked} SET due = $3, attempts = $4, token = NULL
WHERE transaction_id = $1 AND token = $2`

// untrackSQL: $1 transaction id, $2 token. It deletes the row only if $2
// still holds it.
const untrackSQL = `DELETE FROM {tracked} WHERE transaction_id = $1 AND token = $2`

// dbTime returns t as the database keeps it: truncated to the microsecond,
// and without a monotonic reading. pgx v5.13 truncates too, in binary and
// in text, but PostgreSQL rounds the digits past the microsecond of a time
// sent as text: truncating here keeps the times the store writes, and so
// what is due when, independent of the driver's encoding.
func dbTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// Track implements cofidis.Tracker: it records t, due at t.Due, unless its
// transaction is already tracked. t.Token is ignored.
func (s *Store) Track(ctx context.Context, t cofidis.Tracked) error {
	key, err := json.Marshal(t.Key)
	if err != nil {
		return fmt.Errorf("pgstore: track %s: %w", t.Key, err)
	}
	_, err = s.pool.Exec(ctx, s.trackSQL, t.Key.ID().String(), string(key), dbTime(t.Since), dbTime(t.Due), t.Attempts)
	if err != nil {
		return fmt.Errorf("pgstore: track %s: %w", t.Key, err)
	}
	return nil
}

// TakeDue implements cofidis.Tracker. now and lease are the caller's: a
// transaction taken is due again at now+lease, by the caller's clock.
func (s *Store) TakeDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]cofidis.Tracked, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, s.takeDueSQL, dbTime(now), limit, dbTime(now.Add(lease)))
	if err != nil {
		return nil, fmt.Errorf("pgstore: take due transactions: %w", err)
	}
	defer rows.Close()
	var (
		out     []cofidis.Tracked
		id, key string
		t       cofidis.Tracked
	)
	for rows.Next() {
		if err := rows.Scan(&id, &key, &t.Since, &t.Due, &t.Attempts, &t.Token); err != nil {
			return nil, fmt.Errorf("pgstore: take due transactions: %w", err)
		}
		// The key is what Track wrote with json.Marshal: it fails to parse
		// only if the row was edited by hand, which is worth stopping for.
		if t.Key, err = cofidis.ParseTransactionKey(key); err != nil {
			return nil, fmt.Errorf("pgstore: take due transactions: the key of tracked transaction %s: %w", id, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: take due transactions: %w", err)
	}
	return out, nil
}

// Reschedule implements cofidis.Tracker.
func (s *Store) Reschedule(ctx context.Context, t cofidis.Tracked) error {
	return s.holderWrite(ctx, "reschedule", t, s.rescheduleSQL, dbTime(t.Due), t.Attempts)
}

// Untrack implements cofidis.Tracker.
func (s *Store) Untrack(ctx context.Context, t cofidis.Tracked) error {
	return s.holderWrite(ctx, "untrack", t, s.untrackSQL)
}

// holderWrite runs sql, a statement that changes the row of t's
// transaction if t.Token still holds it, with the transaction's id, the
// token and args; cofidis.ErrLeaseLost when it changed nothing.
func (s *Store) holderWrite(ctx context.Context, op string, t cofidis.Tracked, sql string, args ...any) error {
	if t.Token == "" { // no row is held by the empty token: skip the round trip
		return fmt.Errorf("pgstore: %s %s: %w", op, t.Key, cofidis.ErrLeaseLost)
	}
	tag, err := s.pool.Exec(ctx, sql, append([]any{t.Key.ID().String(), t.Token}, args...)...)
	if err != nil {
		return fmt.Errorf("pgstore: %s %s: %w", op, t.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: %s %s: %w", op, t.Key, cofidis.ErrLeaseLost)
	}
	return nil
}
