package cofidis

import (
	"context"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"strconv"
)

// RedirectFunc answers the customer's browser coming back from Cofidis'
// journey: render a page or redirect (see SeeOther). The event is
// browser-supplied and proves nothing unless ev.Verified: show the customer
// where the order stands, but never ship or call confirm on a redirect alone.
//
// Return an error only before writing to w; the error page is then rendered
// (WithErrorPage) with status 500.
type RedirectFunc func(w http.ResponseWriter, r *http.Request, ev Event) error

// RedirectHandler is an http.Handler for returnUrlSuccess and returnUrlOther.
// Bad requests get an error page (WithErrorPage), not a bare status.
//
// These routes receive a cross-site POST from Cofidis' pages: exempt them
// from http.CrossOriginProtection (see ExampleRedirectHandler_crossOrigin),
// and expect no session cookie (SameSite=Lax cookies are not sent): find
// the order from ev.TransactionKey and ev.RawQuery.
type RedirectHandler struct {
	rc receiver
	fn RedirectFunc
}

// NewRedirectHandler returns a handler that decodes the customer's redirect
// and calls fn to answer the browser.
func NewRedirectHandler(fn RedirectFunc, opts ...Option) (*RedirectHandler, error) {
	if fn == nil {
		return nil, optionError("NewRedirectHandler", "want a non-nil RedirectFunc")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &RedirectHandler{rc: newReceiver(cfg), fn: fn}, nil
}

// ServeHTTP decodes the redirect and calls the RedirectFunc.
func (h *RedirectHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, h.rc.cfg.endpoints, false)
}

func (h *RedirectHandler) serve(w http.ResponseWriter, r *http.Request, set EndpointSet, inferred bool) {
	rc := &h.rc
	// Browsers are never filtered by source address, but the address is
	// still reported.
	addr, _ := rc.clientAddr(r)
	ev, err := rc.decode(r, ChannelRedirect, set, inferred, addr)
	if err != nil {
		status := rc.rejected(r, ChannelRedirect, err)
		if errors.Is(err, ErrMethodNotAllowed) {
			w.Header().Set("Allow", http.MethodPost)
		}
		rc.cfg.errorPage(w, r, status, err)
		return
	}
	if err := rc.verify(r.Context(), &ev); err != nil {
		// The browser needs an answer whatever getStatus says: deliver the
		// event unverified.
		rc.cfg.logger.LogAttrs(r.Context(), slog.LevelWarn, "cofidis: redirect not verified",
			slog.Any("event", ev), slog.String("error", err.Error()))
	}
	hold, ok := rc.claimRedirect(w, r, &ev) // idempotency.go
	if !ok {
		return
	}
	defer hold.abandon()
	tw := &trackingWriter{ResponseWriter: w}
	err = h.dispatch(tw, r, ev)
	rc.settleRedirect(r.Context(), ev, hold, err)
	if err != nil {
		cbErr := rc.callbackFailed(r, ev, err, "cofidis: redirect callback failed")
		if !tw.wrote {
			rc.cfg.errorPage(w, r, http.StatusInternalServerError, cbErr)
		}
	}
}

func (h *RedirectHandler) dispatch(w http.ResponseWriter, r *http.Request, ev Event) (err error) {
	defer catchPanic(&err)
	return h.fn(w, r, ev)
}

// SeeOther redirects the browser to url with 303 See Other, which turns the
// POST into a GET, and returns nil: `return cofidis.SeeOther(w, r, "/orders/42")`.
func SeeOther(w http.ResponseWriter, r *http.Request, url string) error {
	http.Redirect(w, r, url, http.StatusSeeOther)
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

// defaultErrorPage is a minimal page that says nothing about the request.
func defaultErrorPage(w http.ResponseWriter, _ *http.Request, status int, _ error) {
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
// late error does not write a second one. Unwrap keeps http.ResponseController
// working.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	// 1xx informational answers (103 Early Hints) do not start the answer.
	if code >= 200 || code == http.StatusSwitchingProtocols {
		t.wrote = true
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// FlushError commits the answer (a 200 if no header was written), so it
// counts as writing. http.ResponseController looks for it before Unwrap.
func (t *trackingWriter) FlushError() error {
	err := http.NewResponseController(t.ResponseWriter).Flush()
	if !errors.Is(err, http.ErrNotSupported) {
		t.wrote = true
	}
	return err
}

// Flush implements http.Flusher for callbacks that type-assert it, with the
// same effect as FlushError; a writer that cannot flush ignores it.
func (t *trackingWriter) Flush() { _ = t.FlushError() }
