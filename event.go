package cofidis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Event is a callback as the handlers deliver it to the merchant's code: the
// decoded Callback plus what the receiver knows about where and how it
// arrived, and whether it could be verified.
type Event struct {
	// Callback is what the request claims: transaction key, status and
	// sub-state.
	Callback

	// Channel says who posted: the customer's browser (ChannelRedirect) or
	// Cofidis' servers (ChannelNotification).
	Channel Channel
	// ChannelInferred is true when the receiving URL is shared by a redirect
	// URL and a notification URL, so the channel was inferred from the
	// request's browser headers (Sec-Fetch-Mode, Sec-Fetch-Dest, Accept)
	// rather than known from the URL. Give the five URLs distinct paths or
	// query elements to avoid it.
	ChannelInferred bool
	// Endpoints is the set of technicalData URLs the request may have been
	// posted to: one when the URLs are distinct, several when identical
	// URLs make them indistinguishable, none for a standalone handler built
	// without WithEndpoint.
	Endpoints EndpointSet
	// Unexpected is true when the documentation does not send this (known)
	// status to any of Endpoints, e.g. Refused on notificationUrlSuccess.
	// The event is delivered all the same.
	Unexpected bool

	// Verified is true only when the configured Verifier (getStatus)
	// reported the same status. Never true without a Verifier.
	Verified bool
	// VerifiedStatus is the status the Verifier reported, empty when there
	// is no Verifier or it failed.
	VerifiedStatus Status

	// RawQuery is the query string of the URL that received the request:
	// the merchant's own elements, such as an order reference, added to the
	// technicalData URLs. Session cookies do not reach a cross-site POST, so
	// this and TransactionKey are what identifies the order.
	RawQuery string
	// RemoteAddr is the client's address: the connection's peer, or the
	// forwarded client when WithTrustedProxies declares the peer a proxy.
	// The zero Addr when it could not be determined.
	RemoteAddr netip.Addr
	// ReceivedAt is when the receiver started processing the request.
	ReceivedAt time.Time

	// The fields below are set only with WithIdempotency.

	// Duplicate is true when another delivery of the same decision (see
	// ActionKey) completed it, or holds its claim right now: do not act on
	// it again. Notification callbacks never see it set (duplicates are
	// answered without dispatch); redirects do, since the browser needs a
	// page all the same.
	Duplicate bool
	// Stale is true when the transaction already reached a further status
	// (FurthestStatus) in the journey's order: pending after to_confirm,
	// to_confirm after validated. Stale notifications reach the callback
	// only with WithStaleEvents(true).
	Stale bool
	// Conflict is true when the journey's outcome was already recorded as
	// another status (to_confirm, then Refused): Cofidis sent two different
	// decisions. Both are delivered; only getStatus tells which stands.
	Conflict bool
	// FurthestStatus is the furthest status the store had recorded for the
	// transaction before this event; empty when none.
	FurthestStatus Status
}

// Query parses RawQuery. Invalid pairs are dropped, as url.ParseQuery does.
func (e Event) Query() url.Values {
	v, _ := url.ParseQuery(e.RawQuery)
	return v
}

// Endpoint returns the one URL that received the event, or false when it is
// unknown or ambiguous (see Endpoints).
func (e Event) Endpoint() (Endpoint, bool) {
	return e.Endpoints.Single()
}

// LogValue makes an Event print as a compact group in slog lines: identity,
// status, channel and flags, never the raw body.
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("transaction", e.TransactionKey.ID().String()),
		slog.String("status", string(e.Status)),
		slog.String("subState", string(e.SubState)),
		slog.String("channel", e.Channel.String()),
		slog.String("endpoints", e.Endpoints.String()),
		slog.Bool("verified", e.Verified),
		slog.Bool("unexpected", e.Unexpected),
	)
}

// clientAddr resolves the client's address; errors leave it unknown.
func (rt *Router) clientAddr(r *http.Request) (netip.Addr, error) {
	return rt.cfg.proxies.ClientIP(r.RemoteAddr, r.Header)
}

// checkSource enforces WithAllowedSources.
func (rt *Router) checkSource(addr netip.Addr, addrErr error) error {
	if len(rt.cfg.allowed) == 0 {
		return nil
	}
	if addrErr != nil {
		return wrapError(ErrForbiddenSource, "", "the client address could not be determined", addrErr)
	}
	for _, p := range rt.cfg.allowed {
		if p.Contains(addr) {
			return nil
		}
	}
	return newError(ErrForbiddenSource, "", "the client address is not in the allowlist")
}

