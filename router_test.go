package cofidis_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// expectedStatus is a status the documentation sends to e.
func expectedStatus(e cofidis.Endpoint) string {
	switch e {
	case cofidis.EndpointReturnSuccess, cofidis.EndpointNotificationSuccess:
		return "to_confirm"
	case cofidis.EndpointNotificationPending:
		return "pending"
	default:
		return "Refused"
	}
}

// newTestRouter builds a Router over urls whose callbacks record into got.
func newTestRouter(t *testing.T, urls cofidis.URLs, got *received, opts ...cofidis.Option) *cofidis.Router {
	t.Helper()
	rt, err := buildRouter(urls, got.redirect(), got.notification(nil),
		append([]cofidis.Option{cofidis.WithLogger(quietLogger())}, opts...)...)
	require.NoError(t, err)
	return rt
}

// mustURLs is cofidis.NewURLs for a base known to be valid.
func mustURLs(t *testing.T, base string) cofidis.URLs {
	t.Helper()
	urls, err := cofidis.NewURLs(base)
	require.NoError(t, err)
	return urls
}

// sameURL gives all five endpoints the URL raw.
func sameURL(raw string) cofidis.URLs {
	var u cofidis.URLs
	for _, e := range cofidis.Endpoints() {
		u.Set(e, raw)
	}
	return u
}

// byQuery gives the five endpoints one path, told apart by ?kind=.
func byQuery(base string) cofidis.URLs {
	var u cofidis.URLs
	for _, e := range cofidis.Endpoints() {
		u.Set(e, base+"?kind="+e.String())
	}
	return u
}

// wantAnswer is the status a Router's callbacks answer for channel ch.
func wantAnswer(ch cofidis.Channel) int {
	if ch == cofidis.ChannelRedirect {
		return http.StatusSeeOther
	}
	return http.StatusOK
}

func TestRouter_routesEachURLToItsChannel(t *testing.T) {
	t.Parallel()
	sets := []struct {
		name string
		urls cofidis.URLs
	}{
		{"distinct paths from NewURLs", mustURLs(t, "https://shop.example/payments")},
		{"distinct paths at the root", mustURLs(t, "https://shop.example")},
		{"one path told apart by query", byQuery("https://shop.example/cofidis")},
		{"escaped paths", mustURLs(t, "https://shop.example/caf%C3%A9/pay%20ments")},
	}
	for _, set := range sets {
		for _, e := range cofidis.Endpoints() {
			t.Run(set.name+": routes "+e.String()+" to the "+e.Channel().String()+" callback", func(t *testing.T) {
				t.Parallel()
				var got received
				rt := newTestRouter(t, set.urls, &got)

				w := serve(rt, postForm(set.urls.Get(e), formBody(docKeyCompact, expectedStatus(e), "")))

				require.Equal(t, wantAnswer(e.Channel()), w.Code)
				ev, via := got.only(t)
				assert.Equal(t, e.Channel(), via, "the right callback ran")
				assert.Equal(t, e.Channel(), ev.Channel)
				assert.False(t, ev.ChannelInferred)
				got1, ok := ev.Endpoint()
				require.True(t, ok)
				assert.Equal(t, e, got1)
				assert.False(t, ev.Unexpected)
				assert.Equal(t, wantDocKey, ev.TransactionKey)
			})
		}
	}
}

