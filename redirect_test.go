package cofidis_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

func TestRedirectHandler_answersTheBrowser(t *testing.T) {
	t.Parallel()
	t.Run("redirects with 303 through SeeOther", func(t *testing.T) {
		t.Parallel()
		h := redirector(t, func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders/"+ev.Query().Get("order"))
		}, cofidis.WithLogger(quietLogger()))

		w := serve(h, postForm("/return/success?order=A-42", readRequestBody(t, "doc-redirect.body")))

		assert.Equal(t, http.StatusSeeOther, w.Code)
		assert.Equal(t, "/orders/A-42", w.Header().Get("Location"))
	})
	t.Run("redirects with 303 through RedirectTo", func(t *testing.T) {
		t.Parallel()
		var sawCtx context.Context
		h := redirector(t, cofidis.RedirectTo(func(ctx context.Context, ev cofidis.Event) (string, error) {
			sawCtx = ctx
			return "https://shop.example/orders/" + ev.TransactionKey.MerchantTransactionID, nil
		}), cofidis.WithLogger(quietLogger()))

		w := serve(h, postForm("/return/success", readRequestBody(t, "doc-redirect-compact.body")))

		assert.Equal(t, http.StatusSeeOther, w.Code)
		assert.Equal(t, "https://shop.example/orders/2YgKoUd4DB", w.Header().Get("Location"))
		assert.NotNil(t, sawCtx)
	})
	t.Run("renders whatever the callback writes", func(t *testing.T) {
		t.Parallel()
		h := redirector(t, func(w http.ResponseWriter, _ *http.Request, ev cofidis.Event) error {
			w.Header().Set("Content-Type", "text/plain")
			_, err := w.Write([]byte("status: " + ev.Status.String()))
			return err
		}, cofidis.WithLogger(quietLogger()))

		w := serve(h, postForm("/return/other", readRequestBody(t, "doc-redirect.body")))

		assert.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, "status: pending", w.Body.String())
	})
}

func TestRedirectHandler_documentationBodies(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"doc-redirect.body", "doc-redirect-compact.body"} {
		t.Run("delivers "+file+" as an unverified redirect", func(t *testing.T) {
			t.Parallel()
			var got received
			h := redirectorAt(t, cofidis.EndpointReturnOther, got.redirect(), cofidis.WithLogger(quietLogger()))
			r := postForm("/return/other?order=A-42&shop=fr", readRequestBody(t, file))
			r.RemoteAddr = "[2001:db8::7]:51000"

			w := serve(h, r)

			assert.Equal(t, http.StatusSeeOther, w.Code)
			ev, _ := got.only(t)
			assert.Equal(t, wantDocKey, ev.TransactionKey)
			assert.Equal(t, cofidis.StatusPending, ev.Status)
			assert.Empty(t, ev.SubState)
			assert.Equal(t, cofidis.ChannelRedirect, ev.Channel)
			e, ok := ev.Endpoint()
			assert.True(t, ok)
			assert.Equal(t, cofidis.EndpointReturnOther, e)
			assert.False(t, ev.Unexpected)
			assert.False(t, ev.Verified, "a redirect proves nothing")
			assert.Equal(t, "order=A-42&shop=fr", ev.RawQuery)
			assert.Equal(t, "fr", ev.Query().Get("shop"))
			assert.Equal(t, netip.MustParseAddr("2001:db8::7"), ev.RemoteAddr)
		})
	}
}

