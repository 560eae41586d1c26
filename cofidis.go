// Package cofidis receives the callbacks of the Cofidis Partner API: the
// customer's browser redirects (returnUrlSuccess, returnUrlOther) and Cofidis'
// server notifications (notificationUrlSuccess, notificationUrlPending,
// notificationUrlOther).
//
// Both arrive as POST application/x-www-form-urlencoded requests carrying a
// JSON transactionKey, a transactionStatus and, for notifications, an
// optional subState. Neither is signed: a redirect comes from the customer's
// browser and a notification from anyone who knows the URL, so neither proves
// a status. Only Cofidis' own getStatus call does, which is why building a
// receiver asks for it (WithVerifier) or for an explicit, named opt-out
// (WithInsecureSkipVerify).
//
// # One receiver
//
// Build the five URLs with NewURLs, send them in initialize's technicalData,
// and build one Router from the same URLs with both callbacks:
//
//	urls, err := cofidis.NewURLs("https://shop.example/payments")
//	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification,
//		cofidis.WithVerifier(getStatus))
//	rt.Register(mux) // or mux.Handle("/payments/", rt), or rt.Routes()
//
// NewRouter is the only constructor. Scheme and domain policy (https,
// AllowHTTP, one domain name) belong where the URLs are built, NewURLs and
// URLs.Validate; the Router only needs each URL's path and query. There are
// no standalone per-URL handlers: Router.Routes gives one http.Handler per
// distinct path for routers that register routes one by one (chi, gin,
// echo…), and Register mounts them on an http.ServeMux, so a single
// configuration serves every route and every option applies to what it
// configures. An option that cannot apply is an error from NewRouter.
//
// # Status codes
//
// Notifications (the three notification URLs):
//
//	situation                                              answer
//	callback returned nil                                  200
//	callback returned Permanent(err)                       200, logged (not retried)
//	callback returned another error                        500 (retry)
//	callback panicked                                      500, logged with the stack
//	method other than POST                                 405 with Allow: POST
//	Content-Type not form-urlencoded, or charset not UTF-8 415
//	body over the limit (WithMaxBodyBytes)                 413
//	malformed body, missing/invalid/repeated field         400
//	transactionStatus or subState over MaxStatusBytes      400
//	a transactionKey member over MaxKeyMemberBytes         400
//	client address outside WithAllowedSources              403
//	a browser's request (Sec-Fetch-Site, Sec-Fetch-Mode)   403 (ErrBrowserRequest)
//	path/query matching none of the five URLs              404, logged, OnError (ErrUnknownURL)
//	Verifier failed, timed out or panicked                 503 (retry)
//	Verifier reports another status, Cofidis further along 200, not dispatched (stale)
//	Verifier reports another status, otherwise             503 (retry; may be a forgery)
//	with WithIdempotency:
//	  same decision completed by an earlier delivery       200, not dispatched (duplicate)
//	  same decision held by another delivery right now     503 with Retry-After (retry)
//	  transaction further along in the store (stale)       200, not dispatched (WithStaleEvents)
//	  store failed before dispatch                         503 (retry), not dispatched
//	  store failed to record a successful callback         200, logged as an error
//
// Redirects (the two return URLs) answer the browser: whatever the
// RedirectFunc writes; on a rejected request or a callback error, the
// RedirectErrorFunc (WithRedirectError, default ErrorPage) with the error,
// whose HTTPStatus is the status above (400, 405, 413, 415, or 500 for a
// failed callback). Neither the source allowlist nor a failed verification
// stops a redirect: it is delivered with Verified false.
//
// The 200 acknowledgement has an empty body; other answers hold only the
// status text, never a part of the request.
//
// # Errors, logs and hooks
//
// Every rejection is an *Error wrapping one sentinel; ErrorClass gives its
// stable short name, safe as a metric label: permanent, unknown_url,
// method_not_allowed, unsupported_media_type, body_too_large,
// forbidden_source, browser_request, not_verified, verifier_unavailable,
// store_unavailable, callback_failed, lease_lost, invalid_option, time_zone,
// missing_field, invalid_field, invalid_transaction_key, repeated_field,
// malformed_body, body_read, invalid_url, domain_mismatch, and other.
//
// Every rejection and failed callback reaches the WithOnError hooks, and
// every decoded delivery the WithDeliveryHook hooks with its Outcome; hooks
// given several times all run, in order. Log lines (WithLogger) carry the
// event's identity, status and channel, never the body. Rejections are
// logged at WARN (ERROR for a 5xx), rate-limited per class
// (WithRejectionLogLimit), since anyone can post to these URLs; failures of
// the merchant's own code (callbacks, Verifier, Store) are logged at ERROR,
// always, with their own error text.
//
// # Duplicates, ordering and several replicas
//
// A to_confirm can arrive three times (redirect, success and pending
// notifications), and receivers run as several replicas. WithIdempotency
// with a shared Store (NewMemoryStore in one process, the redisstore module
// across several) makes each decision reach the notification callback once:
// deliveries claim the decision's ActionKey under a lease, complete it when
// the callback succeeds and release it when it fails. The store also keeps
// each transaction's furthest status, so that a stale event (pending after
// to_confirm) is acknowledged without dispatch, or delivered flagged with
// WithStaleEvents(true). Redirects only read the store (Event.Duplicate)
// unless WithRedirectClaims(true).
//
// # Identical URLs
//
// Cofidis allows the five URLs to be identical. A Router matches a request
// against each URL's path and query elements; when several URLs match, the
// event's Endpoints holds all of them. If they span both channels, the
// channel is inferred from browser headers (Sec-Fetch-Mode: navigate,
// Sec-Fetch-Dest: document, Accept: text/html) and Event.ChannelInferred is
// set. Unexpected is then set only if no candidate URL expects the status.
// A request carrying a browser's Fetch Metadata headers (Sec-Fetch-Site,
// Sec-Fetch-Mode) that is not taken for a redirect is refused
// (ErrBrowserRequest): on a path only notification URLs use, or, on a
// shared path, a browser request that is not a navigation (a page's
// fetch).
package cofidis

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Router receives all five technicalData URLs: it matches each request to
// its URL(s) by path and query elements, decodes and checks it, and hands
// the event to the redirect or the notification callback. Mount it at the
// root (or a prefix) of any router, Register it on an http.ServeMux, or
// mount its Routes one by one. It is safe for concurrent use.
type Router struct {
	cfg            *config
	tracker        Tracker // nil without WithReconciliation
	parser         *Parser
	logs           *logLimiter
	verifications  verifyGroup
	onRedirect     RedirectFunc
	onNotification NotificationFunc
	routes         []Route
	byPath         map[string]*routeHandler
}

