package cofidis

import (
	"context"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
)

// RedirectFunc answers the customer's browser coming back from Cofidis'
// journey: render a page or redirect (see SeeOther). The event is
// browser-supplied and proves nothing unless ev.Verified: show the customer
// where the order stands, but never ship or call confirm on a redirect alone.
//
// Return an error only before writing to w; the RedirectErrorFunc then
// answers (WithRedirectError), with an error whose HTTPStatus is 500.
//
// The return URLs receive a cross-site POST from Cofidis' pages: exempt them
// from http.CrossOriginProtection with Router.ExemptReturnRoutes, and expect
// no session cookie but one set with SameSite=None (see the README): find
// the order from ev.TransactionKey and ev.Query().
type RedirectFunc func(w http.ResponseWriter, r *http.Request, ev Event) error

// serveRedirect is the whole life of a redirect, from the request to the
// page the browser gets.
func (rt *Router) serveRedirect(w http.ResponseWriter, r *http.Request, set EndpointSet, inferred bool) {
	ctx := r.Context()
	// Browsers are never filtered by source address, but the address is
	// still reported.
	addr, _ := rt.clientAddr(r)
	ev, err := rt.decode(r, ChannelRedirect, set, inferred, addr)
	if err != nil {
		rt.refused(ctx, r, ChannelRedirect, nil, err, func() int {
			if errors.Is(err, ErrMethodNotAllowed) {
				w.Header().Set("Allow", http.MethodPost)
			}
			return rt.redirectFailed(w, r, err)
		})
		return
	}
	hold, answered := rt.claimRedirect(w, r, &ev)
	if answered {
		return
	}
	defer hold.abandon()
	// A decision already processed needs no getStatus call: the browser
	// gets its page, flagged Duplicate.
	if !ev.Duplicate {
		if err := rt.verify(ctx, &ev); err != nil {
			// The browser needs an answer whatever getStatus says: deliver
			// the event unverified.
			// Unless getStatus failed, what the browser posted disagrees
			// with it: anyone can post that at will.
			rt.logs.logCaused(ctx, logClassUnverified, err, slog.LevelWarn, "cofidis: redirect not verified",
				slog.Any("event", ev), slog.String("error", err.Error()))
		}
	}
	tw := &trackingWriter{ResponseWriter: w}
	if hold != nil {
		// The claim, for a callback that completes it in its own
		// transaction. A browser waits: no deadline but the request's.
		// An unverified redirect must not move the furthest status, in
		// the callback's completion as in the Router's own (settleRedirect).
		c := hold.claim()
		if !ev.Verified {
			c.Key.Rank = 0
		}
		r = r.WithContext(context.WithValue(ctx, claimContextKey{}, c))
	}
	err = rt.dispatchRedirect(tw, r, ev)
	var cbErr *Error
	if err != nil {
		cbErr = rt.callbackFailed(ctx, r, ev, err, "cofidis: redirect callback failed")
		if tw.status() == 0 {
			rt.redirectFailed(tw, r, cbErr)
		}
	}
	rt.settleRedirect(ctx, ev, hold, cbErr, tw.status())
}

// claimRedirect looks up (or, with WithRedirectClaims, claims) the action of
// a redirect and flags ev. It returns true when it answered the browser
// itself (store failure in claim mode).
func (rt *Router) claimRedirect(w http.ResponseWriter, r *http.Request, ev *Event) (*claimHold, bool) {
	store := rt.cfg.store
	if store == nil {
		return nil, false
	}
	ctx := r.Context()
	key := ev.ActionKey()
	if !rt.cfg.redirectClaims {
		cl, err := store.Peek(ctx, key)
		if err != nil {
			// The lookup is informational: the browser still needs its page.
			rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: redirect delivered without its idempotency state",
				slog.Any("event", *ev), slog.String("error", err.Error()))
			return nil, false
		}
		annotate(ev, cl)
		ev.Duplicate = cl.State == Done || cl.State == InProgress
		return nil, false
	}
	cl, hold, err := rt.claim(ctx, key)
	if err != nil {
		serr := storeFailed(err)
		rt.refused(ctx, r, ChannelRedirect, ev, serr, func() int { return rt.redirectFailed(w, r, serr) })
		return nil, true
	}
	annotate(ev, cl)
	if hold == nil {
		ev.Duplicate = true
	}
	return hold, false
}

