package cofidistest

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"

	"github.com/cofidis-go/cofidis"
)

// Header values of the fake's requests. The documentation specifies only the
// Content-Type; the rest are plausible stand-ins, chosen so that a receiver
// telling a browser from a server by its headers sees the difference.
const (
	// ContentTypeForm is the Content-Type Cofidis documents for both
	// channels.
	ContentTypeForm = "application/x-www-form-urlencoded"
	// CofidisOrigin is the Origin of the redirects, a stand-in for the
	// (undocumented) host of Cofidis' journey pages.
	CofidisOrigin = "https://www.cofidis.fr"
	// BrowserAccept is the Accept header of a browser's navigation.
	BrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	// BrowserUserAgent is the User-Agent of the redirects.
	BrowserUserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	// NotifierUserAgent is the User-Agent of the notifications.
	NotifierUserAgent = "cofidistest-notifier/1.0"
	// DefaultRemoteAddr is the client address of the requests HTTPRequest
	// builds, as httptest.NewRequest sets it.
	DefaultRemoteAddr = "192.0.2.1:1234"
)

// Request is one callback as Cofidis' servers (notifications) or the
// customer's browser (redirects) post it: a form-urlencoded POST with
// transactionKey as JSON, transactionStatus and, when set, subState, in that
// order. The zero value of every knob gives exactly that; the knobs below the
// first group produce the documented variants and deliberately broken
// requests.
type Request struct {
	// Endpoint is the technicalData URL the request is posted to. Its
	// channel also chooses the headers unless Channel says otherwise.
	Endpoint cofidis.Endpoint
	// Key is marshalled as the transactionKey JSON. Its
	// ProviderTransactionID decides the documented variants: null
	// (cofidis.NullValue(), what NewKey sets), absent (the zero NullString)
	// or a string.
	Key cofidis.TransactionKey
	// Status is posted verbatim as transactionStatus, so any spelling the
	// documentation uses can be sent ("To_confirm", "refused") as well as
	// unknown statuses.
	Status cofidis.Status
	// SubState is posted verbatim as subState; empty leaves the field out,
	// as redirects do.
	SubState cofidis.SubState
	// MultilineJSON writes the key one member per line, as the
	// documentation prints it, instead of compact JSON.
	MultilineJSON bool
	// Channel chooses the headers: a browser's navigation for
	// ChannelRedirect, a server's POST for ChannelNotification. The zero
	// value, ChannelUnknown, follows Endpoint (a server's POST when Endpoint
	// is unknown too).
	Channel cofidis.Channel

	// RawKey, when not empty, is posted as transactionKey instead of Key's
	// JSON: invalid JSON, duplicate members, a JSON array…
	RawKey string
	// OmitKey leaves transactionKey out of the body.
	OmitKey bool
	// OmitStatus leaves transactionStatus out of the body.
	OmitStatus bool
	// RepeatStatus posts transactionStatus twice (HTTP parameter
	// pollution). Use ExtraFields for a second, different value.
	RepeatStatus bool
	// ExtraFields are appended to the body after the documented fields,
	// keys in sorted order: unknown fields, or a second transactionKey or
	// subState.
	ExtraFields url.Values
	// RawBody, when not empty, is the whole body, verbatim; every field
	// above is then ignored.
	RawBody string
	// ContentType replaces ContentTypeForm ("text/plain",
	// "application/x-www-form-urlencoded; charset=ISO-8859-1"…). To send no
	// Content-Type at all, remove it through Header.
	ContentType string
	// Method replaces POST.
	Method string
	// Header is applied last: each name replaces the default header of
	// that name, and a name with no values removes it.
	Header http.Header
	// RemoteAddr is the client address of the requests HTTPRequest builds
	// (default DefaultRemoteAddr), for testing WithAllowedSources in
	// process. Requests sent over HTTP come from the connection's address.
	RemoteAddr string
}