func TestRedirectHandler_errorPage(t *testing.T) {
	t.Parallel()
	valid := formBody(echoKeyJSON, "to_confirm", "")
	tests := []struct {
		name    string
		opts    []cofidis.Option
		edit    func(*http.Request)
		body    string
		want    int
		wantErr error
	}{
		{name: "answers 400 with the error page to a repeated field", body: valid + "&transactionStatus=Refused", want: 400, wantErr: cofidis.ErrRepeatedField},
		{name: "answers 400 with the error page to a missing transactionKey", body: formBody("", "to_confirm", ""), want: 400, wantErr: cofidis.ErrMissingField},
		{name: "answers 400 with the error page to a malformed key", body: formBody(echoKeyJSON[:30], "to_confirm", ""), want: 400, wantErr: cofidis.ErrInvalidTransactionKey},
		{name: "answers 405 with the error page and Allow: POST to GET", edit: func(r *http.Request) { r.Method = http.MethodGet }, want: 405, wantErr: cofidis.ErrMethodNotAllowed},
		{name: "answers 413 with the error page to a body over the limit", opts: []cofidis.Option{cofidis.WithMaxBodyBytes(32)}, want: 413, wantErr: cofidis.ErrBodyTooLarge},
		{name: "answers 415 with the error page to text/plain", edit: setContentType("text/plain"), want: 415, wantErr: cofidis.ErrUnsupportedMediaType},
		{name: "answers 415 with the error page to multipart/form-data", edit: setContentType("multipart/form-data; boundary=b"), want: 415, wantErr: cofidis.ErrUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			request := func() *http.Request {
				body := tt.body
				if body == "" {
					body = valid
				}
				r := postForm("/return/success?order=A-42", body)
				if tt.edit != nil {
					tt.edit(r)
				}
				return r
			}
			check := func(t *testing.T, w *httptest.ResponseRecorder) {
				t.Helper()
				assert.Equal(t, tt.want, w.Code)
				if tt.want == http.StatusMethodNotAllowed {
					assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
				}
			}

			t.Run("default page", func(t *testing.T) {
				t.Parallel()
				var got received
				h := redirector(t, got.redirect(), append([]cofidis.Option{cofidis.WithLogger(quietLogger())}, tt.opts...)...)

				w := serve(h, request())

				check(t, w)
				assert.Zero(t, got.count(), "the callback does not run")
				assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
				assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
				assert.Contains(t, w.Body.String(), http.StatusText(tt.want))
				assertNoEcho(t, w.Body.String(), append(echoParts, "to_confirm", "Refused")...)
			})
			t.Run("custom WithRedirectError", func(t *testing.T) {
				t.Parallel()
				var got received
				var pageErr error
				var pageQuery url.Values
				page := func(w http.ResponseWriter, _ *http.Request, err error, query url.Values) {
					pageErr, pageQuery = err, query
					w.WriteHeader(cofidis.HTTPStatus(err))
					_, _ = w.Write([]byte("custom page"))
				}
				opts := append([]cofidis.Option{cofidis.WithLogger(quietLogger()), cofidis.WithRedirectError(page)}, tt.opts...)
				h := redirector(t, got.redirect(), opts...)

				w := serve(h, request())

				check(t, w)
				assert.Zero(t, got.count())
				assert.Equal(t, "custom page", w.Body.String())
				assert.ErrorIs(t, pageErr, tt.wantErr)
				assert.Equal(t, tt.want, cofidis.HTTPStatus(pageErr))
				assert.Equal(t, url.Values{"order": {"A-42"}}, pageQuery, "the URL's own query identifies the order")
			})
		})
	}
}

