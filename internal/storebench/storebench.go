// Package storebench is what the store modules' tests share to drive a
// cofidis.Router deduplicating through their Store: its two delivery
// routes, a to_confirm posted to one, and BenchmarkRouter's body, so that
// redisstore and pgstore report the same figures, measured the same way.
// It is internal: the store modules import it by path, as the core's
// subdirectories.
package storebench

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
)

// Handlers returns the notificationUrlSuccess and returnUrlSuccess routes
// of a Router deduplicating through store, without a Verifier (the store's
// round trips only), with callbacks that do nothing but answer 200.
func Handlers(tb testing.TB, store cofidis.Store) (notify, redirect http.Handler) {
	tb.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		tb.Fatal(err)
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
		tb.Fatal(err)
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
		tb.Fatal("no route for notificationUrlSuccess or returnUrlSuccess")
	}
	return notify, redirect
}

// Post delivers a to_confirm of merchantTxn to h, as Cofidis posts it, and
// returns the answer's status code.
func Post(h http.Handler, merchantTxn string) int {
	body := url.Values{
		"transactionKey": {`{"merchantCountry":"fr","providerId":"p","providerTransactionId":null,"merchantId":"020280098",` +
			`"merchantTransactionId":"` + merchantTxn + `","merchantTransactionDate":"20260227"}`},
		"transactionStatus": {"to_confirm"},
	}.Encode()
	r := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// Router is the body of a store module's BenchmarkRouter: a Router on
// store serving to_confirm notifications and redirects in-process
// (ServeHTTP, no HTTP connection) from 16 goroutines per CPU. It reports
// requests per second and, from roundTrips (the count since its last
// call), round trips to the store per request:
//
//	first      each request a new decision: claim, then complete
//	duplicate  each request a decision already done: claim only
//	redirect   each request a redirect of a decision already done: peek
func Router(b *testing.B, store cofidis.Store, roundTrips func() int64) {
	notify, redirect := Handlers(b, store)
	// Decisions already done: the duplicates and redirects cycle through
	// them.
	done := make([]string, 256)
	for i := range done {
		done[i] = rand.Text()[:12]
		if code := Post(notify, done[i]); code != http.StatusOK {
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
			roundTrips()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if Post(c.h, c.txn(next.Add(1))) != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests not answered 200", n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(roundTrips())/float64(b.N), "roundtrips/op")
		})
	}
}