// Route is one distinct path of the URL set, for routers that register
// handlers path by path (chi, gin, echo…).
type Route struct {
	// Path is the URL path, as it appears in the URL (escaped form). It is
	// meant to be registered verbatim: routers with a pattern syntax (chi's
	// {param}, gin's and echo's :param and *wildcard) would read such
	// characters as parameters, so keep them out of the URLs' paths.
	Path string
	// Endpoints lists the technicalData URLs sharing this path.
	Endpoints EndpointSet
	// Handler serves this path. It matches query elements but not the
	// path, so it may be mounted under a router that rewrites paths.
	Handler http.Handler
}

// NewRouter returns a Router for urls, dispatching redirects to onRedirect
// and notifications to onNotification. It needs WithVerifier or
// WithInsecureSkipVerify among opts, and fails with an error wrapping
// ErrInvalidOption for a missing callback or a bad option (see Option).
//
// Of the URLs it needs what routing needs: each present (ErrMissingField),
// absolute, with a path and query that Validate would accept
// (ErrInvalidURL); scheme and domain are the business of NewURLs and
// Validate, so URLs built with NewURLs(base, AllowHTTP()) need nothing more.
// Build it from the base URLs, not from per-order ones (URLs.WithQuery): a
// request must carry every query element of its URL, and may carry more.
func NewRouter(urls URLs, onRedirect RedirectFunc, onNotification NotificationFunc, opts ...Option) (*Router, error) {
	switch {
	case onRedirect == nil:
		return nil, optionError("NewRouter", "want a non-nil RedirectFunc")
	case onNotification == nil:
		return nil, optionError("NewRouter", "want a non-nil NotificationFunc")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	var tracker Tracker
	if cfg.store != nil {
		rs := newRecoveringStore(cfg.store, cfg.logger, cfg.observers)
		if t, ok := cfg.store.(Tracker); ok && cfg.reconcile != nil {
			tracker = recoveringTracker{Tracker: t, rs: rs}
		}
		cfg.store = rs
	}
	rt := &Router{
		cfg:            cfg,
		tracker:        tracker,
		parser:         NewParser(cfg.maxBody),
		logs:           &logLimiter{logger: cfg.logger, limit: cfg.logLimit, now: cfg.now},
		onRedirect:     onRedirect,
		onNotification: onNotification,
		byPath:         map[string]*routeHandler{},
	}
	var errs []error
	for _, e := range Endpoints() {
		path, query, err := routeOf(e, urls.Get(e))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		key, _ := pathKey(path) // routeOf checked the escapes
		h, ok := rt.byPath[key]
		if !ok {
			h = &routeHandler{router: rt}
			rt.byPath[key] = h
			rt.routes = append(rt.routes, Route{Path: path, Handler: h})
		}
		h.targets = append(h.targets, target{endpoint: e, query: query})
		h.all = h.all.Add(e)
		h.needQuery = h.needQuery || len(query) > 0
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	for i := range rt.routes {
		rt.routes[i].Endpoints = rt.routes[i].Handler.(*routeHandler).all
	}
	return rt, nil
}

// joinErrors returns nil, the one error, or errors.Join of several, as
// Validate does.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// routeOf returns what a Router matches the URL of e on: its escaped path
// ("/" for an empty one) and its query elements.
func routeOf(e Endpoint, raw string) (string, url.Values, error) {
	if raw == "" {
		return "", nil, newError(ErrMissingField, e.String(), "URL is empty: the Router serves all five")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, wrapError(ErrInvalidURL, e.String(), "is not a parsable URL", err)
	}
	if !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return "", nil, newError(ErrInvalidURL, e.String(), "must be absolute (https://host/path)")
	}
	if err := checkPathQuery(raw); err != nil {
		err.Field = e.String()
		return "", nil, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", nil, wrapError(ErrInvalidURL, e.String(), "query is not parsable", err)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return path, q, nil
}

// ServeHTTP routes the request by its path, compared segment by segment
// whatever its percent-encoding (as http.ServeMux does); unknown paths get
// 404.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	h, ok := rt.byPath[path] // a path already in canonical form
	if !ok {
		if key, valid := pathKey(path); valid {
			h, ok = rt.byPath[key]
		}
	}
	if !ok {
		rt.notFound(w, r, "the path matches none of the five URLs")
		return
	}
	h.ServeHTTP(w, r)
}

// notFound answers 404 and reports it like any rejected request (log line,
// OnError hooks, observers): a callback lost to a wiring mistake must be
// visible.
func (rt *Router) notFound(w http.ResponseWriter, r *http.Request, reason string) {
	r = rt.cfg.observers.startRequest(r, ChannelUnknown)
	rt.refused(r.Context(), r, ChannelUnknown, nil, newError(ErrUnknownURL, "", reason), nil)
	writeStatus(w, http.StatusNotFound)
}

// pathKey is the canonical form under which the Router compares paths: each
// segment unescaped and escaped again, so that "%c3%a9", "%C3%A9" and "é" are
// one path while "%2F" stays distinct from "/".
func pathKey(escaped string) (string, bool) {
	segs, ok := pathSegments(escaped)
	if !ok {
		return "", false
	}
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/"), true
}

// pathSegments splits an escaped path at its slashes and unescapes each
// segment.
func pathSegments(escaped string) ([]string, bool) {
	if escaped == "" {
		escaped = "/"
	}
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		un, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = un
	}
	return segs, true
}