func TestRouter_mounting(t *testing.T) {
	t.Parallel()
	urls := mustURLs(t, "https://shop.example/payments")
	body := formBody(docKeyCompact, "to_confirm", "")

	t.Run("serves under a ServeMux subtree", func(t *testing.T) {
		t.Parallel()
		var got received
		mux := http.NewServeMux()
		mux.Handle("/payments/", newTestRouter(t, urls, &got))

		w := serve(mux, postForm(urls.NotificationURLSuccess, body))

		assert.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, 1, got.count())
	})
	for _, path := range []string{
		"/payments/cofidis/notify/unknown",
		"/payments/cofidis/notify/success/",
		"/payments/cofidis/notify",
		"/payments/",
		"/Payments/cofidis/notify/success",
	} {
		t.Run("answers 404 to the unknown path "+path, func(t *testing.T) {
			t.Parallel()
			var got received
			var reported []error
			onError := cofidis.WithOnError(func(_ *http.Request, err error) { reported = append(reported, err) })
			w := serve(newTestRouter(t, urls, &got, onError), postForm(path, body))
			assert.Equal(t, http.StatusNotFound, w.Code)
			assert.Zero(t, got.count())
			require.Len(t, reported, 1, "a 404 is reported to OnError: wiring mistakes must be visible")
			assert.ErrorIs(t, reported[0], cofidis.ErrUnknownURL)
			assert.Equal(t, http.StatusNotFound, cofidis.HTTPStatus(reported[0]))
		})
	}
	t.Run("routes a path whatever its percent-encoding", func(t *testing.T) {
		t.Parallel()
		var got received
		u := mustURLs(t, "https://shop.example/caf%C3%A9")
		rt := newTestRouter(t, u, &got)
		for _, path := range []string{
			"/caf%C3%A9/cofidis/notify/other",
			"/caf%c3%a9/cofidis/notify/other",
			"/café/cofidis/notify/other",
			"/caf%C3%A9/cofidis/notify/%6Fther",
		} {
			assert.Equal(t, http.StatusOK, serve(rt, postForm(path, formBody(docKeyCompact, "Refused", ""))).Code, path)
		}
		require.Equal(t, 4, got.count())
	})
	t.Run("keeps an escaped slash distinct from a slash", func(t *testing.T) {
		t.Parallel()
		var got received
		u := mustURLs(t, "https://shop.example/a%2Fb")
		rt := newTestRouter(t, u, &got)
		assert.Equal(t, http.StatusOK, serve(rt, postForm("/a%2fb/cofidis/notify/other", formBody(docKeyCompact, "Refused", ""))).Code)
		assert.Equal(t, http.StatusNotFound, serve(rt, postForm("/a/b/cofidis/notify/other", formBody(docKeyCompact, "Refused", ""))).Code)
	})
	t.Run("answers 405 with Allow: POST to a GET on a known path", func(t *testing.T) {
		t.Parallel()
		var got received
		r := httptest.NewRequest(http.MethodGet, urls.NotificationURLOther, nil)
		w := serve(newTestRouter(t, urls, &got), r)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
		assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
	})
	t.Run("answers a GET on a redirect path with the error page and Allow: POST", func(t *testing.T) {
		t.Parallel()
		var got received
		r := httptest.NewRequest(http.MethodGet, urls.ReturnURLOther, nil)
		w := serve(newTestRouter(t, urls, &got), r)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
		assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
		assert.Contains(t, w.Header().Get("Content-Type"), "text/html")
	})

	t.Run("Register mounts every route on a ServeMux", func(t *testing.T) {
		t.Parallel()
		var got received
		mux := http.NewServeMux()
		newTestRouter(t, urls, &got).Register(mux)
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })

		for _, e := range cofidis.Endpoints() {
			w := serve(mux, postForm(urls.Get(e), formBody(docKeyCompact, expectedStatus(e), "")))
			assert.Equal(t, wantAnswer(e.Channel()), w.Code, e.String())
		}
		require.Equal(t, 5, got.count())
		for i, e := range cofidis.Endpoints() {
			got1, _ := got.events[i].Endpoint()
			assert.Equal(t, e, got1)
		}

		// Only the exact paths are taken; the rest of the mux is untouched.
		w := serve(mux, postForm("/payments/cofidis/notify/success/extra", body))
		assert.Equal(t, http.StatusTeapot, w.Code)
		w = serve(mux, httptest.NewRequest(http.MethodGet, urls.NotificationURLSuccess, nil))
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code, "non-POST methods reach the handler")
	})
	t.Run("Register takes only the exact path of a URL ending in a slash", func(t *testing.T) {
		t.Parallel()
		var got received
		mux := http.NewServeMux()
		newTestRouter(t, sameURL("https://shop.example/cofidis/"), &got).Register(mux)
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })

		assert.Equal(t, http.StatusOK, serve(mux, postForm("/cofidis/", body)).Code)
		assert.Equal(t, http.StatusTeapot, serve(mux, postForm("/cofidis/other", body)).Code)
	})

	t.Run("Routes lists each distinct path once with its endpoints", func(t *testing.T) {
		t.Parallel()
		var got received
		routes := newTestRouter(t, urls, &got).Routes()
		require.Len(t, routes, 5)
		for i, e := range cofidis.Endpoints() {
			u, err := url.Parse(urls.Get(e))
			require.NoError(t, err)
			assert.Equal(t, u.EscapedPath(), routes[i].Path)
			single, ok := routes[i].Endpoints.Single()
			assert.True(t, ok)
			assert.Equal(t, e, single)
		}
	})
	t.Run("Routes' handlers work when mounted at rewritten paths", func(t *testing.T) {
		t.Parallel()
		var got received
		rt := newTestRouter(t, urls, &got)
		mux := http.NewServeMux()
		routes := rt.Routes()
		for i, r := range routes {
			mux.Handle("POST /hooks/"+strconv.Itoa(i), r.Handler)
			mux.Handle("POST /api/v1"+r.Path, http.StripPrefix("/api/v1", r.Handler))
		}
		for i, r := range routes {
			e, _ := r.Endpoints.Single()
			st := expectedStatus(e)
			assert.Equal(t, wantAnswer(e.Channel()), serve(mux, postForm("/hooks/"+strconv.Itoa(i), formBody(docKeyCompact, st, ""))).Code)
			assert.Equal(t, wantAnswer(e.Channel()), serve(mux, postForm("/api/v1"+r.Path, formBody(docKeyCompact, st, ""))).Code)
		}
		require.Equal(t, 10, got.count())
		for i, ev := range got.events {
			e, _ := ev.Endpoint()
			assert.Equal(t, cofidis.Endpoints()[i/2], e)
		}
	})
	t.Run("Routes returns a copy", func(t *testing.T) {
		t.Parallel()
		var got received
		rt := newTestRouter(t, urls, &got)
		rt.Routes()[0].Path = "/changed"
		assert.NotEqual(t, "/changed", rt.Routes()[0].Path)
	})
}

