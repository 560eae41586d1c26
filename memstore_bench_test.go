package cofidis_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
)

// BenchmarkMemoryStore_bytesPerTransaction fills a MemoryStore with 1M
// completed transactions, as a receiver's would be after a busy week, and
// reports the live heap it holds per transaction ("B/txn"), after a
// garbage collection. Each transaction is a realistic identity (merchantId,
// a 10-character id, a date) with one completed to_confirm; the second
// figure, B/txn-3, has three actions (pending, pending/signed, to_confirm).
// BENCHMARKS.md holds the figures; the target is at most 256 B/txn.
func BenchmarkMemoryStore_bytesPerTransaction(b *testing.B) {
	for _, tc := range []struct {
		name    string
		actions []cofidis.ActionKey
	}{
		{"one action", []cofidis.ActionKey{{Action: "to_confirm", Status: cofidis.StatusToConfirm, Rank: 4}}},
		{"three actions", []cofidis.ActionKey{
			{Action: "pending", Status: cofidis.StatusPending, Rank: 3},
			{Action: "pending/signed", Status: cofidis.StatusPending, Rank: 3},
			{Action: "to_confirm", Status: cofidis.StatusToConfirm, Rank: 4},
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			// One fill, whatever -benchtime: the figure is a size, not a
			// time, and a fill of 1M takes seconds.
			perTxn := storeFootprint(b, 1_000_000, tc.actions)
			for b.Loop() {
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(perTxn, "B/txn")
		})
	}
}

// storeFootprint returns the live heap a MemoryStore holds per transaction
// once n transactions completed actions.
func storeFootprint(tb testing.TB, n int, actions []cofidis.ActionKey) float64 {
	ctx := context.Background()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	s := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
	for i := range n {
		// The identity as TransactionID.String builds it, allocated per
		// transaction as a request's would be.
		txn := "020280098/" + fmt.Sprintf("T%09d", i) + "/20260227"
		for _, a := range actions {
			a.Transaction = txn
			res, err := s.Claim(ctx, a, time.Minute)
			if err != nil || res.State != cofidis.Claimed {
				tb.Fatalf("claim: %v %v", res.State, err)
			}
			if err := s.Complete(ctx, a, res.Token); err != nil {
				tb.Fatal(err)
			}
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if s.Len() != n {
		tb.Fatalf("%d transactions held, want %d", s.Len(), n)
	}
	runtime.KeepAlive(s)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// BenchmarkRouterIdempotent is BenchmarkRouterNotification with
// WithIdempotency(MemoryStore): each iteration a new transaction, claimed
// and completed.
func BenchmarkRouterIdempotent(b *testing.B) {
	rt := benchRouter(b, cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})))
	benchUnique(b, rt)
}

// BenchmarkRouterUnique is BenchmarkRouterNotification with a new
// transaction each iteration, the baseline of BenchmarkRouterIdempotent.
func BenchmarkRouterUnique(b *testing.B) {
	benchUnique(b, benchRouter(b))
}

// benchUnique serves a new transaction each iteration. Each request's
// context is cancellable and cancelled once served, as net/http's are, so
// that deriving a context from it costs what it does in a server.
func benchUnique(b *testing.B, h http.Handler) {
	template := benchBody(b)
	const id = "2YgKoUd4DB"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := replaceID(template, id, fmt.Sprintf("%010d", i))
		w, r := benchRequest(body)
		ctx, cancel := context.WithCancel(r.Context())
		h.ServeHTTP(w, r.WithContext(ctx))
		cancel()
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func replaceID(body, from, to string) string {
	for i := 0; i+len(from) <= len(body); i++ {
		if body[i:i+len(from)] == from {
			return body[:i] + to + body[i+len(from):]
		}
	}
	panic("no id in the body")
}
