package cofidis

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// NotificationFunc handles a server notification. Return nil once the event
// is durably handled (answered 200); return an error to have it retried
// (answered 500); wrap the error with Permanent when a retry can never help
// (answered 200 and logged). A panic is recovered and answered 500.
//
// The same decision can arrive several times (redirect, success and pending
// notifications): without WithIdempotency the function must be idempotent.
//
// ctx carries the request's values. Without WithIdempotency it is the
// request's context. With it, ctx carries the claim (ClaimFromContext) and
// ends a margin before the claim's lease (see WithLease), or at an earlier
// deadline set on the request; it is not cancelled when the sender hangs
// up, so that a claimed decision is carried through rather than abandoned
// half done: once recorded, the sender's retry is answered as a duplicate.
type NotificationFunc func(ctx context.Context, ev Event) error

// serveNotification is the whole life of a notification, from the request
// to the answer: source, decoding, the idempotency claim, verification,
// dispatch, and settling the claim.
func (rt *Router) serveNotification(w http.ResponseWriter, r *http.Request, set EndpointSet, inferred bool) {
	ctx := r.Context()
	addr, addrErr := rt.clientAddr(r)
	if err := rt.checkSource(addr, addrErr); err != nil {
		rt.rejectNotification(w, r, err)
		return
	}
	if fromBrowser(r) {
		// Only Cofidis' servers post notifications; a browser here is a
		// page on some site posting a forged one (a fetch, which a shared
		// URL does not take for the customer's navigation either), or a
		// misrouted redirect.
		rt.rejectNotification(w, r, newError(ErrBrowserRequest, "",
			"the request carries a browser's Fetch Metadata headers; only Cofidis' servers post notifications"))
		return
	}
	ev, err := rt.decode(r, ChannelNotification, set, inferred, addr)
	if err != nil {
		rt.rejectNotification(w, r, err)
		return
	}

	d := rt.deliver(ctx, r, ev)
	if d.outcome == OutcomeInProgress {
		// Never 2xx for what is not done yet: if the holder fails, this
		// retry is what processes the event.
		w.Header().Set("Retry-After", retryAfter(d.retryAfter))
	}
	writeStatus(w, notificationStatus(d.outcome, d.err))
}

// notificationStatus is the answer to a notification whose delivery ended
// with outcome o (and err).
func notificationStatus(o Outcome, err error) int {
	switch o {
	case OutcomeFailed:
		return http.StatusInternalServerError
	case OutcomeInProgress:
		return http.StatusServiceUnavailable
	case OutcomeRejected, OutcomeStoreFailed:
		return HTTPStatus(err)
	}
	return http.StatusOK // processed, permanent, duplicate, stale, unrecorded
}

// delivered is what became of a decision in deliver, for the channel that
// brought it to answer.
type delivered struct {
	outcome Outcome
	// err is the rejection (OutcomeRejected, OutcomeStoreFailed) or the
	// callback's failure (OutcomeFailed, OutcomePermanent).
	err error
	// retryAfter is how long another delivery still holds the claim
	// (OutcomeInProgress).
	retryAfter time.Duration
}