func TestRouter_queryElements(t *testing.T) {
	t.Parallel()
	urls := byQuery("https://shop.example/cofidis")
	body := formBody(docKeyCompact, "to_confirm", "")

	t.Run("offers one route for a path shared by five URLs", func(t *testing.T) {
		t.Parallel()
		var got received
		routes := newTestRouter(t, urls, &got).Routes()
		require.Len(t, routes, 1)
		assert.Equal(t, "/cofidis", routes[0].Path)
		assert.Equal(t, 5, routes[0].Endpoints.Len())
	})
	for _, target := range []string{
		"/cofidis",
		"/cofidis?kind=",
		"/cofidis?kind=notificationUrlUnknown",
		"/cofidis?other=notificationUrlSuccess",
		"/cofidis?Kind=notificationUrlSuccess",
	} {
		t.Run("answers 404 when the query matches no URL: "+target, func(t *testing.T) {
			t.Parallel()
			var got received
			w := serve(newTestRouter(t, urls, &got), postForm(target, body))
			assert.Equal(t, http.StatusNotFound, w.Code)
			assert.Zero(t, got.count())
		})
	}
	t.Run("matches a query element among others, in any order", func(t *testing.T) {
		t.Parallel()
		var got received
		w := serve(newTestRouter(t, urls, &got), postForm("/cofidis?order=A-42&kind=notificationUrlPending&x=1", body))
		require.Equal(t, http.StatusOK, w.Code)
		ev, _ := got.only(t)
		e, _ := ev.Endpoint()
		assert.Equal(t, cofidis.EndpointNotificationPending, e)
	})
	t.Run("matches query elements whatever their percent-encoding", func(t *testing.T) {
		t.Parallel()
		var got received
		u := byQuery("https://shop.example/cofidis")
		u.NotificationURLOther = "https://shop.example/cofidis?kind=other+one"
		u.ReturnURLOther = "https://shop.example/cofidis?kind=other%2Freturn"
		rt := newTestRouter(t, u, &got)
		require.Equal(t, http.StatusOK, serve(rt, postForm("/cofidis?kind=other%20one", body)).Code)
		require.Equal(t, http.StatusSeeOther, serve(rt, postForm("/cofidis?kind=other/return", body)).Code)
		require.Equal(t, 2, got.count())
		e, _ := got.events[0].Endpoint()
		assert.Equal(t, cofidis.EndpointNotificationOther, e)
		e, _ = got.events[1].Endpoint()
		assert.Equal(t, cofidis.EndpointReturnOther, e)
	})

	perOrder := []struct {
		name string
		urls cofidis.URLs
	}{
		{"distinct paths", mustURLs(t, "https://shop.example/payments?shop=fr")},
		{"query-distinguished URLs", urls},
		{"identical URLs", sameURL("https://shop.example/cofidis")},
	}
	for _, set := range perOrder {
		t.Run("delivers per-order query elements in the event ("+set.name+")", func(t *testing.T) {
			t.Parallel()
			var got received
			rt := newTestRouter(t, set.urls, &got)
			sent := set.urls.WithQuery(url.Values{"order": {"A 42/é"}}).WithQuery(url.Values{"cart": {"7"}})
			for _, e := range cofidis.Endpoints() {
				r := postForm(sent.Get(e), formBody(docKeyCompact, expectedStatus(e), ""))
				if e.Channel() == cofidis.ChannelRedirect {
					r.Header.Set("Sec-Fetch-Mode", "navigate") // as a browser posts
				}
				w := serve(rt, r)
				require.Equal(t, wantAnswer(e.Channel()), w.Code, e.String())
			}
			require.Equal(t, 5, got.count())
			for i, ev := range got.events {
				e := cofidis.Endpoints()[i]
				wantQuery, err := url.Parse(sent.Get(e))
				require.NoError(t, err)
				assert.Equal(t, wantQuery.RawQuery, ev.RawQuery)
				assert.Equal(t, "A 42/é", ev.Query().Get("order"))
				assert.Equal(t, "7", ev.Query().Get("cart"))
				assert.True(t, ev.Endpoints.Has(e))
			}
		})
	}
}

