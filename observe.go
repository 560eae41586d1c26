package cofidis

import (
	"context"
	"errors"
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
	// transaction (ChannelReconciliation: a delivery with no request). The
	// context it returns is the one the rest of the request runs on, the
	// callbacks' included: a span started here is the parent of the calls
	// below.
	StartRequest(ctx context.Context, ch Channel) context.Context
	// EndRequest is called once per StartRequest, with what became of the
	// request: for a notification before the answer is written, for a
	// redirect once the callback (or the RedirectErrorFunc) wrote it. A
	// request a handler aborts with panic(http.ErrAbortHandler) ends with
	// OutcomeFailed and an error. Observers end in the reverse order of
	// their start, as nested spans do.
	EndRequest(ctx context.Context, rep Report)
	// StartCall is called before each call to the merchant's code (the
	// callback, the Verifier, each Store method) and returns the context
	// the call runs on.
	StartCall(ctx context.Context, call Call) context.Context
	// EndCall is called when that call returned, with how long it took and
	// its error (a recovered panic included; an abort with
	// panic(http.ErrAbortHandler) too), in the reverse order of StartCall.
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
	// HTTPStatus is the status the request was answered with: the
	// Router's, or for a redirect the one its callback (or the
	// RedirectErrorFunc) wrote, 200 if it wrote a body without one. 0 for
	// a reconciliation, which answers nobody.
	HTTPStatus int
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

// requestState is what the Router keeps of an observed request, in its
// context, so that it ends exactly once.
type requestState struct{ ended bool }

type requestStateKey struct{}

// errAborted is what observers see of a request, or a call, that a handler
// aborted with panic(http.ErrAbortHandler).
var errAborted = errors.New("cofidis: aborted with http.ErrAbortHandler")

// startRequest starts observing r, returning it with the observers'
// context. Without observers it returns r itself, at no cost.
func (os observers) startRequest(r *http.Request, ch Channel) *http.Request {
	if len(os) == 0 {
		return r
	}
	return r.WithContext(os.startContext(r.Context(), ch))
}

// startContext starts observing a delivery, returning the observers'
// context; a reconciliation, which has no request, starts here.
func (os observers) startContext(ctx context.Context, ch Channel) context.Context {
	if len(os) == 0 {
		return ctx
	}
	ctx = context.WithValue(ctx, requestStateKey{}, &requestState{})
	for _, o := range os {
		ctx = o.StartRequest(ctx, ch)
	}
	return ctx
}

// endRequest ends the request for the observers with a copy of ev (nil
// when there is none), made only when there are observers: a pointer to
// the Router's own event would make every request allocate it. A request
// ends once; a second end is ignored.
func (os observers) endRequest(ctx context.Context, ch Channel, ev *Event, o Outcome, err error, status int) {
	if len(os) == 0 {
		return
	}
	if st, ok := ctx.Value(requestStateKey{}).(*requestState); ok {
		if st.ended {
			return
		}
		st.ended = true
	}
	rep := Report{Channel: ch, Outcome: o, Err: err, HTTPStatus: status}
	if ev != nil {
		e := *ev
		rep.Event = &e
	}
	for i := len(os) - 1; i >= 0; i-- {
		os[i].EndRequest(ctx, rep)
	}
}

// endAborted, deferred where a request starts, ends a request that a
// handler aborted with panic(http.ErrAbortHandler), and panics on.
func (os observers) endAborted(ctx context.Context, ch Channel) {
	if v := recover(); v != nil {
		os.endRequest(ctx, ch, nil, OutcomeFailed, errAborted, 0)
		panic(v)
	}
}

// call runs fn as call, observed. fn recovers the panics of the merchant's
// code itself; only an abort with panic(http.ErrAbortHandler) comes
// through, which ends the call and panics on.
func (os observers) call(ctx context.Context, call Call, fn func(context.Context) error) (err error) {
	if len(os) == 0 {
		return fn(ctx)
	}
	for _, o := range os {
		ctx = o.StartCall(ctx, call)
	}
	start := time.Now()
	defer func() {
		v := recover()
		if v != nil {
			err = errAborted
		}
		elapsed := time.Since(start)
		for i := len(os) - 1; i >= 0; i-- {
			os[i].EndCall(ctx, call, elapsed, err)
		}
		if v != nil {
			panic(v)
		}
	}()
	return fn(ctx)
}
