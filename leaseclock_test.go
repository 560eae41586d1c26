package cofidis

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLeaseClock_tick(t *testing.T) {
	t.Parallel()
	c := newLeaseClock(time.Minute) // steps of 600 ms
	require.Equal(t, 600*time.Millisecond, c.step)
	now := time.Now()
	deadline := now.Add(57 * time.Second)

	first := c.tick(deadline, now)
	require.NotNil(t, first)
	assert.False(t, first.at.After(deadline), "never later than the deadline")
	assert.Less(t, deadline.Sub(first.at), c.step, "less than a step earlier")
	d, ok := first.ctx.Deadline()
	assert.True(t, ok)
	assert.True(t, d.Equal(first.at))

	same := c.tick(first.at.Add(c.step-time.Nanosecond), now.Add(time.Millisecond))
	assert.Same(t, first, same, "deadlines within one step share their context")
	next := c.tick(first.at.Add(c.step), now)
	require.NotNil(t, next)
	assert.NotSame(t, first, next, "the next step has its own")
	assert.True(t, next.at.Equal(first.at.Add(c.step)))

	assert.Nil(t, c.tick(now.Add(2*c.step), now), "too close to now for a shared, earlier deadline")
	assert.Equal(t, time.Millisecond, newLeaseClock(10*time.Millisecond).step, "steps of at least a millisecond")
}

// TestLeaseContext_behavesAsWithDeadline: a callback's context on a shared
// deadline answers as a context.WithDeadline would, for itself and for the
// contexts derived from it, and keeps its values; cancelling it (the
// callback returned) leaves the shared deadline alone.
func TestLeaseContext_behavesAsWithDeadline(t *testing.T) {
	t.Parallel()
	type key struct{}
	c := newLeaseClock(time.Second) // steps of 10 ms
	tick := c.tick(time.Now().Add(300*time.Millisecond), time.Now())
	require.NotNil(t, tick)
	h := &claimHold{key: ActionKey{Transaction: "m/t/d", Action: "to_confirm"}, token: "tok", deadline: tick.at}
	h.cbCtx = claimContext{Context: context.WithValue(context.Background(), key{}, "v"), hold: h, detached: true}
	h.leaseCtx = leaseContext{tick: tick.ctx, values: &h.cbCtx}
	ctx, cancel := context.WithCancel(&h.leaseCtx) // as callbackContext does
	defer cancel()

	d, ok := ctx.Deadline()
	require.True(t, ok)
	assert.True(t, d.Equal(tick.at))
	assert.NoError(t, ctx.Err())
	assert.NoError(t, context.Cause(ctx))
	require.NotNil(t, ctx.Done())
	assert.Equal(t, "v", ctx.Value(key{}))
	claim, ok := ClaimFromContext(ctx)
	require.True(t, ok)
	assert.Equal(t, "tok", claim.Token)
	assert.True(t, claim.Deadline.Equal(d))

	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	later, cancelLater := context.WithTimeout(ctx, time.Hour)
	defer cancelLater()
	afterFunc := make(chan struct{})
	context.AfterFunc(ctx, func() { close(afterFunc) })
	released, cancelReleased := context.WithCancel(ctx)
	cancelReleased() // a child cancelled early leaves its parent alone
	assert.ErrorIs(t, released.Err(), context.Canceled)
	other, cancelOther := context.WithCancel(&leaseContext{tick: tick.ctx, values: &h.cbCtx})
	cancelOther() // another callback on the same tick returned
	assert.ErrorIs(t, other.Err(), context.Canceled)
	assert.ErrorIs(t, context.Cause(other), context.Canceled)
	assert.NoError(t, ctx.Err(), "the shared deadline is left alone")
	assert.NoError(t, tick.ctx.Err())

	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the context did not end at its deadline")
	}
	assert.False(t, time.Now().Before(d), "ended at its deadline, not before")
	for name, c := range map[string]context.Context{"itself": ctx, "a child": child, "a child with a later deadline": later} {
		<-c.Done()
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded, name)
		assert.ErrorIs(t, context.Cause(c), context.DeadlineExceeded, name)
	}
	<-afterFunc
	dl, _ := later.Deadline()
	assert.True(t, dl.Equal(d), "a later deadline is capped by the parent's")
	assert.Equal(t, "v", child.Value(key{}))
}
