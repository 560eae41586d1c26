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
//	Verifier failed or timed out                           503 (retry)
//	Verifier reports another status, Cofidis further along 200, not dispatched (stale)
//	Verifier reports another status, otherwise             503 (retry; may be a forgery)
//
// Redirects (RedirectHandler) answer the browser: whatever the RedirectFunc
// writes; on a rejected request or a callback error, the error page
// (WithErrorPage) with the status above (400, 405, 413, 415, or 500 for a
// failed callback). Neither the source allowlist nor a failed verification
// stops a redirect: it is delivered with Verified false.
//
// Response bodies hold only the status text, never a part of the request.
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
	// Path is the URL path, as it appears in the URL (escaped form).
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
		h, ok := rt.byPath[path]
		if !ok {
			h = &routeHandler{router: rt}
			rt.byPath[path] = h
			rt.routes = append(rt.routes, Route{Path: path, Handler: h})
		}
		h.targets = append(h.targets, target{endpoint: e, query: u.Query()})
		h.all = h.all.Add(e)
		if len(u.Query()) > 0 {
			h.needQuery = true
		}
	}
	for i := range rt.routes {
		rt.routes[i].Endpoints = rt.byPath[rt.routes[i].Path].all
	}
	return rt, nil
}

// ServeHTTP routes the request by its path; unknown paths get 404.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	h, ok := rt.byPath[path]
	if !ok {
		writeStatus(w, http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
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
			if hasAll(q, t.query) {
				set = set.Add(t.endpoint)
			}
		}
		if set.Len() == 0 {
			writeStatus(w, http.StatusNotFound)
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

// hasAll reports whether q carries every value of want.
func hasAll(q, want url.Values) bool {
	for k, vs := range want {
		have := q[k]
		for _, v := range vs {
			found := false
			for _, hv := range have {
				if hv == v {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// onlyChannel keeps the members of set that belong to channel ch.
func onlyChannel(set EndpointSet, ch Channel) EndpointSet {
	var out EndpointSet
	for _, e := range set.Endpoints() {
		if e.Channel() == ch {
			out = out.Add(e)
		}
	}
	return out
}
