package redisstore_test

import (
	"log"
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