// Routes returns the distinct paths of the URL set with their handlers.
func (rt *Router) Routes() []Route {
	return append([]Route(nil), rt.routes...)
}

// Register mounts every route on mux with an exact-path pattern. The
// handlers answer non-POST methods themselves (405), so patterns carry no
// method.
func (rt *Router) Register(mux *http.ServeMux) {
	for _, r := range rt.routes {
		mux.Handle(exactPattern("", r.Path), r.Handler)
	}
}

// ExemptReturnRoutes lets the customer's browser through cop on the return
// routes, and only there: Cofidis' journey pages post the two return URLs
// cross-site, which http.CrossOriginProtection refuses by default. Each
// return path is exempted for POST with an exact-match pattern, so that a
// path ending in "/" does not exempt the subtree under it; every other route
// of the application stays protected. Notification routes need no
// exemption: Cofidis' servers send no Origin or Sec-Fetch-Site header.
//
// Mount the Router (or its Routes) on the mux that cop protects, at the
// paths of the URLs: the patterns are the URLs' own paths.
func (rt *Router) ExemptReturnRoutes(cop *http.CrossOriginProtection) error {
	if cop == nil {
		return optionError("ExemptReturnRoutes", "want a non-nil *http.CrossOriginProtection")
	}
	for _, r := range rt.routes {
		if r.Endpoints&redirectEndpoints == 0 {
			continue
		}
		if err := addBypass(cop, exactPattern(http.MethodPost+" ", r.Path)); err != nil {
			return err
		}
	}
	return nil
}