// decode reads the request into an Event for the given endpoints.
func (rt *Router) decode(r *http.Request, ch Channel, set EndpointSet, inferred bool, addr netip.Addr) (Event, error) {
	received := rt.cfg.now()
	cb, err := rt.parser.ParseRequest(r)
	if err != nil {
		return Event{}, err
	}
	ev := Event{
		Callback:        cb,
		Channel:         ch,
		ChannelInferred: inferred,
		Endpoints:       set,
		RawQuery:        r.URL.RawQuery,
		RemoteAddr:      addr,
		ReceivedAt:      received,
	}
	ev.Unexpected = set.Len() > 0 && !set.Expects(cb.Status)
	return ev, nil
}

// verify asks the Verifier, if any, for the current status and records the
// answer in ev. It returns nil when there is no Verifier or it agrees.
func (rt *Router) verify(ctx context.Context, ev *Event) error {
	if rt.cfg.verifier == nil {
		return nil
	}
	st, err := rt.verifications.do(ctx, ev.TransactionKey, rt.currentStatus)
	if err != nil {
		return trustedError(ErrVerifierUnavailable, "", err)
	}
	ev.VerifiedStatus = ParseStatus(string(st))
	if ev.VerifiedStatus != ev.Status {
		return newError(ErrNotVerified, FieldTransactionStatus,
			fmt.Sprintf("the verifier reports %q", string(ev.VerifiedStatus)))
	}
	ev.Verified = true
	return nil
}

// currentStatus calls the Verifier within the verify timeout, turning a
// panic into an error: the verifier is the merchant's code around a remote
// call, and its crash must become a retryable 503, not a dropped
// connection. http.ErrAbortHandler is re-panicked, as for callbacks.
func (rt *Router) currentStatus(ctx context.Context, key TransactionKey) (st Status, err error) {
	ctx, cancel := context.WithTimeout(ctx, rt.cfg.verifyTimeout)
	defer cancel()
	err = rt.cfg.observers.call(ctx, CallVerifier, func(ctx context.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				repanicAbort(v)
				rt.cfg.logger.LogAttrs(ctx, slog.LevelError, "cofidis: verifier panicked",
					slog.String("transaction", key.ID().String()),
					slog.String("panic", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())))
				err = fmt.Errorf("verifier panicked: %v", v)
			}
		}()
		st, err = rt.cfg.verifier.CurrentStatus(ctx, key)
		return err
	})
	return st, err
}

// verifyGroup collapses concurrent verifications of one transaction into
// one Verifier call, whose answer they all get: a burst of copies of one
// posted body costs one getStatus call, not one each.
type verifyGroup struct {
	mu    sync.Mutex
	calls map[TransactionID]*verifyCall
}

// verifyCall is one Verifier call in flight.
type verifyCall struct {
	done   chan struct{}
	status Status
	err    error
}

// do returns the answer of call for key, made by this caller or by the
// concurrent caller that made it first, on that caller's context: the
// others share its answer, its failure included (a 503, so they are
// retried).
func (g *verifyGroup) do(ctx context.Context, key TransactionKey, call func(context.Context, TransactionKey) (Status, error)) (Status, error) {
	id := key.ID()
	g.mu.Lock()
	if c, ok := g.calls[id]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.status, c.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if g.calls == nil {
		g.calls = map[TransactionID]*verifyCall{}
	}
	c := &verifyCall{done: make(chan struct{})}
	g.calls[id] = c
	g.mu.Unlock()
	defer func() {
		// Also when call re-panics http.ErrAbortHandler: the waiters
		// then see an error.
		if c.status == "" && c.err == nil {
			c.err = errors.New("the verifier call was aborted")
		}
		g.mu.Lock()
		delete(g.calls, id)
		g.mu.Unlock()
		close(c.done)
	}()
	c.status, c.err = call(ctx, key)
	return c.status, c.err
}

// refused reports a request (r, or nil for a reconciliation) the Router
// refused: it logs it (rate-limited per class, unless the merchant's own
// code failed), calls the OnError hooks (for a request), the delivery hooks
// when the event was decoded (ev not nil), and ends the request for the
// observers. A refusal with an event is OutcomeRejected, or
// OutcomeStoreFailed when the store could not be asked. answer, when not
// nil, writes the answer (a browser's page) after the hooks and returns
// its status; otherwise the caller answers with the status refused
// returns, HTTPStatus(err).
func (rt *Router) refused(ctx context.Context, r *http.Request, ch Channel, ev *Event, err error, answer func() int) int {
	status := HTTPStatus(err)
	class := sentinelIndex(err)
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String("channel", ch.String()))
	if r != nil {
		attrs = append(attrs, slog.String("path", r.URL.Path))
	}
	if ev != nil {
		attrs = append(attrs, slog.String("transaction", ev.TransactionKey.ID().String()))
	}
	attrs = append(attrs,
		slog.Int("status", status),
		slog.String("class", logClassName(class)),
		slog.String("error", err.Error()))
	rt.logs.logCaused(ctx, class, err, level, "cofidis: request rejected", attrs...)
	if r != nil {
		for _, fn := range rt.cfg.onError {
			fn(r, err)
		}
	}
	outcome := OutcomeRejected
	if errors.Is(err, ErrStoreUnavailable) {
		outcome = OutcomeStoreFailed
	}
	if ev != nil {
		for _, fn := range rt.cfg.hooks {
			fn(ctx, *ev, outcome)
		}
	}
	switch {
	case r == nil:
		status = 0 // a reconciliation answers nobody
	case answer != nil:
		status = answer()
	}
	rt.cfg.observers.endRequest(ctx, ch, ev, outcome, err, status)
	return status
}

