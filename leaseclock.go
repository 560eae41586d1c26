package cofidis

import (
	"context"
	"sync/atomic"
	"time"
)

// leaseClockSteps is how many steps of a lease the lease clock tells apart:
// callbacks whose deadlines fall within the same hundredth of the lease
// share one deadline, rounded down.
const leaseClockSteps = 100

// leaseClock gives the notification callbacks of a Router their deadlines.
// A context.WithDeadline per callback arms a runtime timer and stops it,
// per notification; callbacks claimed within the same step instead share
// one deadline context, its time rounded down to the step, so that a busy
// receiver arms one timer per step rather than one per notification. Each
// callback still gets a context of its own (a context.WithCancel of the
// shared one, through a leaseContext), cancelled when it returns. Rounding
// down only ends a callback earlier: never after its lease's end minus the
// completion margin.
type leaseClock struct {
	step time.Duration
	cur  atomic.Pointer[leaseTick] // the latest step's; replaced as time moves on
}

// leaseTick is the shared deadline context of one step. Its deadline
// cancels it; nothing else does.
type leaseTick struct {
	ctx    context.Context
	cancel context.CancelFunc // kept, unused: the deadline releases it
	at     time.Time
	atNano int64 // at.UnixNano()
}

// newLeaseClock returns the clock for leases of length lease.
func newLeaseClock(lease time.Duration) *leaseClock {
	return &leaseClock{step: max(lease/leaseClockSteps, time.Millisecond)}
}

// tick returns the shared deadline context for a callback that must end by
// deadline, or nil when the rounded deadline would come within two steps of
// now (a claim granted late in its lease): that callback gets a deadline of
// its own, not one cut shorter by a step.
func (c *leaseClock) tick(deadline, now time.Time) *leaseTick {
	step := int64(c.step)
	n := deadline.UnixNano()
	n -= n % step // in integers: Time.Truncate costs more than the rest
	if n-now.UnixNano() < 2*step {
		return nil
	}
	if t := c.cur.Load(); t != nil && t.atNano == n {
		return t
	}
	at := time.Unix(0, n)
	// Never cancelled but by its deadline: callbacks use it until then.
	ctx, cancel := context.WithDeadline(context.Background(), at) //nolint:gosec // G118: the deadline releases it
	t := &leaseTick{ctx: ctx, cancel: cancel, at: at, atNano: n}
	c.cur.Store(t) // a racing caller may store its own: both are correct
	return t
}

// leaseContext is the parent of a notification callback's context on a
// shared deadline: Deadline, Done and Err are the tick's, values are the
// claim's and the request's (its claimContext). The tick answers first for
// the keys it knows, which are only the context package's own: so a
// context derived from this one registers with the tick's cancellation and
// is cancelled with it, with DeadlineExceeded, as under a
// context.WithDeadline, and context.Cause reports that.
type leaseContext struct {
	tick   context.Context
	values *claimContext
}

// Deadline implements context.Context.
func (c *leaseContext) Deadline() (time.Time, bool) { return c.tick.Deadline() }

// Done implements context.Context.
func (c *leaseContext) Done() <-chan struct{} { return c.tick.Done() }

// Err implements context.Context.
func (c *leaseContext) Err() error { return c.tick.Err() }

// Value implements context.Context.
func (c *leaseContext) Value(key any) any {
	if v := c.tick.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}
