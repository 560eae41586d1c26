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
// notifications): the function must be idempotent.
type NotificationFunc func(ctx context.Context, ev Event) error

// NotificationHandler is an http.Handler for notificationUrlSuccess,
// notificationUrlPending and notificationUrlOther. See the package
// documentation for its status-code table.
type NotificationHandler struct {
	rc receiver
	fn NotificationFunc
}

// NewNotificationHandler returns a handler that decodes Cofidis' server
// notifications and calls fn. Use WithEndpoint to tell it which URL it
// serves, or let NewRouter build it.
func NewNotificationHandler(fn NotificationFunc, opts ...Option) (*NotificationHandler, error) {
	if fn == nil {
		return nil, optionError("NewNotificationHandler", "want a non-nil NotificationFunc")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &NotificationHandler{rc: newReceiver(cfg), fn: fn}, nil
}

// ServeHTTP decodes the notification, checks it and dispatches it.
func (h *NotificationHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, h.rc.cfg.endpoints, false)
}

func (h *NotificationHandler) serve(w http.ResponseWriter, r *http.Request, set EndpointSet, inferred bool) {
	rc := &h.rc
	addr, addrErr := rc.clientAddr(r)
	if err := rc.checkSource(addr, addrErr); err != nil {
		h.reject(w, r, err)
		return
	}
	ev, err := rc.decode(r, ChannelNotification, set, inferred, addr)
	if err != nil {
		h.reject(w, r, err)
		return
	}
	ctx := r.Context()
	if err := rc.verify(ctx, &ev); err != nil {
		if errors.Is(err, ErrNotVerified) && superseded(ev.Status, ev.VerifiedStatus) {
			// Cofidis is already further along: this notification is stale,
			// retrying it could never succeed.
			ev.Stale = true
			h.ackStale(ctx, w, ev, slog.String("verifiedStatus", string(ev.VerifiedStatus)))
			return
		}
		h.reject(w, r, err)
		return
	}
	h.deliver(w, r, ev) // idempotency.go: claim, dispatch, answer
}

// ackStale acknowledges a stale notification (200) without dispatch; why
// names the status it is stale against.
func (h *NotificationHandler) ackStale(ctx context.Context, w http.ResponseWriter, ev Event, why slog.Attr) {
	h.rc.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "cofidis: stale notification acknowledged without dispatch", slog.Any("event", ev), why)
	h.rc.observe(ctx, ev, OutcomeStale)
	writeStatus(w, http.StatusOK)
}

// superseded reports whether the verified status lies strictly later in the
// documented flow than the claimed one.
func superseded(claimed, verified Status) bool {
	c, v := claimed.Rank(), verified.Rank()
	return c > 0 && v > c
}

// dispatch calls the callback, turning a panic into an error.
func (h *NotificationHandler) dispatch(ctx context.Context, ev Event) (err error) {
	defer catchPanic(&err)
	return h.fn(ctx, ev)
}

func (h *NotificationHandler) callbackFailed(w http.ResponseWriter, r *http.Request, ev Event, err error) {
	lg := h.rc.cfg.logger
	if errors.Is(err, ErrPermanent) {
		lg.LogAttrs(r.Context(), slog.LevelWarn, "cofidis: callback failed permanently; acknowledged, will not be retried",
			slog.Any("event", ev), slog.String("error", err.Error()))
		writeStatus(w, http.StatusOK)
		return
	}
	_ = h.rc.callbackFailed(r, ev, err, "cofidis: callback failed; answered 500 for a retry")
	writeStatus(w, http.StatusInternalServerError)
}

func (h *NotificationHandler) reject(w http.ResponseWriter, r *http.Request, err error) {
	status := h.rc.rejected(r, ChannelNotification, err)
	if errors.Is(err, ErrMethodNotAllowed) {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeStatus(w, status)
}