// addBypass adds pattern to cop, which panics on a pattern that conflicts
// with one it has (ExemptReturnRoutes called twice, say).
func addBypass(cop *http.CrossOriginProtection, pattern string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("cofidis: ExemptReturnRoutes: %q: %v", pattern, v)
		}
	}()
	cop.AddInsecureBypassPattern(pattern)
	return nil
}

// exactPattern is an http.ServeMux pattern matching path exactly (not the
// subtree under a path ending in "/"), after prefix (a method and a space,
// or nothing). The Router's paths are escaped, so they hold no "{" that the
// mux would read as a wildcard.
func exactPattern(prefix, path string) string {
	if strings.HasSuffix(path, "/") {
		path += "{$}"
	}
	return prefix + path
}

type target struct {
	endpoint Endpoint
	query    url.Values
}

// routeHandler serves one path: it narrows the endpoints by query elements
// and picks the channel.
type routeHandler struct {
	router    *Router
	targets   []target
	all       EndpointSet
	needQuery bool
}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	set := h.all
	if h.needQuery {
		set = 0
		q := r.URL.Query()
		for _, t := range h.targets {
			if queryContains(q, t.query) {
				set = set.Add(t.endpoint)
			}
		}
		if set.Len() == 0 {
			h.router.notFound(w, r, "the query lacks the elements of every URL on this path")
			return
		}
	}
	ch, ok := set.Channel()
	inferred := false
	if !ok {
		inferred = true
		ch = ChannelNotification
		if isBrowser(r) {
			ch = ChannelRedirect
		}
		set = onlyChannel(set, ch)
	}
	os := h.router.cfg.observers
	if len(os) > 0 {
		r = os.startRequest(r, ch)
		defer os.endAborted(r.Context(), ch)
	}
	if ch == ChannelRedirect {
		h.router.serveRedirect(w, r, set, inferred)
		return
	}
	h.router.serveNotification(w, r, set, inferred)
}

// onlyChannel keeps the members of set that belong to channel ch.
func onlyChannel(set EndpointSet, ch Channel) EndpointSet {
	switch ch {
	case ChannelRedirect:
		return set & redirectEndpoints
	case ChannelNotification:
		return set & notificationEndpoints
	}
	return 0
}