func TestRedirectHandler_callbackFailures(t *testing.T) {
	t.Parallel()
	errRender := errors.New("template missing")
	tests := []struct {
		name     string
		fn       cofidis.RedirectFunc
		want     int
		wantBody string // "" for the error page
		wantPage bool
	}{
		{
			name:     "renders the 500 page when the callback fails before writing",
			fn:       func(http.ResponseWriter, *http.Request, cofidis.Event) error { return errRender },
			want:     500,
			wantPage: true,
		},
		{
			name: "renders the 500 page when RedirectTo's function fails",
			fn: cofidis.RedirectTo(func(context.Context, cofidis.Event) (string, error) {
				return "", errRender
			}),
			want:     500,
			wantPage: true,
		},
		{
			name:     "renders the 500 page when the callback panics before writing",
			fn:       func(http.ResponseWriter, *http.Request, cofidis.Event) error { panic("nil map") },
			want:     500,
			wantPage: true,
		},
		{
			name: "does not write a second answer when the callback fails after redirecting",
			fn: func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
				_ = cofidis.SeeOther(w, r, "/orders")
				return errRender
			},
			want: 303,
		},
		{
			name: "does not write a second answer when the callback fails after writing a body",
			fn: func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
				_, _ = w.Write([]byte("partial"))
				return errRender
			},
			want:     200,
			wantBody: "partial",
		},
		{
			name: "does not write a second answer when the callback fails after flushing",
			fn: func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
				if err := http.NewResponseController(w).Flush(); err != nil {
					return err
				}
				return errRender
			},
			want: 200,
		},
		{
			name: "lets the callback flush through a plain http.Flusher assertion",
			fn: func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
				w.(http.Flusher).Flush()
				return errRender
			},
			want: 200,
		},
		{
			name: "does not write a second answer when the callback panics after writing the header",
			fn: func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
				w.WriteHeader(http.StatusAccepted)
				panic("late")
			},
			want: 202,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pages := 0
			var pageErr error
			page := func(w http.ResponseWriter, _ *http.Request, err error, _ url.Values) {
				pages++
				pageErr = err
				w.WriteHeader(cofidis.HTTPStatus(err))
				_, _ = w.Write([]byte("error page"))
			}
			var hookErr error
			h := redirector(t, tt.fn, cofidis.WithRedirectError(page), cofidis.WithOnError(func(_ *http.Request, err error) { hookErr = err }), cofidis.WithLogger(quietLogger()))

			w := serve(h, postForm("/return/success", formBody(docKeyCompact, "to_confirm", "")))

			assert.Equal(t, tt.want, w.Code)
			require.ErrorIs(t, hookErr, cofidis.ErrCallback, "the failure is reported to OnError")
			if tt.wantPage {
				assert.Equal(t, 1, pages)
				assert.Equal(t, "error page", w.Body.String())
				assert.ErrorIs(t, pageErr, cofidis.ErrCallback)
				assert.Equal(t, http.StatusInternalServerError, cofidis.HTTPStatus(pageErr))
				return
			}
			assert.Zero(t, pages, "no second answer")
			assert.NotContains(t, w.Body.String(), "error page")
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, w.Body.String())
			}
		})
	}

	t.Run("renders the default 500 page for a failed callback", func(t *testing.T) {
		t.Parallel()
		h := redirector(t, func(http.ResponseWriter, *http.Request, cofidis.Event) error {
			return errRender
		}, cofidis.WithLogger(quietLogger()))

		w := serve(h, postForm("/return/success", formBody(echoKeyJSON, "to_confirm", "")))

		assert.Equal(t, http.StatusInternalServerError, w.Code)
		assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
		assert.NotContains(t, w.Body.String(), errRender.Error())
		assertNoEcho(t, w.Body.String(), echoParts...)
	})
	t.Run("reports the callback's own error to OnError", func(t *testing.T) {
		t.Parallel()
		var hookErr error
		h := redirector(t, func(http.ResponseWriter, *http.Request, cofidis.Event) error {
			return errRender
		}, cofidis.WithOnError(func(_ *http.Request, err error) { hookErr = err }), cofidis.WithLogger(quietLogger()))
		serve(h, postForm("/return/success", formBody(docKeyCompact, "to_confirm", "")))
		assert.ErrorIs(t, hookErr, errRender)
		var e *cofidis.Error
		require.ErrorAs(t, hookErr, &e)
		assert.Equal(t, http.StatusInternalServerError, e.HTTPStatus)
	})
	t.Run("re-panics http.ErrAbortHandler", func(t *testing.T) {
		t.Parallel()
		pages := 0
		h := redirector(t, func(http.ResponseWriter, *http.Request, cofidis.Event) error {
			panic(http.ErrAbortHandler)
		}, cofidis.WithRedirectError(func(http.ResponseWriter, *http.Request, error, url.Values) { pages++ }), cofidis.WithLogger(quietLogger()))

		v := recoverFrom(func() { serve(h, postForm("/return/success", formBody(docKeyCompact, "to_confirm", ""))) })

		assert.Equal(t, http.ErrAbortHandler, v)
		assert.Zero(t, pages)
	})
}

