package otelcofidis

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel/attribute"
)

// TestSetCache: a key's series is built once, and the cache stops growing
// at maxCachedSets, building past it on every call.
func TestSetCache(t *testing.T) {
	var c setCache[int]
	builds := 0
	build := func(k int) attribute.Set {
		builds++
		return attribute.NewSet(attribute.Int("k", k))
	}
	first := c.get(1, build)
	assert.Same(t, first, c.get(1, build), "a cached key")
	assert.Equal(t, 1, builds)
	assert.Len(t, first.add, 1)
	assert.Len(t, first.record, 1)

	for k := 2; k <= maxCachedSets+10; k++ {
		c.get(k, build)
	}
	assert.Len(t, *c.m.Load(), maxCachedSets)
	builds = 0
	past := c.get(maxCachedSets+5, build)
	assert.NotSame(t, past, c.get(maxCachedSets+5, build), "past the bound, built each time")
	assert.Equal(t, 2, builds)
	assert.Same(t, first, c.get(1, build), "what was cached stays")
}

// TestSetCacheConcurrent: readers and writers at once, for the race
// detector; every goroutine gets the one series of each key.
func TestSetCacheConcurrent(t *testing.T) {
	var c setCache[int]
	build := func(k int) attribute.Set { return attribute.NewSet(attribute.Int("k", k)) }
	got := make([][]*series, 4)
	var wg sync.WaitGroup
	for g := range got {
		wg.Go(func() {
			for k := range 50 {
				got[g] = append(got[g], c.get(k, build))
			}
		})
	}
	wg.Wait()
	for g := range got {
		for k, s := range got[g] {
			assert.Same(t, got[0][k], s, "goroutine %d, key %d", g, k)
		}
	}
}
