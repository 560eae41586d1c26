// Package cofidis receives the callbacks of the Cofidis Partner API: the
// customer's browser redirects (returnUrlSuccess, returnUrlOther) and Cofidis'
// server notifications (notificationUrlSuccess, notificationUrlPending,
// notificationUrlOther).
//
// Both arrive as POST application/x-www-form-urlencoded requests carrying a
// JSON transactionKey, a transactionStatus and, for notifications, an
// optional subState. Neither is signed: a redirect comes from the customer's
// browser and a notification from anyone who knows the URL, so neither proves
// a status. Only Cofidis' own getStatus call does: plug it in with
// WithVerifier before acting on money, and never act on a redirect alone.
//
// # Wiring
//
// Build the five URLs with NewURLs, send them in initialize's technicalData,
// and mount a Router built from the same URLs:
//
//	urls, _ := cofidis.NewURLs("https://shop.example/payments")
//	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification)
//	mux.Handle("/payments/", rt)
//
// NewRedirectHandler and NewNotificationHandler serve a single URL each, for
// routers that want one handler per route; Parser decodes a request without
// any handler.
//
// # Status codes
//
// Notifications (NotificationHandler, and a Router's notification URLs):
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
//	client address outside WithAllowedSources              403
//	Router: path/query matching none of the five URLs      404, logged, OnError (ErrUnknownURL)
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
// Redirects (RedirectHandler) answer the browser: whatever the RedirectFunc
// writes; on a rejected request or a callback error, the error page
// (WithErrorPage) with the status above (400, 405, 413, 415, or 500 for a
// failed callback). Neither the source allowlist nor a failed verification
// stops a redirect: it is delivered with Verified false.
//
// The 200 acknowledgement has an empty body; other answers hold only the
// status text, never a part of the request.
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
// unless WithRedirectClaims(true). WithDeliveryHook reports every outcome.
//
// # Identical URLs
//
// Cofidis allows the five URLs to be identical. A Router matches a request
// against each URL's path and query elements; when several URLs match, the
// event's Endpoints holds all of them. If they span both channels, the
// channel is inferred from browser headers (Sec-Fetch-Mode: navigate,
// Sec-Fetch-Dest: document, Accept: text/html) and Event.ChannelInferred is
// set. Unexpected is then set only if no candidate URL expects the status.
package cofidis

import (
	"net/http"
	"net/url"
	"strings"
)

// Router serves all five technicalData URLs: it matches each request to its
// URL(s) by path and query elements and hands it to the redirect or the
// notification handler. Mount it at the root (or a prefix) of any router, or
// register its Routes one by one.
type Router struct {
	routes   []Route
	byPath   map[string]*routeHandler
	redirect *RedirectHandler
	notify   *NotificationHandler
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

// NewRouter validates urls and returns a Router dispatching redirects to
// onRedirect and notifications to onNotification. Options apply to both
// handlers (WithURLOptions applies to the URL validation).
//
// Build it from the base URLs, not from per-order ones (URLs.WithQuery): a
// request must carry every query element of its URL, and may carry more.
func NewRouter(urls URLs, onRedirect RedirectFunc, onNotification NotificationFunc, opts ...Option) (*Router, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := urls.Validate(cfg.urlOpts...); err != nil {
		return nil, err
	}
	rh, err := NewRedirectHandler(onRedirect, opts...)
	if err != nil {
		return nil, err
	}
	nh, err := NewNotificationHandler(onNotification, opts...)
	if err != nil {
		return nil, err
	}
	rt := &Router{byPath: map[string]*routeHandler{}, redirect: rh, notify: nh}
	for _, e := range Endpoints() {
		u, err := url.Parse(urls.Get(e))
		if err != nil {
			return nil, err // Validate parsed it already
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		key, ok := pathKey(path)
		if !ok {
			return nil, newError(ErrInvalidURL, e.String(), "path is not validly escaped")
		}
		h, ok := rt.byPath[key]
		if !ok {
			h = &routeHandler{router: rt}
			rt.byPath[key] = h
			rt.routes = append(rt.routes, Route{Path: path, Handler: h})
		}
		q := u.Query()
		h.targets = append(h.targets, target{endpoint: e, query: q})
		h.all = h.all.Add(e)
		h.needQuery = h.needQuery || len(q) > 0
	}
	for i := range rt.routes {
		rt.routes[i].Endpoints = rt.routes[i].Handler.(*routeHandler).all
	}
	return rt, nil
}

// ServeHTTP routes the request by its path, compared segment by segment
// whatever its percent-encoding (as URLs.Match and http.ServeMux do); unknown
// paths get 404.
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
// OnError hook): a callback lost to a wiring mistake must be visible.
func (rt *Router) notFound(w http.ResponseWriter, r *http.Request, reason string) {
	rt.notify.rc.rejected(r, ChannelUnknown, newError(ErrUnknownURL, "", reason))
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

// Routes returns the distinct paths of the URL set with their handlers.
func (rt *Router) Routes() []Route {
	return append([]Route(nil), rt.routes...)
}

// Register mounts every route on mux with an exact-path pattern. The
// handlers answer non-POST methods themselves (405), so patterns carry no
// method.
func (rt *Router) Register(mux *http.ServeMux) {
	for _, r := range rt.routes {
		pattern := r.Path
		if strings.HasSuffix(pattern, "/") {
			pattern += "{$}" // exact match, not the whole subtree
		}
		mux.Handle(pattern, r.Handler)
	}
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
	if ch == ChannelRedirect {
		h.router.redirect.serve(w, r, set, inferred)
		return
	}
	h.router.notify.serve(w, r, set, inferred)
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