// ownCodeFailed reports whether err is a failure of the merchant's own code
// (the Verifier, the Store, a callback), which a request cannot cause at
// will and whose log lines are never suppressed.
func ownCodeFailed(err error) bool {
	return errors.Is(err, ErrVerifierUnavailable) || errors.Is(err, ErrStoreUnavailable) || errors.Is(err, ErrCallback)
}

// callbackFailed logs a callback's failure, with the stack of a panic, and
// reports it to the OnError hooks as the *Error it returns, which keeps the
// callback's own error text and chain.
func (rt *Router) callbackFailed(ctx context.Context, r *http.Request, ev Event, err error, msg string) *Error {
	attrs := []slog.Attr{slog.Any("event", ev), slog.String("error", err.Error())}
	var pe *PanicError
	reason := ""
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
		reason = "panic"
		err = panicCause{pe}
	}
	rt.cfg.logger.LogAttrs(ctx, slog.LevelError, msg, attrs...)
	cbErr := trustedError(ErrCallback, reason, err)
	if r != nil {
		for _, fn := range rt.cfg.onError {
			fn(r, cbErr)
		}
	}
	return cbErr
}

// panicCause presents a *PanicError as a cause without its "cofidis:
// callback failed" prefix, which the *Error wrapping it already has; it
// unwraps to it for errors.As.
type panicCause struct{ p *PanicError }

func (c panicCause) Error() string { return fmt.Sprint(c.p.Value) }
func (c panicCause) Unwrap() error { return c.p }

// PanicError is the error a recovered callback panic becomes. It wraps
// ErrCallback.
type PanicError struct {
	// Value is what the callback panicked with.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error says the callback panicked; the stack is only in Stack and the logs.
func (p *PanicError) Error() string {
	return fmt.Sprintf("%s: panic: %v", ErrCallback, p.Value)
}

// Unwrap returns ErrCallback.
func (p *PanicError) Unwrap() error { return ErrCallback }

// catchPanic, deferred, turns a callback's panic into a *PanicError in
// *err. http.ErrAbortHandler is re-panicked: it is the documented way to
// abort a response.
func catchPanic(err *error) {
	if v := recover(); v != nil {
		repanicAbort(v)
		*err = &PanicError{Value: v, Stack: debug.Stack()}
	}
}

// repanicAbort re-panics http.ErrAbortHandler, which no recover may swallow.
func repanicAbort(v any) {
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v)
	}
}

// isBrowser tells a browser's navigation from a server-to-server POST, for
// URLs shared by both channels.
func isBrowser(r *http.Request) bool {
	h := r.Header
	if h.Get("Sec-Fetch-Mode") == "navigate" || h.Get("Sec-Fetch-Dest") == "document" {
		return true
	}
	for _, a := range h.Values("Accept") {
		if strings.Contains(strings.ToLower(a), "text/html") {
			return true
		}
	}
	return false
}

// writeStatus answers with a status code and its standard text, never
// anything from the request.
func writeStatus(w http.ResponseWriter, code int) {
	if code == http.StatusOK {
		// The acknowledgement Cofidis' servers get: nothing to render or
		// sniff, so no body and no extra headers (Content-Length: 0).
		w.WriteHeader(code)
		return
	}
	// Header.Set would allocate one slice per value: share one array, under
	// keys already in canonical form.
	vals := [...]string{"text/plain; charset=utf-8", "nosniff", "no-store"}
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["X-Content-Type-Options"] = vals[1:2:2]
	h["Cache-Control"] = vals[2:3:3]
	w.WriteHeader(code)
	_, _ = io.WriteString(w, statusBody(code))
}

// statusBody is the answer's body: the status text and a newline, constant
// for the statuses the handlers use.
func statusBody(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "Bad Request\n"
	case http.StatusForbidden:
		return "Forbidden\n"
	case http.StatusNotFound:
		return "Not Found\n"
	case http.StatusMethodNotAllowed:
		return "Method Not Allowed\n"
	case http.StatusRequestEntityTooLarge:
		return "Request Entity Too Large\n"
	case http.StatusUnsupportedMediaType:
		return "Unsupported Media Type\n"
	case http.StatusInternalServerError:
		return "Internal Server Error\n"
	case http.StatusServiceUnavailable:
		return "Service Unavailable\n"
	}
	return http.StatusText(code) + "\n"
}