// deliver takes a decoded decision through the pipeline that notifications
// and reconciliations share: the idempotency claim, verification (unless
// ev comes from the Verifier), dispatch to the notification callback,
// settling the claim, and reporting it (logs, hooks, observers). r is the
// request that brought ev, nil for a reconciliation.
func (rt *Router) deliver(ctx context.Context, r *http.Request, ev Event) delivered {
	// Claim the decision before anything costly: a duplicate of a done
	// action is answered without calling the Verifier or the callback.
	var hold *claimHold
	if rt.cfg.store != nil {
		cl, h, err := rt.claim(ctx, ev.ActionKey())
		if err != nil {
			err = storeFailed(err)
			rt.refused(ctx, r, ev.Channel, &ev, err, nil)
			return delivered{outcome: OutcomeStoreFailed, err: err}
		}
		annotate(&ev, cl)
		switch cl.State {
		case Done:
			ev.Duplicate = true
			rt.logs.log(ctx, logClassDuplicate, slog.LevelInfo, logMessages[ev.Channel].duplicate, slog.Any("event", ev))
			rt.observe(ctx, ev, OutcomeDuplicate, nil)
			return delivered{outcome: OutcomeDuplicate}
		case InProgress:
			ev.Duplicate = true
			rt.logs.log(ctx, logClassInProgress, slog.LevelInfo, logMessages[ev.Channel].inProgress, slog.Any("event", ev))
			rt.observe(ctx, ev, OutcomeInProgress, nil)
			return delivered{outcome: OutcomeInProgress, retryAfter: cl.RetryAfter}
		}
		hold = h
		defer hold.abandon()
		if ev.Stale && !rt.cfg.deliverStale {
			return rt.ackStale(ctx, ev, hold, slog.String("furthestStatus", string(ev.FurthestStatus)))
		}
	}

	if !ev.Verified {
		if err := rt.verify(ctx, &ev); err != nil {
			if errors.Is(err, ErrNotVerified) && superseded(ev.Status, ev.VerifiedStatus) {
				// Cofidis is already further along: this notification is
				// stale, and retrying it could never succeed.
				ev.Stale = true
				return rt.ackStale(ctx, ev, hold, slog.String("verifiedStatus", string(ev.VerifiedStatus)))
			}
			hold.release(ctx)
			rt.refused(ctx, r, ev.Channel, &ev, err, nil)
			return delivered{outcome: OutcomeRejected, err: err}
		}
	}

	err := rt.dispatchNotification(ctx, ev, hold, r != nil)
	switch {
	case err == nil:
		outcome := OutcomeProcessed
		if !hold.record(ctx, ev, true) {
			outcome = OutcomeUnrecorded
		}
		rt.observe(ctx, ev, outcome, nil)
		return delivered{outcome: outcome}
	case errors.Is(err, ErrPermanent):
		// Acknowledged, so done; but the merchant rejected the event (an
		// unknown order, a forgery): it must not move the furthest status.
		hold.record(ctx, ev, false)
		rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: callback failed permanently; acknowledged, will not be retried",
			slog.Any("event", ev), slog.String("error", err.Error()))
		rt.observe(ctx, ev, OutcomePermanent, err)
		return delivered{outcome: OutcomePermanent, err: err}
	default:
		hold.release(ctx)
		cbErr := rt.callbackFailed(ctx, r, ev, err, logMessages[ev.Channel].failed)
		rt.observe(ctx, ev, OutcomeFailed, cbErr)
		return delivered{outcome: OutcomeFailed, err: cbErr}
	}
}

// dispatchNotification calls the callback, turning a panic into an error.
// With a claim, the callback's context carries it (ClaimFromContext) and
// ends before the lease, so that a callback honouring it cannot run on
// while another delivery takes over. For a request (fromRequest), that
// context is not cancelled when the sender hangs up or the handler
// returns, only by the lease or an earlier deadline of the request's own:
// a claimed decision is carried through rather than abandoned half done,
// and the sender's retry is answered as a duplicate once it is recorded.
func (rt *Router) dispatchNotification(ctx context.Context, ev Event, hold *claimHold, fromRequest bool) (err error) {
	if hold != nil {
		deadline := hold.deadline
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d // kept when detached
		}
		var cancel context.CancelFunc
		hold.cbCtx = claimContext{Context: ctx, hold: hold, detached: fromRequest}
		ctx, cancel = context.WithDeadline(&hold.cbCtx, deadline)
		defer cancel()
		defer hold.callbackReturned()
	}
	return rt.cfg.observers.call(ctx, CallCallback, func(ctx context.Context) (err error) {
		defer catchPanic(&err)
		return rt.onNotification(ctx, ev)
	})
}

// logMessages are the log lines of deliver, by the channel of the event:
// what the sender is told differs.
var logMessages = [...]struct{ duplicate, inProgress, stale, failed string }{
	ChannelNotification: {
		duplicate:  "cofidis: duplicate notification acknowledged without dispatch",
		inProgress: "cofidis: notification being processed by another delivery; answered 503 for a retry",
		stale:      "cofidis: stale notification acknowledged without dispatch",
		failed:     "cofidis: callback failed; answered 500 for a retry",
	},
	ChannelReconciliation: {
		duplicate:  "cofidis: reconciled decision already processed; not dispatched",
		inProgress: "cofidis: reconciled decision being processed by another delivery; to be checked again",
		stale:      "cofidis: reconciled decision stale; not dispatched",
		failed:     "cofidis: callback failed on a reconciled decision; to be retried",
	},
}

// ackStale acknowledges a stale decision without dispatch, completing its
// claim without moving the furthest status; why names the status it is
// stale against.
func (rt *Router) ackStale(ctx context.Context, ev Event, hold *claimHold, why slog.Attr) delivered {
	hold.recordStale(ctx, ev)
	rt.logs.log(ctx, logClassStale, slog.LevelInfo, logMessages[ev.Channel].stale, slog.Any("event", ev), why)
	rt.observe(ctx, ev, OutcomeStale, nil)
	return delivered{outcome: OutcomeStale}
}

// superseded reports whether the verified status lies strictly later in the
// documented flow than the claimed one.
func superseded(claimed, verified Status) bool {
	c, v := claimed.Rank(), verified.Rank()
	return c > 0 && v > c
}

func (rt *Router) rejectNotification(w http.ResponseWriter, r *http.Request, err error) {
	status := rt.refused(r.Context(), r, ChannelNotification, nil, err, nil)
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