func TestRedirectHandler_authenticity(t *testing.T) {
	t.Parallel()
	t.Run("is never filtered by WithAllowedSources", func(t *testing.T) {
		t.Parallel()
		var got received
		h := redirector(t, got.redirect(), cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithLogger(quietLogger()))
		r := postForm("/return/success", formBody(docKeyCompact, "to_confirm", ""))
		r.RemoteAddr = "198.51.100.7:40000"

		w := serve(h, r)

		assert.Equal(t, http.StatusSeeOther, w.Code)
		ev, _ := got.only(t)
		assert.Equal(t, netip.MustParseAddr("198.51.100.7"), ev.RemoteAddr)
	})
	t.Run("is delivered even when the client address cannot be determined", func(t *testing.T) {
		t.Parallel()
		var got received
		h := redirector(t, got.redirect(), cofidis.WithAllowedSources("203.0.113.0/24"), cofidis.WithTrustedProxies("10.0.0.0/8"), cofidis.WithLogger(quietLogger()))
		r := postForm("/return/success", formBody(docKeyCompact, "to_confirm", ""))
		r.RemoteAddr = "10.0.0.2:40000"
		r.Header.Set("X-Forwarded-For", "garbage")

		w := serve(h, r)

		assert.Equal(t, http.StatusSeeOther, w.Code)
		ev, _ := got.only(t)
		assert.False(t, ev.RemoteAddr.IsValid())
	})

	tests := []struct {
		name               string
		verifier           cofidis.Verifier
		wantVerified       bool
		wantVerifiedStatus cofidis.Status
	}{
		{"is Verified when the verifier agrees", statusIs(cofidis.StatusToConfirm), true, cofidis.StatusToConfirm},
		{"is dispatched unverified, with the verifier's status, when the verifier disagrees", statusIs(cofidis.StatusRefused), false, cofidis.StatusRefused},
		{"is dispatched unverified when Cofidis is further along", statusIs(cofidis.StatusValidated), false, cofidis.StatusValidated},
		{"is dispatched unverified when the verifier fails", verifierFails(errGetStatus), false, ""},
		{"is dispatched unverified when the verifier panics", verifierPanics(), false, ""},
		{"is never Verified without a verifier", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got received
			opts := []cofidis.Option{cofidis.WithLogger(quietLogger())}
			if tt.verifier != nil {
				opts = append(opts, cofidis.WithVerifier(tt.verifier))
			}
			h := redirector(t, got.redirect(), opts...)

			w := serve(h, postForm("/return/success", formBody(docKeyCompact, "to_confirm", "")))

			assert.Equal(t, http.StatusSeeOther, w.Code, "the browser always gets the callback's answer")
			ev, _ := got.only(t)
			assert.Equal(t, tt.wantVerified, ev.Verified)
			assert.Equal(t, tt.wantVerifiedStatus, ev.VerifiedStatus)
		})
	}
}

func TestRedirectHandler_unexpectedStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		endpoint       cofidis.Endpoint
		status         string
		wantUnexpected bool
	}{
		{"flags to_confirm on returnUrlOther", cofidis.EndpointReturnOther, "to_confirm", true},
		{"flags Refused on returnUrlSuccess", cofidis.EndpointReturnSuccess, "Refused", true},
		{"does not flag pending on returnUrlOther", cofidis.EndpointReturnOther, "pending", false},
		{"does not flag to_confirm on returnUrlSuccess", cofidis.EndpointReturnSuccess, "to_confirm", false},
		{"never flags an unknown status", cofidis.EndpointReturnSuccess, "brand_new_status", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got received
			h := redirectorAt(t, tt.endpoint, got.redirect(), cofidis.WithLogger(quietLogger()))

			w := serve(h, postForm("/return", formBody(docKeyCompact, tt.status, "")))

			assert.Equal(t, http.StatusSeeOther, w.Code, "delivered all the same")
			ev, _ := got.only(t)
			assert.Equal(t, tt.wantUnexpected, ev.Unexpected)
			assert.Equal(t, strings.EqualFold(tt.status, "brand_new_status"), !ev.Status.Known())
		})
	}
}
