package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cofidis-go/cofidis"
)

// ErrNoClaim is returned by CompleteTx and RunInTx when there is no claim to
// complete: the Router was built without cofidis.WithIdempotency, or the
// call is made outside the notification callback (or outside a redirect
// callback with cofidis.WithRedirectClaims). Return it from the callback:
// completing nothing would leave the action to be repeated by the next
// delivery, so the callback must fail loudly instead.
var ErrNoClaim = errors.New("pgstore: no claim to complete (build the Router with cofidis.WithIdempotency, and complete from its notification callback)")

// CompleteTx records the claimed action as done in tx, the transaction in
// which the callback makes its own writes, so that both commit or roll back
// together. claim is the one the callback's context carries
// (cofidis.ClaimFromContext); tx must be a transaction on the store's
// database.
//
// It follows Store.Complete: it succeeds when claim.Token holds the claim,
// even after its lease ended if nobody claimed the action since, or
// completed it already, or when nothing is recorded; it returns an error
// wrapping cofidis.ErrLeaseLost when another delivery claimed or completed
// the action since, and then tx must be rolled back: its writes would repeat
// that delivery's. It returns ErrNoClaim for a claim without a token.
//
// claim.Key.Rank moves the transaction's furthest status, as in
// Store.Complete. In a redirect callback (cofidis.WithRedirectClaims), set
// it to 0 unless ev.Verified: the Router completes an unverified redirect
// without moving the furthest status, but the claim it hands the callback
// carries the event's rank, and a forged redirect must not make the real
// decisions look stale.
//
// Call it last, just before Commit: it locks the action's row until tx
// ends, and a duplicate delivery waits for that (it then finds the action
// done, or takes it over after a rollback). Use READ COMMITTED, the
// default: under REPEATABLE READ or SERIALIZABLE, any delivery of the same
// action since tx began (a duplicate's Claim rewrites the row) makes it
// fail with a serialization error, which, like any error, must roll tx
// back. Once tx commits the action is done, even if
// the process dies before answering: the next delivery is a duplicate. The
// Router's own Complete then finds it done with the same token, which is
// success.
func (s *Store) CompleteTx(ctx context.Context, tx pgx.Tx, claim cofidis.Claim) error {
	if claim.Token == "" {
		return ErrNoClaim
	}
	if tx == nil {
		return fmt.Errorf("pgstore: complete %s in a transaction: want a non-nil pgx.Tx", claim.Key)
	}
	if err := s.complete(ctx, tx, claim.Key, claim.Token); err != nil {
		return fmt.Errorf("pgstore: complete %s in a transaction: %w", claim.Key, err)
	}
	return nil
}

// rollbackTimeout bounds the rollback of a failed RunInTx, which runs
// even when ctx has ended.
const rollbackTimeout = 5 * time.Second

// RunInTx runs fn in a transaction on the store's pool and completes the
// claim that ctx carries in it, then commits: fn's writes and the record of
// the action as done commit together, exactly once per decision. Call it
// from the notification callback, with the callback's context, and return
// its error:
//
//	func(ctx context.Context, ev cofidis.Event) error {
//		return store.RunInTx(ctx, func(tx pgx.Tx) error {
//			_, err := tx.Exec(ctx, `UPDATE orders SET status = $2 WHERE id = $1`, ev.TransactionKey.MerchantTransactionID, "accepted")
//			return err
//		})
//	}
//
// Without a claim in ctx it returns ErrNoClaim and runs nothing. When fn
// returns an error or panics, or the completion fails (cofidis.ErrLeaseLost:
// another delivery took the action over), the transaction is rolled back
// and the error returned as it is, so the Router releases the claim and the
// next delivery runs the action again (a cofidis.Permanent error keeps its
// meaning). fn must not commit or roll back tx, and should write only to
// the database: anything else it does is repeated when the transaction
// rolls back.
//
// In a redirect callback, use CompleteTx instead, with the rank the event
// deserves (see there).
//
// A failed Commit is returned too. The commit may have happened all the
// same (the connection died after sending it): the action is then done, the
// next delivery is a duplicate, and nothing runs twice.
func (s *Store) RunInTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	claim, ok := cofidis.ClaimFromContext(ctx)
	if !ok || claim.Token == "" {
		return ErrNoClaim
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: begin the transaction of %s: %w", claim.Key, err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Also when fn panics. A rollback that fails leaves pgx to close
		// the connection, which ends the transaction all the same.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := s.CompleteTx(ctx, tx, claim); err != nil {
		return err
	}
	committed = true // whatever Commit answers, the transaction is over
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: commit the transaction of %s: %w", claim.Key, err)
	}
	return nil
}