// Body returns the request body.
func (r Request) Body() string {
	if r.RawBody != "" {
		return r.RawBody
	}
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	if !r.OmitKey {
		add(cofidis.FieldTransactionKey, r.KeyJSON())
	}
	if !r.OmitStatus {
		add(cofidis.FieldTransactionStatus, string(r.Status))
		if r.RepeatStatus {
			add(cofidis.FieldTransactionStatus, string(r.Status))
		}
	}
	if r.SubState != "" {
		add(cofidis.FieldSubState, string(r.SubState))
	}
	for _, k := range slices.Sorted(maps.Keys(r.ExtraFields)) {
		for _, v := range r.ExtraFields[k] {
			add(k, v)
		}
	}
	return b.String()
}

// KeyJSON returns the transactionKey value as posted: RawKey when set,
// otherwise Key as JSON, compact or one member per line (MultilineJSON).
func (r Request) KeyJSON() string {
	if r.RawKey != "" {
		return r.RawKey
	}
	var (
		b   []byte
		err error
	)
	if r.MultilineJSON {
		b, err = json.MarshalIndent(r.Key, "", "")
	} else {
		b, err = json.Marshal(r.Key)
	}
	if err != nil {
		// Unreachable: a TransactionKey holds only strings.
		panic("cofidistest: " + err.Error())
	}
	return string(b)
}

// Headers returns the request's headers: a browser's navigation or a
// server's POST (see Channel), then Header applied.
func (r Request) Headers() http.Header {
	h := http.Header{}
	h.Set("Content-Type", cmp.Or(r.ContentType, ContentTypeForm))
	if r.channel() == cofidis.ChannelRedirect {
		h.Set("Accept", BrowserAccept)
		h.Set("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.5")
		h.Set("Origin", CofidisOrigin)
		h.Set("Referer", CofidisOrigin+"/")
		h.Set("Sec-Fetch-Dest", "document")
		h.Set("Sec-Fetch-Mode", "navigate")
		h.Set("Sec-Fetch-Site", "cross-site")
		h.Set("Sec-Fetch-User", "?1")
		h.Set("Upgrade-Insecure-Requests", "1")
		h.Set("User-Agent", BrowserUserAgent)
	} else {
		h.Set("Accept", "*/*")
		h.Set("User-Agent", NotifierUserAgent)
	}
	for k, vs := range r.Header {
		k = http.CanonicalHeaderKey(k)
		if len(vs) == 0 {
			h.Del(k)
			continue
		}
		h[k] = slices.Clone(vs)
	}
	return h
}

// channel is the channel whose headers the request carries.
func (r Request) channel() cofidis.Channel {
	if r.Channel != cofidis.ChannelUnknown {
		return r.Channel
	}
	if r.Endpoint.Channel() == cofidis.ChannelRedirect {
		return cofidis.ChannelRedirect
	}
	return cofidis.ChannelNotification
}

func (r Request) method() string { return cmp.Or(r.Method, http.MethodPost) }

// URL returns the URL the request is posted to: urls' URL for Endpoint
// ("" for EndpointUnknown).
func (r Request) URL(urls cofidis.URLs) string {
	return urls.Get(r.Endpoint)
}

// HTTPRequest returns the request as a server receives it, for calling a
// handler in process: handler.ServeHTTP(httptest.NewRecorder(), req). It
// panics, like httptest.NewRequest, when urls has no valid URL for
// Endpoint.
func (r Request) HTTPRequest(urls cofidis.URLs) *http.Request {
	return r.httpRequest(context.Background(), urls)
}

func (r Request) httpRequest(ctx context.Context, urls cofidis.URLs) *http.Request {
	target := r.URL(urls)
	if target == "" {
		panic("cofidistest: Request.HTTPRequest: no URL for endpoint " + r.Endpoint.String())
	}
	req := httptest.NewRequestWithContext(ctx, r.method(), target, strings.NewReader(r.Body()))
	req.Header = r.Headers()
	req.RemoteAddr = cmp.Or(r.RemoteAddr, DefaultRemoteAddr)
	return req
}

// NewClientRequest returns the request for an http.Client to send to target,
// an absolute URL (usually r.URL(urls)).
func (r Request) NewClientRequest(ctx context.Context, target string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, r.method(), target, strings.NewReader(r.Body()))
	if err != nil {
		return nil, err
	}
	req.Header = r.Headers()
	return req, nil
}
