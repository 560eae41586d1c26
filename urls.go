package cofidis

import (
	"errors"
	"math/bits"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Endpoint names one of the five callback URLs the merchant sends in the
// technicalData object of the initialize call. The zero value,
// EndpointUnknown, means "none of them".
type Endpoint uint8

// The five technicalData URLs, in the order of the documentation. Values
// start at 1 so that the zero value is never mistaken for a real URL.
const (
	// EndpointUnknown is no URL: a request that matched none of the five.
	EndpointUnknown Endpoint = iota
	// EndpointReturnSuccess is returnUrlSuccess: the customer's browser
	// comes back here when the journey ends accepted (to_confirm).
	EndpointReturnSuccess
	// EndpointReturnOther is returnUrlOther: the customer's browser comes
	// back here when the journey ends otherwise (Refused, pending…).
	EndpointReturnOther
	// EndpointNotificationSuccess is notificationUrlSuccess: Cofidis posts
	// here when the status becomes to_confirm.
	EndpointNotificationSuccess
	// EndpointNotificationPending is notificationUrlPending: Cofidis posts
	// here for each pending status or sub-state, and for the final
	// to_confirm or Refused after a pending.
	EndpointNotificationPending
	// EndpointNotificationOther is notificationUrlOther: Cofidis posts here
	// for Refused, Aborted and every other status, errors included.
	EndpointNotificationOther
)

// allEndpoints is the EndpointSet of the five valid endpoints.
const allEndpoints EndpointSet = 1<<EndpointNotificationOther - 1

// Endpoints returns the five endpoints in the documented order (returns
// first, then notifications), as a new slice the caller may modify.
func Endpoints() []Endpoint {
	return []Endpoint{
		EndpointReturnSuccess,
		EndpointReturnOther,
		EndpointNotificationSuccess,
		EndpointNotificationPending,
		EndpointNotificationOther,
	}
}

// valid reports whether e is one of the five URLs.
func (e Endpoint) valid() bool {
	return e >= EndpointReturnSuccess && e <= EndpointNotificationOther
}

// String returns the technicalData field name of e ("returnUrlSuccess"…),
// which is also the Field of the errors about that URL; "unknown" for
// EndpointUnknown and "Endpoint(n)" for values outside the constants.
func (e Endpoint) String() string {
	switch e {
	case EndpointUnknown:
		return "unknown"
	case EndpointReturnSuccess:
		return "returnUrlSuccess"
	case EndpointReturnOther:
		return "returnUrlOther"
	case EndpointNotificationSuccess:
		return "notificationUrlSuccess"
	case EndpointNotificationPending:
		return "notificationUrlPending"
	case EndpointNotificationOther:
		return "notificationUrlOther"
	}
	return "Endpoint(" + strconv.Itoa(int(e)) + ")"
}

// Channel tells who posts to e: the customer's browser for the two return
// URLs, Cofidis' servers for the three notification URLs, ChannelUnknown
// otherwise.
func (e Endpoint) Channel() Channel {
	switch e {
	case EndpointReturnSuccess, EndpointReturnOther:
		return ChannelRedirect
	case EndpointNotificationSuccess, EndpointNotificationPending, EndpointNotificationOther:
		return ChannelNotification
	}
	return ChannelUnknown
}

// Expects reports whether the documentation sends status s to e, so that a
// receiver can flag an inconsistent callback (a Refused on returnUrlSuccess is
// more likely forged or misrouted than real). It is a consistency check, not
// a proof: neither channel is signed.
//
//   - returnUrlSuccess, notificationUrlSuccess: to_confirm only.
//   - returnUrlOther: every known status but to_confirm. The documentation
//     says "Refused or pending", but Aborted or Error are plausible ends of a
//     journey too.
//   - notificationUrlPending: pending, to_confirm and Refused (the final
//     decision after a pending).
//   - notificationUrlOther: every known status but to_confirm and pending.
//
// s is canonicalised with ParseStatus first, so any capitalisation works. An
// unknown status is expected everywhere (true): nothing can be said about it,
// and Status.Known is what flags it. EndpointUnknown and values outside the
// constants expect nothing (false).
func (e Endpoint) Expects(s Status) bool {
	return e.valid() && expectedAt(ParseStatus(string(s)))&e.bit() != 0
}

// Endpoint sets by channel.
const (
	redirectEndpoints     EndpointSet = 1<<(EndpointReturnSuccess-1) | 1<<(EndpointReturnOther-1)
	notificationEndpoints             = allEndpoints &^ redirectEndpoints
)

// expectedAt returns the endpoints the documentation sends the canonical
// status s to (see Endpoint.Expects): all five for an unknown status.
func expectedAt(s Status) EndpointSet {
	const (
		returnSuccess = 1 << (EndpointReturnSuccess - 1)
		returnOther   = 1 << (EndpointReturnOther - 1)
		notifySuccess = 1 << (EndpointNotificationSuccess - 1)
		notifyPending = 1 << (EndpointNotificationPending - 1)
		notifyOther   = 1 << (EndpointNotificationOther - 1)
	)
	switch {
	case !s.Known():
		return allEndpoints
	case s == StatusToConfirm:
		return returnSuccess | notifySuccess | notifyPending
	case s == StatusPending:
		return returnOther | notifyPending
	case s == StatusRefused:
		return returnOther | notifyPending | notifyOther
	}
	return returnOther | notifyOther
}

// bit is e's member of an EndpointSet; callers check valid first.
func (e Endpoint) bit() EndpointSet { return 1 << (e - 1) }

// pathSuffix is the path NewURLs gives e under the cofidis directory. The
// paths are distinct so that each request tells which URL it hit.
func (e Endpoint) pathSuffix() string {
	switch e {
	case EndpointReturnSuccess:
		return "/return/success"
	case EndpointReturnOther:
		return "/return/other"
	case EndpointNotificationSuccess:
		return "/notify/success"
	case EndpointNotificationPending:
		return "/notify/pending"
	case EndpointNotificationOther:
		return "/notify/other"
	}
	return ""
}

// Channel says who posted a callback, which decides how far it can be
// trusted. Neither channel proves a status: only getStatus does.
type Channel uint8

const (
	// ChannelUnknown is no channel, or an ambiguous one (a URL shared by a
	// redirect and a notification).
	ChannelUnknown Channel = iota
	// ChannelRedirect is the customer's browser, posting to a return URL. Its
	// content is whatever the browser sends: it proves nothing.
	ChannelRedirect
	// ChannelNotification is Cofidis' servers, posting to a notification
	// URL. The request is unsigned: anyone who knows the URL can post it.
	ChannelNotification
	// ChannelReconciliation is the Router itself: a decision it asked the
	// Verifier (getStatus) for, because no outcome arrived in time for a
	// tracked transaction (see WithReconciliation). Verified by
	// construction; delivered to the notification callback.
	ChannelReconciliation
)

// String returns "redirect", "notification", "reconciliation" or
// "unknown" (and "Channel(n)" for values outside the constants), for logs
// and metric labels.
func (c Channel) String() string {
	switch c {
	case ChannelUnknown:
		return "unknown"
	case ChannelRedirect:
		return "redirect"
	case ChannelNotification:
		return "notification"
	case ChannelReconciliation:
		return "reconciliation"
	}
	return "Channel(" + strconv.Itoa(int(c)) + ")"
}

// EndpointSet is a set of Endpoints. A request path names a set rather than a
// single endpoint because the merchant may give several URLs the same value
// (the documentation allows all five to be identical). The zero value is the
// empty set; bits outside the five endpoints are ignored by every method.
type EndpointSet uint8

// Has reports whether e is in s.
func (s EndpointSet) Has(e Endpoint) bool { return e.valid() && s&e.bit() != 0 }

// Add returns s with e added. Adding EndpointUnknown or a value outside the
// constants returns s unchanged.
func (s EndpointSet) Add(e Endpoint) EndpointSet {
	if !e.valid() {
		return s
	}
	return s | e.bit()
}

// Len returns the number of endpoints in s.
func (s EndpointSet) Len() int { return bits.OnesCount8(uint8(s & allEndpoints)) }

// Single returns the one endpoint of s, or false when s is empty or holds
// several (the URLs are identical and the request is ambiguous).
func (s EndpointSet) Single() (Endpoint, bool) {
	if s.Len() != 1 {
		return EndpointUnknown, false
	}
	return Endpoint(bits.TrailingZeros8(uint8(s&allEndpoints))) + 1, true //nolint:gosec // 0..7 fits
}

// Endpoints returns the members of s in the documented order, as a new
// slice (nil for the empty set).
func (s EndpointSet) Endpoints() []Endpoint {
	var out []Endpoint
	for _, e := range Endpoints() {
		if s.Has(e) {
			out = append(out, e)
		}
	}
	return out
}

// Channel returns the channel shared by every member of s, or false when s
// is empty or mixes return and notification URLs (then who posted can only
// be guessed from the request).
func (s EndpointSet) Channel() (Channel, bool) {
	switch s &= allEndpoints; {
	case s == 0:
		return ChannelUnknown, false
	case s&^redirectEndpoints == 0:
		return ChannelRedirect, true
	case s&^notificationEndpoints == 0:
		return ChannelNotification, true
	}
	return ChannelUnknown, false
}

// Expects reports whether any member of s expects status st (see
// Endpoint.Expects): with identical URLs, the request may have been meant for
// any of them. The empty set expects nothing.
func (s EndpointSet) Expects(st Status) bool {
	return s&expectedAt(ParseStatus(string(st))) != 0
}

// String joins the field names of the members with "|", as in
// "returnUrlOther|notificationUrlOther", or returns "none" for the empty set.
func (s EndpointSet) String() string {
	return endpointSetNames[s&allEndpoints]
}

// endpointSetNames is the String of every set of valid endpoints, built
// once: sets name every logged event and every metric and span, which
// would otherwise allocate their names each time. It is never written to.
var endpointSetNames = func() (names [allEndpoints + 1]string) {
	for s := range EndpointSet(len(names)) {
		eps := s.Endpoints()
		if len(eps) == 0 {
			names[s] = "none"
			continue
		}
		parts := make([]string, len(eps))
		for i, e := range eps {
			parts[i] = e.String()
		}
		names[s] = strings.Join(parts, "|")
	}
	return names
}()

// URLs holds the five callback URLs of the technicalData object of the
// initialize call. Marshalled to JSON, it gives exactly the technicalData
// member names, so it can be embedded in the merchant's initialize request.
//
// Cofidis requires one domain name for all five, allows the merchant's own
// path and query elements, and allows identical values; check a set with
// Validate before sending it.
type URLs struct {
	// ReturnURLSuccess receives the customer's browser after an accepted
	// journey (to_confirm).
	ReturnURLSuccess string `json:"returnUrlSuccess"`
	// ReturnURLOther receives the customer's browser after any other end of
	// the journey (Refused, pending…).
	ReturnURLOther string `json:"returnUrlOther"`
	// NotificationURLSuccess receives Cofidis' notification of to_confirm.
	NotificationURLSuccess string `json:"notificationUrlSuccess"`
	// NotificationURLPending receives Cofidis' notifications of pending
	// statuses and of the decision that follows them.
	NotificationURLPending string `json:"notificationUrlPending"`
	// NotificationURLOther receives Cofidis' notifications of Refused,
	// Aborted and every other status.
	NotificationURLOther string `json:"notificationUrlOther"`
}

// field returns the field of u that holds e, or nil for an invalid endpoint.
func (u *URLs) field(e Endpoint) *string {
	switch e {
	case EndpointReturnSuccess:
		return &u.ReturnURLSuccess
	case EndpointReturnOther:
		return &u.ReturnURLOther
	case EndpointNotificationSuccess:
		return &u.NotificationURLSuccess
	case EndpointNotificationPending:
		return &u.NotificationURLPending
	case EndpointNotificationOther:
		return &u.NotificationURLOther
	}
	return nil
}

// Get returns the URL of e, or "" for EndpointUnknown and values outside the
// constants.
func (u URLs) Get(e Endpoint) string {
	if p := u.field(e); p != nil {
		return *p
	}
	return ""
}

// Set sets the URL of e, for code that loops over Endpoints(); it does
// nothing for EndpointUnknown and values outside the constants. Set is the
// only method that modifies u; the With… methods return modified copies.
func (u *URLs) Set(e Endpoint, rawURL string) {
	if p := u.field(e); p != nil {
		*p = rawURL
	}
}

// URLOption changes how NewURLs, URLs.Validate and URLs.Domain judge URLs.
type URLOption func(*urlConfig)

// urlConfig is the result of the URLOptions.
type urlConfig struct {
	allowHTTP bool
}

func newURLConfig(opts []URLOption) urlConfig {
	var c urlConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// AllowHTTP accepts the http scheme besides https, for local development
// (http://localhost:8080). Never use it in production: the callbacks carry
// the customer's transaction in clear text. Schemes other than http and https
// stay rejected.
func AllowHTTP() URLOption {
	return func(c *urlConfig) { c.allowHTTP = true }
}

// NewURLs derives the five URLs from one base URL,
// scheme://host[:port][/prefix][?query]. The five live in a directory of
// their own, <prefix>/cofidis, one path each, so that the receiver knows
// which URL a request hit:
//
//	<prefix>/cofidis/return/success    returnUrlSuccess
//	<prefix>/cofidis/return/other      returnUrlOther
//	<prefix>/cofidis/notify/success    notificationUrlSuccess
//	<prefix>/cofidis/notify/pending    notificationUrlPending
//	<prefix>/cofidis/notify/other      notificationUrlOther
//
// The base names where that directory goes, not a route: with
// "https://shop.example/payments" the URLs are
// https://shop.example/payments/cofidis/return/success and so on. A base
// that already ends in the directory ("https://shop.example/cofidis", any
// case) is taken as the directory itself rather than doubled, and trailing
// slashes are dropped ("https://shop.example//" is the bare host). The
// prefix must be a clean path: no empty segment ("/a//b"), no "." or ".."
// segment, nothing that must be percent-encoded written raw (a space, a
// backslash): an http.ServeMux would answer a POST to such a path with a
// redirect that loses the body. The prefix is otherwise kept as given.
//
// The base's query is kept on all five. The host is written in its ASCII
// (punycode), lower-case form, which every HTTP client accepts; the port is
// kept as given. The base must pass the same checks as each URL in Validate;
// its errors have an empty Field and a Reason that starts with "base URL".
// The result is then checked with Validate, whose error is returned with the
// zero URLs.
func NewURLs(base string, opts ...URLOption) (URLs, error) {
	cfg := newURLConfig(opts)
	if base == "" {
		return URLs{}, newError(ErrMissingField, "", "base URL is empty")
	}
	base = trimPathSlashes(base)
	b, o, err := checkURL(base, cfg)
	if err != nil {
		err.Reason = "base URL " + err.Reason
		return URLs{}, err
	}
	authority := o.host
	if o.ip && strings.Contains(o.host, ":") {
		// An IPv6 literal, whose zone's '%' must be escaped in a URL.
		authority = "[" + strings.ReplaceAll(o.host, "%", "%25") + "]"
	}
	if p := b.Port(); p != "" {
		authority += ":" + p
	}
	prefix := b.EscapedPath()
	dir := prefix + "/cofidis"
	if last := prefix[strings.LastIndexByte(prefix, '/')+1:]; strings.EqualFold(last, "cofidis") {
		dir = prefix
	}
	head := b.Scheme + "://" + authority + dir
	query := ""
	if b.RawQuery != "" {
		query = "?" + b.RawQuery
	}
	var u URLs
	for _, e := range Endpoints() {
		u.Set(e, head+e.pathSuffix()+query)
	}
	if _, err := u.validate(cfg); err != nil {
		return URLs{}, err
	}
	return u, nil
}

// trimPathSlashes drops the trailing slashes of raw's path, leaving the rest
// of raw as written.
func trimPathSlashes(raw string) string {
	start, end := pathBounds(raw)
	trimmed := strings.TrimRight(raw[start:end], "/")
	return raw[:start] + trimmed + raw[end:]
}

// pathBounds returns where the path of an absolute raw URL starts and ends,
// as written: after the authority, before the query or fragment.
func pathBounds(raw string) (start, end int) {
	start = 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + len("://")
		if j := strings.IndexAny(raw[start:], "/?#"); j >= 0 {
			start += j
		} else {
			start = len(raw)
		}
	}
	end = len(raw)
	if j := strings.IndexAny(raw[start:], "?#"); j >= 0 {
		end = start + j
	}
	return start, end
}

// checkPathQuery checks the path and query of a raw URL as written, so that
// an http.ServeMux serves a POST to it without redirecting (which loses the
// body) and every client sends it as written: no empty segment ("//"), no
// "." or ".." segment, and nothing that must be percent-encoded written raw
// (a space, a backslash, a quote, non-ASCII…). Its error has no Field.
func checkPathQuery(raw string) *Error {
	start, end := pathBounds(raw)
	path := raw[start:end]
	query := ""
	if end < len(raw) && raw[end] == '?' {
		query, _, _ = strings.Cut(raw[end+1:], "#")
	}
	if !validURLText(path, false) {
		return newError(ErrInvalidURL, "", "path must be percent-encoded: no raw space, backslash, quote, bracket or non-ASCII character")
	}
	if !validURLText(query, true) {
		return newError(ErrInvalidURL, "", "query must be percent-encoded: no raw space, backslash, quote, bracket or non-ASCII character")
	}
	if path == "" {
		return nil
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs[1:] {
		un, _ := url.PathUnescape(seg) // validURLText checked the escapes
		switch {
		case seg == "" && i < len(segs)-2:
			return newError(ErrInvalidURL, "", "path must not contain an empty segment (//)")
		case un == "." || un == "..":
			return newError(ErrInvalidURL, "", "path must not contain a \".\" or \"..\" segment")
		}
	}
	return nil
}

// validURLText reports whether s holds only the characters RFC 3986 allows
// in a path (query true: in a query) and valid percent-escapes.
func validURLText(s string, query bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		case c == '?' && query:
		case c == '%':
			if i+2 >= len(s) {
				return false
			}
			if _, ok := hexDigit(s[i+1]); !ok {
				return false
			}
			if _, ok := hexDigit(s[i+2]); !ok {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// WithQuery returns a copy of u with v appended to the query of each of the
// five URLs, for the merchant's own elements such as an order reference:
//
//	perOrder := urls.WithQuery(url.Values{"order": {"A-1042"}})
//
// v is encoded as v.Encode() does (keys sorted, "a b+c" becomes "a+b%2Bc");
// existing parameters keep their text and order. An empty v returns u
// unchanged. An empty or unparsable URL, or one with an unparsable query, is
// left unchanged so that Validate still reports it.
func (u URLs) WithQuery(v url.Values) URLs {
	enc := v.Encode()
	if enc == "" {
		return u
	}
	return u.withRawQuery(enc)
}

func (u URLs) withRawQuery(pairs string) URLs {
	for _, e := range Endpoints() {
		u.Set(e, appendQuery(u.Get(e), pairs))
	}
	return u
}

// appendQuery appends encoded pairs to the query of raw by editing the
// string rather than re-serialising a url.URL, which would re-escape the
// host and path and sort existing parameters.
func appendQuery(raw, pairs string) string {
	if raw == "" {
		return raw
	}
	p, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if _, err := url.ParseQuery(p.RawQuery); err != nil {
		return raw
	}
	// url.Parse cuts the fragment at the first '#' and the query at the
	// first '?' before it; cutting the same way finds the same query.
	before, frag, hasFrag := strings.Cut(raw, "#")
	switch {
	case !strings.Contains(before, "?"):
		before += "?" + pairs
	case strings.HasSuffix(before, "?"), strings.HasSuffix(before, "&"):
		before += pairs
	default:
		before += "&" + pairs
	}
	if hasFrag {
		before += "#" + frag
	}
	return before
}

// Validate checks the five URLs before they are sent to initialize.
//
// Each URL must be present (ErrMissingField), parsable, absolute with a
// non-empty host, use https (http too with AllowHTTP; no other scheme, ever),
// and carry no user-info, no fragment (not even an empty "#"), a clean path
// (no empty, "." or ".." segment) and a parsable query, with nothing that
// must be percent-encoded written raw (ErrInvalidURL).
//
// The five must then share one domain name, as Cofidis requires
// (ErrDomainMismatch). Host names are compared after lower-casing, removing
// one trailing dot and converting to ASCII with IDNA, so "Shop.Example.",
// "shop.example" and an IDN and its punycode all match; a name IDNA rejects
// is ErrInvalidURL. IP literals are compared as addresses. Subdomains are
// different names: www.shop.example does not match shop.example.
//
// The documentation says nothing of scheme and port, and its strict reading
// is one exact host. Cofidis whitelists the merchant's domain for
// notifications, so a second origin on the same name is unlikely to be
// reachable for every URL: Validate requires the same scheme and the same
// effective port on all five, a missing port counting as the scheme's default
// (https://shop.example matches https://shop.example:443).
//
// Every failure is an *Error whose Field is the technicalData name of the URL
// at fault; a mismatch names the URL that differs from the first valid URL
// (returnUrlSuccess unless that one is itself invalid). So that the merchant
// sees every bad URL at once, several failures are returned together with
// errors.Join: errors.Is and errors.As work on the result, and errors.As
// yields the first. A single failure is returned as the *Error itself.
func (u URLs) Validate(opts ...URLOption) error {
	_, err := u.validate(newURLConfig(opts))
	return err
}

// Domain returns the domain name shared by the five URLs, normalised as
// Validate compares it (ASCII, lower case, no trailing dot; an IP address
// without brackets), for a router that checks the Host of incoming requests.
// It returns Validate's error when the set is not valid, so pass the same
// options.
func (u URLs) Domain(opts ...URLOption) (string, error) {
	o, err := u.validate(newURLConfig(opts))
	if err != nil {
		return "", err
	}
	return o.host, nil
}

// origin is what the five URLs must have in common.
type origin struct {
	scheme string
	host   string // IDNA ASCII, lower case, no trailing dot; or an IP address
	ip     bool   // host is an IP address
	port   int    // effective port: the scheme's default when absent
}

// validate is Validate, returning the shared origin when the set is valid.
func (u URLs) validate(cfg urlConfig) (origin, error) {
	var (
		errs    []error
		ref     origin
		refName Endpoint
	)
	for _, e := range Endpoints() {
		raw := u.Get(e)
		if raw == "" {
			errs = append(errs, newError(ErrMissingField, e.String(), "URL is empty: all five are required"))
			continue
		}
		_, o, err := checkURL(raw, cfg)
		if err != nil {
			err.Field = e.String()
			errs = append(errs, err)
			continue
		}
		if refName == EndpointUnknown {
			ref, refName = o, e
			continue
		}
		if what := differs(ref, o); what != "" {
			errs = append(errs, newError(ErrDomainMismatch, e.String(),
				what+" differs from "+refName.String()+"'s"))
		}
	}
	switch len(errs) {
	case 0:
		return ref, nil
	case 1:
		return origin{}, errs[0]
	}
	return origin{}, errors.Join(errs...)
}

// differs names the first part of o that is not the same as in ref, or
// returns "" when o and ref are the same origin.
func differs(ref, o origin) string {
	switch {
	case o.host != ref.host:
		return "host"
	case o.scheme != ref.scheme:
		return "scheme"
	case o.port != ref.port:
		return "port"
	}
	return ""
}

// checkURL applies the per-URL rules of Validate to a non-empty raw URL. Its
// error has no Field: the caller knows which URL it checked.
func checkURL(raw string, cfg urlConfig) (*url.URL, origin, *Error) {
	p, err := url.Parse(raw)
	if err != nil {
		return nil, origin{}, wrapError(ErrInvalidURL, "", "is not a parsable URL", err)
	}
	if !p.IsAbs() || p.Opaque != "" {
		return nil, origin{}, newError(ErrInvalidURL, "", "must be absolute (https://host/path)")
	}
	o := origin{scheme: p.Scheme}
	switch {
	case p.Scheme == "https":
		o.port = 443
	case p.Scheme == "http" && cfg.allowHTTP:
		o.port = 80
	case cfg.allowHTTP:
		return nil, origin{}, newError(ErrInvalidURL, "", "must use the https or http scheme")
	default:
		return nil, origin{}, newError(ErrInvalidURL, "", "must use the https scheme (http only with AllowHTTP)")
	}
	if p.User != nil {
		return nil, origin{}, newError(ErrInvalidURL, "", "must not contain user-info")
	}
	// url.Parse drops an empty fragment, so look at the raw text: a literal
	// '#' can only start a fragment.
	if strings.Contains(raw, "#") {
		return nil, origin{}, newError(ErrInvalidURL, "", "must not contain a fragment (#)")
	}
	if p.Hostname() == "" {
		return nil, origin{}, newError(ErrInvalidURL, "", "must have a host")
	}
	if port := p.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, origin{}, newError(ErrInvalidURL, "", "port must be between 1 and 65535")
		}
		o.port = n
	}
	host, ip, err := normalizeHost(p.Hostname())
	if err != nil {
		return nil, origin{}, wrapError(ErrInvalidURL, "", "host is not a valid domain name", err)
	}
	o.host, o.ip = host, ip
	if err := checkPathQuery(raw); err != nil {
		return nil, origin{}, err
	}
	if _, err := url.ParseQuery(p.RawQuery); err != nil {
		return nil, origin{}, wrapError(ErrInvalidURL, "", "query is not parsable", err)
	}
	return p, o, nil
}

// normalizeHost returns the comparable form of a URL's hostname: the
// canonical text of an IP address, or the lower-case IDNA ASCII form of a
// name without its trailing dot.
func normalizeHost(h string) (host string, ip bool, err error) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), true, nil
	}
	name := strings.TrimSuffix(strings.ToLower(h), ".")
	// The Lookup profile plus DNS length checks, which also reject the
	// empty labels of "shop..example" that Lookup lets through. Built per
	// call: a Profile is cheap and this keeps the package free of globals.
	profile := idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))
	ascii, err := profile.ToASCII(name)
	if err != nil {
		return "", false, err
	}
	if strings.HasSuffix(ascii, ".") {
		// VerifyDNSLength accepts the root label, so a second trailing
		// dot would survive and make "shop.example.." a distinct host.
		return "", false, errors.New("empty label at the end of the host")
	}
	if endsInNumber(ascii) {
		// URL parsers read "127.1" or "0x7f.0.0.1" as IPv4 addresses in
		// shorthand; comparing them as names would miss that they are the
		// same host as 127.0.0.1. No TLD is numeric, so refuse them.
		return "", false, errors.New("numeric last label: write IPv4 addresses as four decimal numbers")
	}
	return ascii, false, nil
}

// endsInNumber reports whether the last label of an ASCII host name is a
// decimal or 0x-prefixed hexadecimal number, as the WHATWG URL standard
// defines it for telling IPv4 shorthands from names.
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	digits := "0123456789"
	if rest, ok := strings.CutPrefix(last, "0x"); ok {
		last, digits = rest, "0123456789abcdef"
		if last == "" {
			return true
		}
	}
	return last != "" && strings.Trim(last, digits) == ""
}

// queryContains reports whether every value of every key of want is among
// the values of the same key in have.
func queryContains(have, want url.Values) bool {
	for k, vs := range want {
		for _, v := range vs {
			if !slices.Contains(have[k], v) {
				return false
			}
		}
	}
	return true
}