func TestRouter_identicalURLs(t *testing.T) {
	t.Parallel()
	urls := sameURL("https://shop.example/cofidis/callback")
	notificationSet := cofidis.EndpointSet(0).
		Add(cofidis.EndpointNotificationSuccess).
		Add(cofidis.EndpointNotificationPending).
		Add(cofidis.EndpointNotificationOther)
	redirectSet := cofidis.EndpointSet(0).Add(cofidis.EndpointReturnSuccess).Add(cofidis.EndpointReturnOther)

	tests := []struct {
		name    string
		headers map[string]string
		status  string
		want    cofidis.Channel
	}{
		{"treats a POST without browser headers as a notification", nil, "to_confirm", cofidis.ChannelNotification},
		{"treats a server's Accept: */* as a notification", map[string]string{"Accept": "*/*"}, "Refused", cofidis.ChannelNotification},
		{"treats Sec-Fetch-Mode: navigate as a browser redirect", map[string]string{"Sec-Fetch-Mode": "navigate"}, "to_confirm", cofidis.ChannelRedirect},
		{"treats Sec-Fetch-Dest: document as a browser redirect", map[string]string{"Sec-Fetch-Dest": "document"}, "pending", cofidis.ChannelRedirect},
		{"treats Accept: text/html as a browser redirect", map[string]string{"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}, "Refused", cofidis.ChannelRedirect},
		{"reads Accept case-insensitively", map[string]string{"Accept": "Text/HTML"}, "Refused", cofidis.ChannelRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got received
			r := postForm(urls.ReturnURLSuccess, formBody(docKeyCompact, tt.status, ""))
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}

			w := serve(newTestRouter(t, urls, &got), r)

			require.Equal(t, wantAnswer(tt.want), w.Code)
			ev, via := got.only(t)
			assert.Equal(t, tt.want, via, "the right callback ran")
			assert.Equal(t, tt.want, ev.Channel)
			assert.True(t, ev.ChannelInferred)
			_, single := ev.Endpoint()
			assert.False(t, single, "the endpoint is ambiguous")
			if tt.want == cofidis.ChannelNotification {
				assert.Equal(t, 3, ev.Endpoints.Len())
				assert.Equal(t, notificationSet, ev.Endpoints)
			} else {
				assert.Equal(t, 2, ev.Endpoints.Len())
				assert.Equal(t, redirectSet, ev.Endpoints)
			}
			assert.False(t, ev.Unexpected, "some candidate URL expects %s", tt.status)
		})
	}

	t.Run("does not infer the channel of URLs shared within one channel", func(t *testing.T) {
		t.Parallel()
		u := mustURLs(t, "https://shop.example/payments")
		u.NotificationURLPending = u.NotificationURLSuccess
		u.NotificationURLOther = u.NotificationURLSuccess
		var got received
		r := postForm(u.NotificationURLSuccess, formBody(docKeyCompact, "pending", ""))
		r.Header.Set("Accept", "text/html") // ignored: no redirect URL here

		w := serve(newTestRouter(t, u, &got), r)

		require.Equal(t, http.StatusOK, w.Code)
		ev, _ := got.only(t)
		assert.Equal(t, cofidis.ChannelNotification, ev.Channel)
		assert.False(t, ev.ChannelInferred)
		assert.Equal(t, notificationSet, ev.Endpoints)
	})
}

func TestRouter_unexpectedStatus(t *testing.T) {
	t.Parallel()
	urls := mustURLs(t, "https://shop.example/payments")
	tests := []struct {
		name           string
		endpoint       cofidis.Endpoint
		status         string
		wantUnexpected bool
		wantKnown      bool
	}{
		{"flags Refused on notificationUrlSuccess and still delivers it", cofidis.EndpointNotificationSuccess, "Refused", true, true},
		{"flags to_confirm on returnUrlOther and still delivers it", cofidis.EndpointReturnOther, "to_confirm", true, true},
		{"flags pending on returnUrlSuccess", cofidis.EndpointReturnSuccess, "pending", true, true},
		{"does not flag pending on notificationUrlPending", cofidis.EndpointNotificationPending, "pending", false, true},
		{"does not flag a to_confirm after a pending on notificationUrlPending", cofidis.EndpointNotificationPending, "to_confirm", false, true},
		{"does not flag Aborted on notificationUrlOther", cofidis.EndpointNotificationOther, "Aborted", false, true},
		{"never flags an unknown status, which is not Known", cofidis.EndpointNotificationSuccess, "brand_new_status", false, false},
		{"never flags an unknown status on a redirect", cofidis.EndpointReturnSuccess, "brand_new_status", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got received
			w := serve(newTestRouter(t, urls, &got), postForm(urls.Get(tt.endpoint), formBody(docKeyCompact, tt.status, "")))

			assert.Equal(t, wantAnswer(tt.endpoint.Channel()), w.Code)
			ev, _ := got.only(t)
			assert.Equal(t, tt.wantUnexpected, ev.Unexpected)
			assert.Equal(t, tt.wantKnown, ev.Status.Known())
		})
	}
}

