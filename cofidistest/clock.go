package cofidistest

import (
	"sync"
	"time"
)

// Clock is a fake clock, so that tests skip the 50 minutes of Cofidis' rule
// (cofidis.WithReconciliation) and the leases and retention of stores: give
// its Now to cofidis.WithClock and cofidis.MemoryStoreOptions.Clock, then
// Advance it. It is safe for concurrent use; build one with NewClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
