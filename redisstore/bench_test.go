package redisstore_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis/redisstore"
)

// BenchmarkRouter measures a Router deduplicating through the store, on one
// redis-server (REDIS_ADDR) and on a Redis Cluster (REDIS_CLUSTER_ADDRS):
// to_confirm notifications and redirects served in-process (ServeHTTP, no
// HTTP connection) by 16 goroutines per CPU, with callbacks that do
// nothing. It reports the Router's requests per second and the Redis round
// trips per request, the cluster's background refreshes of its view
// (CLUSTER SLOTS) included.
//
//	first      each request a new decision: claim, then complete
//	duplicate  each request a decision already done: claim only
//	redirect   each request a redirect of a decision already done: peek
func BenchmarkRouter(b *testing.B) {
	backends := []struct {
		name    string
		connect func(b *testing.B) (redis.Scripter, func() int64)
	}{
		{"single", func(b *testing.B) (redis.Scripter, func() int64) {
			rdb := newClient(b)
			c := &commandCounter{}
			rdb.AddHook(c)
			return rdb, func() int64 { return c.n.Swap(0) }
		}},
		{"cluster", func(b *testing.B) (redis.Scripter, func() int64) {
			c := newNodeCounter()
			rdb := newClusterClient(b, c.counting)
			return rdb, func() int64 { return roundTrips(c.take(), true) }
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			rdb, take := be.connect(b)
			h := newDeliveryHandlers(b, newStore(b, rdb, redisstore.Options{TTL: 10 * time.Minute}))
			// Decisions already done, spread over the slots: the
			// duplicates and redirects cycle through them.
			done := make([]string, 256)
			for i := range done {
				done[i] = rand.Text()[:12]
				if code := h.post(b, h.notify, done[i]); code != http.StatusOK {
					b.Fatalf("warm-up: answered %d", code)
				}
			}
			// New decisions are numbered across the benchmark's runs (it
			// runs again with a larger b.N), so none repeats.
			run, seq := rand.Text()[:8], atomic.Int64{}
			cases := []struct {
				name string
				h    http.Handler
				txn  func(i int64) string
			}{
				{"first", h.notify, func(int64) string { return fmt.Sprintf("%s-%d", run, seq.Add(1)) }},
				{"duplicate", h.notify, func(i int64) string { return done[i%int64(len(done))] }},
				{"redirect", h.redirect, func(i int64) string { return done[i%int64(len(done))] }},
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					var next, failed atomic.Int64
					b.SetParallelism(16)
					take()
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if h.post(b, c.h, c.txn(next.Add(1))) != http.StatusOK {
								failed.Add(1)
							}
						}
					})
					b.StopTimer()
					if n := failed.Load(); n > 0 {
						b.Fatalf("%d requests not answered 200", n)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
					b.ReportMetric(float64(take())/float64(b.N), "roundtrips/op")
				})
			}
		})
	}
}
