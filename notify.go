package cofidis

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

// NotificationFunc handles a server notification. Return nil once the event
// is durably handled (answered 200); return an error to have it retried
// (answered 500); wrap the error with Permanent when a retry can never help
// (answered 200 and logged). A panic is recovered and answered 500.
//
// The same decision can arrive several times (redirect, success and pending
// notifications): without WithIdempotency the function must be idempotent.
type NotificationFunc func(ctx context.Context, ev Event) error

// serveNotification is the whole life of a notification, from the request
// to the answer: source, decoding, the idempotency claim, verification,
// dispatch, and settling the claim.
func (rt *Router) serveNotification(w http.ResponseWriter, r *http.Request, set EndpointSet, inferred bool) {
	ctx := r.Context()
	addr, addrErr := rt.clientAddr(r)
	if err := rt.checkSource(addr, addrErr); err != nil {
		rt.rejectNotification(w, r, nil, err)
		return
	}
	if fromBrowser(r) {
		// Only Cofidis' servers post notifications; a browser here is a
		// page on some site posting a forged one (a fetch, which a shared
		// URL does not take for the customer's navigation either), or a
		// misrouted redirect.
		rt.rejectNotification(w, r, nil, newError(ErrBrowserRequest, "",
			"the request carries a browser's Fetch Metadata headers; only Cofidis' servers post notifications"))
		return
	}
	ev, err := rt.decode(r, ChannelNotification, set, inferred, addr)
	if err != nil {
		rt.rejectNotification(w, r, nil, err)
		return
	}

	// Claim the decision before anything costly: a duplicate of a done
	// action is answered without calling the Verifier or the callback.
	hold, answered := rt.claimNotification(w, r, &ev)
	if answered {
		return
	}
	defer hold.abandon()
	if ev.Stale && !rt.cfg.deliverStale {
		hold.recordStale(ctx, ev)
		rt.ackStale(ctx, w, ev, slog.String("furthestStatus", string(ev.FurthestStatus)))
		return
	}

	if err := rt.verify(ctx, &ev); err != nil {
		if errors.Is(err, ErrNotVerified) && superseded(ev.Status, ev.VerifiedStatus) {
			// Cofidis is already further along: this notification is
			// stale, and retrying it could never succeed.
			ev.Stale = true
			hold.recordStale(ctx, ev)
			rt.ackStale(ctx, w, ev, slog.String("verifiedStatus", string(ev.VerifiedStatus)))
			return
		}
		hold.release(ctx)
		rt.rejectNotification(w, r, &ev, err)
		return
	}

	err = rt.dispatchNotification(ctx, ev, hold)
	switch {
	case err == nil:
		outcome := OutcomeProcessed
		if !hold.record(ctx, ev, true) {
			outcome = OutcomeUnrecorded
		}
		rt.observe(ctx, ev, outcome, nil)
		writeStatus(w, http.StatusOK)
	case errors.Is(err, ErrPermanent):
		// Acknowledged, so done; but the merchant rejected the event (an
		// unknown order, a forgery): it must not move the furthest status.
		hold.record(ctx, ev, false)
		rt.observe(ctx, ev, OutcomePermanent, err)
		rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: callback failed permanently; acknowledged, will not be retried",
			slog.Any("event", ev), slog.String("error", err.Error()))
		writeStatus(w, http.StatusOK)
	default:
		hold.release(ctx)
		cbErr := rt.callbackFailed(r, ev, err, "cofidis: callback failed; answered 500 for a retry")
		rt.observe(ctx, ev, OutcomeFailed, cbErr)
		writeStatus(w, http.StatusInternalServerError)
	}
}

// claimNotification claims the event's action in the store, if there is
// one, and flags ev with what the store knows. It returns true when it
// answered the request itself: a duplicate (200), an action another
// delivery holds (503 with Retry-After), or a store failure (503).
func (rt *Router) claimNotification(w http.ResponseWriter, r *http.Request, ev *Event) (*claimHold, bool) {
	if rt.cfg.store == nil {
		return nil, false
	}
	ctx := r.Context()
	cl, hold, err := rt.claim(ctx, ev.ActionKey())
	if err != nil {
		rt.refused(r, ChannelNotification, ev, storeFailed(err))
		writeStatus(w, http.StatusServiceUnavailable)
		return nil, true
	}
	annotate(ev, cl)
	switch cl.State {
	case Done:
		ev.Duplicate = true
		rt.logs.log(ctx, logClassDuplicate, slog.LevelInfo, "cofidis: duplicate notification acknowledged without dispatch", slog.Any("event", *ev))
		rt.observe(ctx, *ev, OutcomeDuplicate, nil)
		writeStatus(w, http.StatusOK)
		return nil, true
	case InProgress:
		// Never 2xx for what is not done yet: if the holder fails, this
		// retry is what processes the event.
		ev.Duplicate = true
		rt.logs.log(ctx, logClassInProgress, slog.LevelInfo, "cofidis: notification being processed by another delivery; answered 503 for a retry", slog.Any("event", *ev))
		rt.observe(ctx, *ev, OutcomeInProgress, nil)
		w.Header().Set("Retry-After", retryAfter(cl.RetryAfter))
		writeStatus(w, http.StatusServiceUnavailable)
		return nil, true
	}
	return hold, false
}

// dispatchNotification calls the callback, turning a panic into an error.
// With a claim, the callback's context carries it (ClaimFromContext) and
// ends before the lease, so that a callback honouring it cannot run on
// while another delivery takes over.
func (rt *Router) dispatchNotification(ctx context.Context, ev Event, hold *claimHold) (err error) {
	if hold != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.WithValue(ctx, claimContextKey{}, hold.claim()), hold.deadline)
		defer cancel()
		defer hold.callbackReturned()
	}
	return rt.cfg.observers.call(ctx, CallCallback, func(ctx context.Context) (err error) {
		defer catchPanic(&err)
		return rt.onNotification(ctx, ev)
	})
}

// ackStale acknowledges a stale notification (200) without dispatch; why
// names the status it is stale against.
func (rt *Router) ackStale(ctx context.Context, w http.ResponseWriter, ev Event, why slog.Attr) {
	rt.logs.log(ctx, logClassStale, slog.LevelInfo, "cofidis: stale notification acknowledged without dispatch", slog.Any("event", ev), why)
	rt.observe(ctx, ev, OutcomeStale, nil)
	writeStatus(w, http.StatusOK)
}

// superseded reports whether the verified status lies strictly later in the
// documented flow than the claimed one.
func superseded(claimed, verified Status) bool {
	c, v := claimed.Rank(), verified.Rank()
	return c > 0 && v > c
}

func (rt *Router) rejectNotification(w http.ResponseWriter, r *http.Request, ev *Event, err error) {
	status := rt.refused(r, ChannelNotification, ev, err)
	if errors.Is(err, ErrMethodNotAllowed) {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeStatus(w, status)
}

// fromBrowser reports whether a request carries the Fetch Metadata headers
// that browsers add to every request, which scripts cannot set and
// server-to-server clients do not send.
func fromBrowser(r *http.Request) bool {
	h := r.Header
	return h.Get("Sec-Fetch-Site") != "" || h.Get("Sec-Fetch-Mode") != "" || h.Get("Sec-Fetch-Dest") != ""
}
