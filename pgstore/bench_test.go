package pgstore_test

import (
	"testing"

	"github.com/cofidis-go/cofidis/internal/storebench"
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
// The sub-benchmarks are storebench.Router's: first (a new decision: claim,
// then complete), duplicate (a decision already done: claim only) and
// redirect (a redirect of a decision already done: peek).
func BenchmarkRouter(b *testing.B) {
	pool, writes := countingPool(b, 16)
	storebench.Router(b, newStore(b, pool, pgstore.Options{}), func() int64 { return writes.Swap(0) })
}