// settleRedirect completes or releases a redirect's claim after its
// callback failed with cbErr (nil on success), and reports the outcome
// with the status the browser got. A redirect moves the furthest status
// only when verified: the browser proves nothing.
func (rt *Router) settleRedirect(ctx context.Context, ev Event, hold *claimHold, cbErr *Error, status int) {
	outcome := OutcomeProcessed
	var err error
	if cbErr != nil {
		outcome, err = OutcomeFailed, cbErr
		hold.release(ctx)
	} else if !hold.record(ctx, ev, ev.Verified) {
		outcome = OutcomeUnrecorded
	}
	rt.observeAnswered(ctx, ev, outcome, err, status)
}

func (rt *Router) dispatchRedirect(w http.ResponseWriter, r *http.Request, ev Event) error {
	return rt.cfg.observers.call(r.Context(), CallCallback, func(ctx context.Context) (err error) {
		defer catchPanic(&err)
		if ctx != r.Context() {
			r = r.WithContext(ctx)
		}
		return rt.onRedirect(w, r, ev)
	})
}

// redirectFailed answers a browser whose redirect could not be processed,
// and returns the status the RedirectErrorFunc wrote.
func (rt *Router) redirectFailed(w http.ResponseWriter, r *http.Request, err error) int {
	tw, ok := w.(*trackingWriter)
	if !ok {
		tw = &trackingWriter{ResponseWriter: w}
	}
	rt.cfg.redirectError(tw, r, err, r.URL.Query())
	return tw.status()
}

// SeeOther redirects the browser to target with 303 See Other, which turns
// the POST into a GET, and returns nil: `return cofidis.SeeOther(w, r, "/orders/42")`.
// The page reached gets the customer's SameSite=Lax cookies (a top-level
// GET navigation) but not the Strict ones, which stay out of a chain of
// navigations that started on another site.
func SeeOther(w http.ResponseWriter, r *http.Request, target string) error {
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// RedirectTo adapts a function that picks a URL for the event into a
// RedirectFunc answering 303 See Other. An error renders the error page.
func RedirectTo(fn func(ctx context.Context, ev Event) (string, error)) RedirectFunc {
	return func(w http.ResponseWriter, r *http.Request, ev Event) error {
		u, err := fn(r.Context(), ev)
		if err != nil {
			return err
		}
		return SeeOther(w, r, u)
	}
}

// ErrorPage is the default RedirectErrorFunc: a minimal HTML page with the
// status that fits err (HTTPStatus) and nothing of the request, asking the
// customer to check the order in their account. Call it from a
// RedirectErrorFunc when the query does not identify the order.
func ErrorPage(w http.ResponseWriter, _ *http.Request, err error, _ url.Values) {
	status := HTTPStatus(err)
	if status < 400 {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	text := html.EscapeString(http.StatusText(status))
	_, _ = w.Write([]byte("<!doctype html><meta charset=utf-8><title>" + text +
		"</title><h1>" + strconv.Itoa(status) + " " + text +
		"</h1><p>We could not read the result of your financing request. Please check the status of your order in your account.</p>\n"))
}

// trackingWriter records whether the callback started the answer, so that a
// late error does not write a second one, and with which status. Unwrap
// keeps http.ResponseController working.
type trackingWriter struct {
	http.ResponseWriter
	code int // the status written, 0 before any
}

func (t *trackingWriter) WriteHeader(code int) {
	// 1xx informational answers (103 Early Hints) do not start the answer.
	if t.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		t.code = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	if t.code == 0 {
		t.code = http.StatusOK
	}
	return t.ResponseWriter.Write(b)
}

// status is the status the answer was written with, 0 before any.
func (t *trackingWriter) status() int { return t.code }

func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// FlushError commits the answer (a 200 if no header was written), so it
// counts as writing. http.ResponseController looks for it before Unwrap.
func (t *trackingWriter) FlushError() error {
	err := http.NewResponseController(t.ResponseWriter).Flush()
	if !errors.Is(err, http.ErrNotSupported) && t.code == 0 {
		t.code = http.StatusOK
	}
	return err
}

// Flush implements http.Flusher for callbacks that type-assert it, with the
// same effect as FlushError; a writer that cannot flush ignores it.
func (t *trackingWriter) Flush() { _ = t.FlushError() }