func TestNewRouter_validation(t *testing.T) {
	t.Parallel()
	redirect := func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil }
	notify := func(context.Context, cofidis.Event) error { return nil }

	t.Run("leaves the domain to Validate: routing needs only path and query", func(t *testing.T) {
		t.Parallel()
		u := mustURLs(t, "https://shop.example/payments")
		u.NotificationURLOther = "https://other.example/payments/cofidis/notify/other"
		_, err := buildRouter(u, redirect, notify)
		require.NoError(t, err)
		require.ErrorIs(t, u.Validate(), cofidis.ErrDomainMismatch)
	})
	t.Run("rejects a missing URL with ErrMissingField naming it", func(t *testing.T) {
		t.Parallel()
		u := mustURLs(t, "https://shop.example/payments")
		u.ReturnURLOther = ""
		rt, err := buildRouter(u, redirect, notify)
		require.ErrorIs(t, err, cofidis.ErrMissingField)
		assert.Nil(t, rt)
		var e *cofidis.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "returnUrlOther", e.Field)
	})
	for name, raw := range map[string]string{
		"a relative URL":               "/payments/notify",
		"an unparsable URL":            "https://shop.example/%zz",
		"a path with an empty segment": "https://shop.example/pay//notify",
		"a path with a raw space":      "https://shop.example/pay notify",
		"a path with a backslash":      `https://shop.example/pay\notify`,
		"a dot segment":                "https://shop.example/pay/../notify",
	} {
		t.Run("rejects "+name+" with ErrInvalidURL", func(t *testing.T) {
			t.Parallel()
			u := mustURLs(t, "https://shop.example/payments")
			u.NotificationURLPending = raw
			_, err := buildRouter(u, redirect, notify)
			require.ErrorIs(t, err, cofidis.ErrInvalidURL)
			var e *cofidis.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "notificationUrlPending", e.Field)
		})
	}
	t.Run("accepts the URLs of NewURLs(base, AllowHTTP()) with no further option", func(t *testing.T) {
		t.Parallel()
		var got received
		u, err := cofidis.NewURLs("http://localhost:8080/dev", cofidis.AllowHTTP())
		require.NoError(t, err)
		rt := newTestRouter(t, u, &got)
		w := serve(rt, postForm(u.NotificationURLPending, formBody(docKeyCompact, "pending", "signed")))
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, 1, got.count())
	})
	t.Run("rejects a nil redirect callback with ErrInvalidOption", func(t *testing.T) {
		t.Parallel()
		_, err := buildRouter(mustURLs(t, "https://shop.example"), nil, notify)
		require.ErrorIs(t, err, cofidis.ErrInvalidOption)
		assert.Contains(t, err.Error(), "RedirectFunc")
	})
	t.Run("rejects a nil notification callback with ErrInvalidOption", func(t *testing.T) {
		t.Parallel()
		_, err := buildRouter(mustURLs(t, "https://shop.example"), redirect, nil)
		require.ErrorIs(t, err, cofidis.ErrInvalidOption)
		assert.Contains(t, err.Error(), "NotificationFunc")
	})
	t.Run("applies options to both channels", func(t *testing.T) {
		t.Parallel()
		urls := mustURLs(t, "https://shop.example")
		var hooked []error
		var got received
		rt := newTestRouter(t, urls, &got,
			cofidis.WithMaxBodyBytes(16),
			cofidis.WithOnError(func(_ *http.Request, err error) { hooked = append(hooked, err) }))
		body := formBody(docKeyCompact, "to_confirm", "")
		assert.Equal(t, http.StatusRequestEntityTooLarge, serve(rt, postForm(urls.ReturnURLSuccess, body)).Code)
		assert.Equal(t, http.StatusRequestEntityTooLarge, serve(rt, postForm(urls.NotificationURLSuccess, body)).Code)
		require.Len(t, hooked, 2)
		for _, err := range hooked {
			assert.ErrorIs(t, err, cofidis.ErrBodyTooLarge)
		}
	})
}

