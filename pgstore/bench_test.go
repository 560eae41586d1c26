package pgstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/pgstore"
)

// BenchmarkRouter measures a Router deduplicating through the store on the
// PostgreSQL at PGSTORE_URL: to_confirm notifications and redirects served
// in-process (ServeHTTP, no HTTP connection) by 16 goroutines per CPU,
// with callbacks that do nothing, over a pool of 16 connections. It
// reports the Router's requests per second and the round trips to the
// database per request (writes on the pool's connections: pgx sends each
// statement in one write).
//
//	first      each request a new decision: claim, then complete
//	duplicate  each request a decision already done: claim only
//	redirect   each request a redirect of a decision already done: peek
func BenchmarkRouter(b *testing.B) {
	pool, writes := countingPool(b, 16)
	notify, redirect := benchHandlers(b, newStore(b, pool, pgstore.Options{}))
	// Decisions already done: the duplicates and redirects cycle through
	// them.
	done := make([]string, 256)
	for i := range done {
		done[i] = rand.Text()[:12]
		if code := benchPost(notify, done[i]); code != http.StatusOK {
			b.Fatalf("warm-up: answered %d", code)
		}
	}
	// New decisions are numbered across the benchmark's runs (it runs
	// again with a larger b.N), so none repeats.
	run, seq := rand.Text()[:8], atomic.Int64{}
	cases := []struct {
		name string
		h    http.Handler
		txn  func(i int64) string
	}{
		{"first", notify, func(int64) string { return fmt.Sprintf("%s-%d", run, seq.Add(1)) }},
		{"duplicate", notify, func(i int64) string { return done[i%int64(len(done))] }},
		{"redirect", redirect, func(i int64) string { return done[i%int64(len(done))] }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var next, failed atomic.Int64
			b.SetParallelism(16)
			writes.Store(0)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if benchPost(c.h, c.txn(next.Add(1))) != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests not answered 200", n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(writes.Load())/float64(b.N), "roundtrips/op")
		})
	}
}

// benchHandlers returns the notificationUrlSuccess and returnUrlSuccess
// routes of a Router deduplicating through store, without a Verifier: the
// store's round trips only.
func benchHandlers(b *testing.B, store cofidis.Store) (notify, redirect http.Handler) {
	b.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		b.Fatal(err)
	}
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
			w.WriteHeader(http.StatusOK)
			return nil
		},
		func(context.Context, cofidis.Event) error { return nil },
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithIdempotency(store), cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rt.Routes() {
		if r.Endpoints.Has(cofidis.EndpointNotificationSuccess) {
			notify = r.Handler
		}
		if r.Endpoints.Has(cofidis.EndpointReturnSuccess) {
			redirect = r.Handler
		}
	}
	if notify == nil || redirect == nil {
		b.Fatal("no route for notificationUrlSuccess or returnUrlSuccess")
	}
	return notify, redirect
}

// benchPost delivers a to_confirm of merchantTxn to h and returns the
// answer's status code.
func benchPost(h http.Handler, merchantTxn string) int {
	body := url.Values{
		"transactionKey": {`{"merchantCountry":"fr","providerId":"p","providerTransactionId":null,"merchantId":"020280098",` +
			`"merchantTransactionId":"` + merchantTxn + `","merchantTransactionDate":"20260227"}`},
		"transactionStatus": {"to_confirm"},
	}.Encode()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}
