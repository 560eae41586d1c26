package cofidis

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Observer watches a Router at work, for metrics and traces (the
// otelcofidis module is one): each request, from the moment it reaches a
// route to what became of it, and each call the Router makes to the
// merchant's code. Its methods run on the request's goroutine, in the order
// of the request's life; they must be safe for concurrent use, return
// quickly, and never write to the response.
type Observer interface {
	// StartRequest is called when a request reaches a route of the Router,
	// with the channel it is routed to, or reaches none (a 404, with
	// ChannelUnknown), and when a reconciliation asks getStatus about a
	// transaction (ChannelReconciliation: a delivery with no request). The context it returns is the one the rest of the
	// request runs on, the callbacks' included: a span started here is the
	// parent of the calls below.
	StartRequest(ctx context.Context, ch Channel) context.Context
	// EndRequest is called once per StartRequest, before the answer is
	// written, with what became of the request.
	EndRequest(ctx context.Context, rep Report)
	// StartCall is called before each call to the merchant's code (the
	// callback, the Verifier, each Store method) and returns the context
	// the call runs on.
	StartCall(ctx context.Context, call Call) context.Context
	// EndCall is called when that call returned, with how long it took and
	// its error (a recovered panic included).
	EndCall(ctx context.Context, call Call, elapsed time.Duration, err error)
}

// Report is what became of one request, as an Observer sees it.
type Report struct {
	// Channel is who posted: the channel the request was routed to, or
	// ChannelUnknown for a 404.
	Channel Channel
	// Event is the decoded event, nil when the request was refused before
	// it could be decoded (see Err). It contains the transaction's
	// identity, and RawStatus as posted: use Status.Label, not the raw
	// status, as a metric label.
	Event *Event
	// Outcome is what became of the event; OutcomeRejected when the
	// request was refused (see Err).
	Outcome Outcome
	// Err is why the request was refused (ErrorClass names its kind), or
	// the callback's failure for OutcomeFailed and OutcomePermanent; nil
	// otherwise.
	Err error
}

// Call names a call the Router makes to the merchant's code, for an
// Observer.
type Call uint8

// The calls an Observer sees.
const (
	// CallCallback is the notification or redirect callback.
	CallCallback Call = iota + 1
	// CallVerifier is the Verifier (getStatus).
	CallVerifier
	// CallStoreClaim is Store.Claim.
	CallStoreClaim
	// CallStoreComplete is Store.Complete (each attempt).
	CallStoreComplete
	// CallStoreRelease is Store.Release.
	CallStoreRelease
	// CallStorePeek is Store.Peek.
	CallStorePeek
	// CallStoreTrack is Tracker.Track.
	CallStoreTrack
	// CallStoreTakeDue is Tracker.TakeDue.
	CallStoreTakeDue
	// CallStoreReschedule is Tracker.Reschedule.
	CallStoreReschedule
	// CallStoreUntrack is Tracker.Untrack.
	CallStoreUntrack
)

// String returns the call's name for a metric label or a span name:
// "callback", "verifier", "store.claim", "store.complete",
// "store.release", "store.peek", "store.track", "store.take_due",
// "store.reschedule", "store.untrack".
func (c Call) String() string {
	switch c {
	case CallCallback:
		return "callback"
	case CallVerifier:
		return "verifier"
	case CallStoreClaim:
		return "store.claim"
	case CallStoreComplete:
		return "store.complete"
	case CallStoreRelease:
		return "store.release"
	case CallStorePeek:
		return "store.peek"
	case CallStoreTrack:
		return "store.track"
	case CallStoreTakeDue:
		return "store.take_due"
	case CallStoreReschedule:
		return "store.reschedule"
	case CallStoreUntrack:
		return "store.untrack"
	}
	return "Call(" + strconv.Itoa(int(c)) + ")"
}

// WithObserver adds an Observer. Observers given by several WithObserver
// options all run, in the order given.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		if o == nil {
			return optionError("WithObserver", "want a non-nil Observer")
		}
		c.observers = append(c.observers, o)
		return nil
	}
}

// observers is the Observers of a Router, called in turn.
type observers []Observer

// startRequest starts observing r, returning it with the observers'
// context. Without observers it returns r itself, at no cost.
func (os observers) startRequest(r *http.Request, ch Channel) *http.Request {
	if len(os) == 0 {
		return r
	}
	return r.WithContext(os.startContext(r.Context(), ch))
}

// startContext starts observing a delivery with no request (a
// reconciliation), returning the observers' context.
func (os observers) startContext(ctx context.Context, ch Channel) context.Context {
	for _, o := range os {
		ctx = o.StartRequest(ctx, ch)
	}
	return ctx
}

// endRequest ends the request for the observers with a copy of ev (nil
// when there is none), made only when there are observers: a pointer to
// the Router's own event would make every request allocate it.
func (os observers) endRequest(ctx context.Context, ch Channel, ev *Event, o Outcome, err error) {
	if len(os) == 0 {
		return
	}
	rep := Report{Channel: ch, Outcome: o, Err: err}
	if ev != nil {
		e := *ev
		rep.Event = &e
	}
	for _, obs := range os {
		obs.EndRequest(ctx, rep)
	}
}

// call runs fn as call, observed.
func (os observers) call(ctx context.Context, call Call, fn func(context.Context) error) error {
	if len(os) == 0 {
		return fn(ctx)
	}
	for _, o := range os {
		ctx = o.StartCall(ctx, call)
	}
	start := time.Now()
	err := fn(ctx)
	elapsed := time.Since(start)
	for _, o := range os {
		o.EndCall(ctx, call, elapsed, err)
	}
	return err
}