func TestOptions_rejectedAtConstruction(t *testing.T) {
	t.Parallel()
	verifier := cofidis.WithVerifier(statusIs(cofidis.StatusToConfirm))
	store := cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}))
	tests := []struct {
		name string
		opts []cofidis.Option
		want string // in the error, naming the option at fault
	}{
		{"a nil option", []cofidis.Option{verifier, nil}, "nil option"},
		{"a zero WithMaxBodyBytes", []cofidis.Option{verifier, cofidis.WithMaxBodyBytes(0)}, "WithMaxBodyBytes"},
		{"a negative WithMaxBodyBytes", []cofidis.Option{verifier, cofidis.WithMaxBodyBytes(-1)}, "WithMaxBodyBytes"},
		{"a nil logger", []cofidis.Option{verifier, cofidis.WithLogger(nil)}, "WithLogger"},
		{"a nil OnError hook", []cofidis.Option{verifier, cofidis.WithOnError(nil)}, "WithOnError"},
		{"a nil redirect error handler", []cofidis.Option{verifier, cofidis.WithRedirectError(nil)}, "WithRedirectError"},
		{"an empty WithAllowedSources", []cofidis.Option{verifier, cofidis.WithAllowedSources()}, "WithAllowedSources"},
		{"a bad CIDR in WithAllowedSources", []cofidis.Option{verifier, cofidis.WithAllowedSources("203.0.113.0/24", "203.0.113.0/33")}, "WithAllowedSources"},
		{"a host name in WithAllowedSources", []cofidis.Option{verifier, cofidis.WithAllowedSources("cofidis.fr")}, "WithAllowedSources"},
		{"an empty string in WithAllowedSources", []cofidis.Option{verifier, cofidis.WithAllowedSources("")}, "WithAllowedSources"},
		{"an empty WithTrustedProxies", []cofidis.Option{verifier, cofidis.WithTrustedProxies()}, "WithTrustedProxies"},
		{"a bad address in WithTrustedProxies", []cofidis.Option{verifier, cofidis.WithTrustedProxies("10.0.0.256")}, "WithTrustedProxies"},
		{"a nil verifier", []cofidis.Option{cofidis.WithVerifier(nil)}, "WithVerifier"},
		{"a nil VerifierFunc", []cofidis.Option{cofidis.WithVerifier(cofidis.VerifierFunc(nil))}, "WithVerifier"},
		{"a zero WithVerifyTimeout", []cofidis.Option{verifier, cofidis.WithVerifyTimeout(0)}, "WithVerifyTimeout"},
		{"a negative WithVerifyTimeout", []cofidis.Option{verifier, cofidis.WithVerifyTimeout(-1)}, "WithVerifyTimeout"},
		{"a nil clock", []cofidis.Option{verifier, cofidis.WithClock(nil)}, "WithClock"},
		{"a nil store", []cofidis.Option{verifier, cofidis.WithIdempotency(nil)}, "WithIdempotency"},
		{"a zero lease", []cofidis.Option{verifier, store, cofidis.WithLease(0)}, "WithLease"},
		{"a nil delivery hook", []cofidis.Option{verifier, cofidis.WithDeliveryHook(nil)}, "WithDeliveryHook"},
		{"a zero rejection log limit", []cofidis.Option{verifier, cofidis.WithRejectionLogLimit(0, time.Second)}, "WithRejectionLogLimit"},
		{"a rejection log limit without interval", []cofidis.Option{verifier, cofidis.WithRejectionLogLimit(5, 0)}, "WithRejectionLogLimit"},

		// Proof is a choice made once.
		{"neither a Verifier nor the explicit opt-out", nil, "WithInsecureSkipVerify"},
		{"both a Verifier and the opt-out", []cofidis.Option{verifier, cofidis.WithInsecureSkipVerify()}, "WithInsecureSkipVerify"},

		// Dependent options without their prerequisite.
		{"WithVerifyTimeout without WithVerifier", []cofidis.Option{cofidis.WithInsecureSkipVerify(), cofidis.WithVerifyTimeout(time.Second)}, "WithVerifyTimeout"},
		{"WithLease without WithIdempotency", []cofidis.Option{verifier, cofidis.WithLease(time.Minute)}, "WithLease"},
		{"WithStaleEvents without WithIdempotency", []cofidis.Option{verifier, cofidis.WithStaleEvents(true)}, "WithStaleEvents"},
		{"WithStaleEvents(false) without WithIdempotency", []cofidis.Option{verifier, cofidis.WithStaleEvents(false)}, "WithStaleEvents"},
		{"WithRedirectClaims without WithIdempotency", []cofidis.Option{verifier, cofidis.WithRedirectClaims(true)}, "WithRedirectClaims"},

		// A single-valued option given twice would silently keep one value.
		{"WithVerifier twice", []cofidis.Option{verifier, verifier}, "WithVerifier"},
		{"WithLogger twice", []cofidis.Option{verifier, cofidis.WithLogger(quietLogger()), cofidis.WithLogger(quietLogger())}, "WithLogger"},
		{"WithIdempotency twice", []cofidis.Option{verifier, store, store}, "WithIdempotency"},
		{"WithMaxBodyBytes twice", []cofidis.Option{verifier, cofidis.WithMaxBodyBytes(1), cofidis.WithMaxBodyBytes(2)}, "WithMaxBodyBytes"},
		{"WithLease twice", []cofidis.Option{verifier, store, cofidis.WithLease(time.Minute), cofidis.WithLease(time.Hour)}, "WithLease"},
		{"WithInsecureSkipVerify twice", []cofidis.Option{cofidis.WithInsecureSkipVerify(), cofidis.WithInsecureSkipVerify()}, "WithInsecureSkipVerify"},
	}
	redirect := func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil }
	notify := func(context.Context, cofidis.Event) error { return nil }
	for _, tt := range tests {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			t.Parallel()
			rt, err := cofidis.NewRouter(mustURLs(t, "https://shop.example"), redirect, notify, tt.opts...)
			require.ErrorIs(t, err, cofidis.ErrInvalidOption)
			assert.Contains(t, err.Error(), tt.want)
			assert.Nil(t, rt)
		})
	}
	t.Run("names the option without echoing a value it cannot parse", func(t *testing.T) {
		t.Parallel()
		_, err := cofidis.NewRouter(mustURLs(t, "https://shop.example"), redirect, notify,
			cofidis.WithInsecureSkipVerify(), cofidis.WithAllowedSources("not-a-cidr"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "WithAllowedSources")
	})
	t.Run("accepts every option used together", func(t *testing.T) {
		t.Parallel()
		_, err := cofidis.NewRouter(mustURLs(t, "https://shop.example"), redirect, notify,
			cofidis.WithMaxBodyBytes(1024),
			cofidis.WithLogger(quietLogger()),
			cofidis.WithOnError(func(*http.Request, error) {}),
			cofidis.WithOnError(func(*http.Request, error) {}),
			cofidis.WithRedirectError(cofidis.ErrorPage),
			cofidis.WithAllowedSources("203.0.113.0/24", "2001:db8::/32"),
			cofidis.WithAllowedSources("198.51.100.1"),
			cofidis.WithTrustedProxies("10.0.0.0/8", "::1"),
			verifier,
			cofidis.WithVerifyTimeout(1),
			cofidis.WithClock(time.Now),
			store,
			cofidis.WithLease(time.Minute),
			cofidis.WithStaleEvents(true),
			cofidis.WithRedirectClaims(true),
			cofidis.WithDeliveryHook(func(context.Context, cofidis.Event, cofidis.Outcome) {}),
			cofidis.WithDeliveryHook(func(context.Context, cofidis.Event, cofidis.Outcome) {}),
			cofidis.WithRejectionLogLimit(10, time.Minute),
		)
		require.NoError(t, err)
	})
}

