package redisstore_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/redisstore"
)

// A store on a Redis Cluster, with the client settings the package
// documentation recommends and measures.
func ExampleNew_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"redis-0:6379", "redis-1:6379", "redis-2:6379"},
		// A master that died sends no redirect: refresh the view of the
		// cluster every second (default 60s) to find its replica.
		ClusterStateReloadInterval: time.Second,
		// Give up on a hung node well within the Router's bound on a
		// store call (5s), leaving room for retries.
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		ContextTimeoutEnabled: true,
		// Keep MaxRedirects (3), and ReadOnly, RouteByLatency and
		// RouteRandomly (off), at their defaults.
	})
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.Options{Prefix: "cofidis:prod:"})
	if err != nil {
		log.Fatal(err)
	}
	_ = cofidis.WithIdempotency(store) // on every replica's Router
}

// Reconciliation (Cofidis' 50-minute rule) keeps its due list in the same
// store: every replica passes it to WithIdempotency, adds
// WithReconciliation, and runs the reconciler; each due transaction goes to
// one replica at a time.
func Example_reconciliation() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.Options{Prefix: "cofidis:prod:"})
	if err != nil {
		log.Fatal(err)
	}
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		log.Fatal(err)
	}
	getStatus := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		return "", errors.New("call Cofidis' getStatus here")
	})
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders")
		},
		func(ctx context.Context, ev cofidis.Event) error { return nil }, // every decision, reconciled ones too
		cofidis.WithVerifier(getStatus),
		cofidis.WithIdempotency(store),
		cofidis.WithReconciliation(cofidis.ReconcileOptions{}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = rt.RunReconciler(ctx) }() // on every replica
	// After each successful initialize, as the customer is sent to the
	// journey:
	key := cofidis.TransactionKey{ /* as initialize got it */ }
	if err := rt.Track(ctx, key, time.Now()); err != nil {
		log.Print(err) // the transaction would not be reconciled: retry, or alert
	}
}
