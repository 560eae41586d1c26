package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis/internal/storebench"
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
// The sub-benchmarks are storebench.Router's: first, duplicate, redirect.
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
			rdb, roundTrips := be.connect(b)
			storebench.Router(b, newStore(b, rdb, redisstore.Options{TTL: 10 * time.Minute}), roundTrips)
		})
	}
}