// A browser's request to a URL only Cofidis' servers post to is a page on
// another site posting a forged notification (or a misrouted redirect): it
// is refused before decoding. With identical URLs, the browser headers are
// what tells a redirect, as documented.
func TestRouter_browserRequestToANotificationURL(t *testing.T) {
	t.Parallel()
	distinct := mustURLs(t, "https://shop.example/payments")
	browser := map[string]map[string]string{
		"a cross-site navigation": {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
		"a cross-site fetch":      {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"},
		"a same-origin form":      {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"},
		"Sec-Fetch-Dest alone":    {"Sec-Fetch-Dest": "document"},
	}
	for name, headers := range browser {
		for _, e := range []cofidis.Endpoint{cofidis.EndpointNotificationSuccess, cofidis.EndpointNotificationPending, cofidis.EndpointNotificationOther} {
			t.Run("refuses "+name+" to "+e.String(), func(t *testing.T) {
				t.Parallel()
				var got received
				var reported []error
				rt := newTestRouter(t, distinct, &got, cofidis.WithOnError(func(_ *http.Request, err error) { reported = append(reported, err) }))
				r := postForm(distinct.Get(e), formBody(docKeyCompact, "to_confirm", ""))
				for k, v := range headers {
					r.Header.Set(k, v)
				}

				w := serve(rt, r)

				assert.Equal(t, http.StatusForbidden, w.Code)
				assert.Zero(t, got.count(), "not dispatched")
				require.Len(t, reported, 1)
				assert.ErrorIs(t, reported[0], cofidis.ErrBrowserRequest)
				assert.Equal(t, "browser_request", cofidis.ErrorClass(reported[0]))
			})
		}
	}
	t.Run("accepts a server's POST with a text/html Accept header", func(t *testing.T) {
		t.Parallel()
		var got received
		r := postForm(distinct.NotificationURLOther, formBody(docKeyCompact, "Refused", ""))
		r.Header.Set("Accept", "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2") // Java's default
		assert.Equal(t, http.StatusOK, serve(newTestRouter(t, distinct, &got), r).Code)
		assert.Equal(t, 1, got.count())
	})
	t.Run("refuses a page's cross-site fetch to identical URLs instead of taking it for a notification", func(t *testing.T) {
		t.Parallel()
		var got received
		same := sameURL("https://shop.example/cofidis")
		r := postForm(same.NotificationURLOther, formBody(docKeyCompact, "to_confirm", ""))
		for k, v := range browser["a cross-site fetch"] {
			r.Header.Set(k, v)
		}
		r.Header.Set("Accept", "*/*")
		assert.Equal(t, http.StatusForbidden, serve(newTestRouter(t, same, &got), r).Code)
		assert.Zero(t, got.count())
	})
	t.Run("keeps the documented inference when the URLs are identical", func(t *testing.T) {
		t.Parallel()
		var got received
		same := sameURL("https://shop.example/cofidis")
		r := postForm(same.NotificationURLOther, formBody(docKeyCompact, "Refused", ""))
		for k, v := range browser["a cross-site navigation"] {
			r.Header.Set(k, v)
		}
		assert.Equal(t, http.StatusSeeOther, serve(newTestRouter(t, same, &got), r).Code)
		ev, _ := got.only(t)
		assert.Equal(t, cofidis.ChannelRedirect, ev.Channel)
		assert.True(t, ev.ChannelInferred)
	})
}

func TestRouter_ExemptReturnRoutes(t *testing.T) {
	t.Parallel()
	crossSite := func(h http.Handler, target, body string) int {
		r := postForm(target, body)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		r.Header.Set("Origin", "https://journey.cofidis.example")
		return serve(h, r).Code
	}
	body := formBody(docKeyCompact, "to_confirm", "")

	t.Run("exempts the return routes exactly, not the subtree of a path ending in /", func(t *testing.T) {
		t.Parallel()
		u := mustURLs(t, "https://shop.example/pay")
		u.ReturnURLSuccess = "https://shop.example/pay/"
		u.ReturnURLOther = "https://shop.example/pay/?outcome=other"
		var got received
		rt := newTestRouter(t, u, &got)
		mux := http.NewServeMux()
		rt.Register(mux)
		deleted := false
		mux.HandleFunc("POST /pay/card/delete", func(http.ResponseWriter, *http.Request) { deleted = true })
		cop := http.NewCrossOriginProtection()
		require.NoError(t, rt.ExemptReturnRoutes(cop))
		site := cop.Handler(mux)

		assert.Equal(t, http.StatusSeeOther, crossSite(site, u.ReturnURLSuccess, body))
		assert.Equal(t, http.StatusSeeOther, crossSite(site, u.ReturnURLOther, formBody(docKeyCompact, "Refused", "")))
		assert.Equal(t, http.StatusForbidden, crossSite(site, "https://shop.example/pay/card/delete", "card=1"))
		assert.False(t, deleted, "a cross-site POST under the return path must stay refused")
		assert.Equal(t, http.StatusForbidden, crossSite(site, u.NotificationURLOther, body), "notification routes are not exempted")
		assert.Equal(t, 2, got.count())
	})
	t.Run("leaves notification routes alone, and they need nothing", func(t *testing.T) {
		t.Parallel()
		u := mustURLs(t, "https://shop.example/pay")
		var got received
		rt := newTestRouter(t, u, &got)
		mux := http.NewServeMux()
		rt.Register(mux)
		cop := http.NewCrossOriginProtection()
		require.NoError(t, rt.ExemptReturnRoutes(cop))
		// Cofidis' server: no browser headers at all.
		assert.Equal(t, http.StatusOK, serve(cop.Handler(mux), postForm(u.NotificationURLSuccess, body)).Code)
	})
	t.Run("exempts a return path shared with a notification URL", func(t *testing.T) {
		t.Parallel()
		same := sameURL("https://shop.example/cofidis")
		var got received
		rt := newTestRouter(t, same, &got)
		cop := http.NewCrossOriginProtection()
		require.NoError(t, rt.ExemptReturnRoutes(cop))
		assert.Equal(t, http.StatusSeeOther, crossSite(cop.Handler(rt), same.ReturnURLSuccess, body))
	})
	t.Run("reports a second call instead of panicking", func(t *testing.T) {
		t.Parallel()
		var got received
		rt := newTestRouter(t, mustURLs(t, "https://shop.example/pay"), &got)
		cop := http.NewCrossOriginProtection()
		require.NoError(t, rt.ExemptReturnRoutes(cop))
		assert.Error(t, rt.ExemptReturnRoutes(cop))
		assert.ErrorIs(t, rt.ExemptReturnRoutes(nil), cofidis.ErrInvalidOption)
	})
}
