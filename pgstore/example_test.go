package pgstore_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/pgstore"
)

// The notification callback accepts the order and completes the claim in
// one transaction: if the replica dies at any point, the order is updated
// once, by this delivery or by a later one. (It needs a database, so it is
// compiled but not run; TestRunInTx runs the same code.)
func ExampleStore_RunInTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(pool, pgstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	onNotification := func(ctx context.Context, ev cofidis.Event) error {
		if ev.Status != cofidis.StatusToConfirm {
			return nil
		}
		return store.RunInTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE orders SET status = 'accepted' WHERE id = $1 AND status = 'awaiting_credit'`,
				ev.TransactionKey.MerchantTransactionID)
			if err != nil {
				return err // rolled back; the next delivery tries again
			}
			if tag.RowsAffected() == 0 {
				return cofidis.Permanent(errNoSuchOrder) // acknowledged, never retried
			}
			// Queue what happens outside the database (confirm, e-mail) in
			// the same transaction; the worker that sends it must be
			// idempotent, since it may send it again after a crash.
			_, err = tx.Exec(ctx, `INSERT INTO outbox (order_id, kind) VALUES ($1, 'confirm')`, ev.TransactionKey.MerchantTransactionID)
			return err
		})
	}

	urls, err := cofidis.NewURLs("https://shop.example/pay/cofidis")
	if err != nil {
		log.Fatal(err)
	}
	rt, err := cofidis.NewRouter(urls, showOrderPage, onNotification,
		cofidis.WithVerifier(cofidis.VerifierFunc(getStatus)),
		cofidis.WithIdempotency(store))
	if err != nil {
		log.Fatal(err)
	}

	// Delete the records past the retention every hour.
	go func() {
		for range time.Tick(time.Hour) {
			if _, err := store.Purge(ctx); err != nil {
				log.Printf("purging the idempotency records: %v", err)
			}
		}
	}()
	log.Fatal(http.ListenAndServe(":8080", rt))
}

// Without RunInTx: the callback runs its own transaction (its options, its
// pool) and completes the claim last, just before the commit.
func ExampleStore_CompleteTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(pool, pgstore.Options{Schema: "payments"})
	if err != nil {
		log.Fatal(err)
	}

	onNotification := func(ctx context.Context, ev cofidis.Event) error {
		claim, ok := cofidis.ClaimFromContext(ctx)
		if !ok {
			return pgstore.ErrNoClaim // the Router lacks WithIdempotency: fail, never complete nothing
		}
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
		if _, err := tx.Exec(ctx, `UPDATE orders SET status = $2 WHERE id = $1`,
			ev.TransactionKey.MerchantTransactionID, string(ev.Status)); err != nil {
			return err
		}
		if err := store.CompleteTx(ctx, tx, claim); err != nil {
			return err // cofidis.ErrLeaseLost: another delivery took over; roll back
		}
		return tx.Commit(ctx)
	}
	_ = onNotification
}

var errNoSuchOrder = errors.New("no such order awaiting credit")

func showOrderPage(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
	http.Redirect(w, r, "/orders/"+ev.TransactionKey.MerchantTransactionID, http.StatusSeeOther)
	return nil
}

func getStatus(ctx context.Context, key cofidis.TransactionKey) (cofidis.Status, error) {
	return "", nil // the merchant's getStatus call
}
