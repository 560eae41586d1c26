package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/examples/routers/shop"

	"github.com/cofidis-go/cofidis/examples/routers/internal/routertest"
)

func TestServeMux(t *testing.T) {
	routertest.Check(t, newHandler)
}

// TestCrossOriginProtection: the browser's cross-site POST from Cofidis'
// page reaches the return routes and nothing else.
func TestCrossOriginProtection(t *testing.T) {
	rt, err := shop.NewRouter(
		func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders/1")
		},
		func(context.Context, cofidis.Event) error { return nil },
		cofidis.WithInsecureSkipVerify(), cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(rt)
	urls, err := shop.URLs()
	if err != nil {
		t.Fatal(err)
	}
	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	for _, tc := range []struct {
		endpoint cofidis.Endpoint
		want     int
	}{
		{cofidis.EndpointReturnSuccess, http.StatusSeeOther},
		{cofidis.EndpointReturnOther, http.StatusSeeOther},
		{cofidis.EndpointNotificationSuccess, http.StatusForbidden}, // the Router refuses browsers there
	} {
		req := cofidistest.Request{Endpoint: tc.endpoint, Key: key, Status: cofidis.StatusToConfirm, Channel: cofidis.ChannelRedirect}
		r := req.HTTPRequest(urls)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("cross-site POST to %s answered %d, want %d", tc.endpoint, w.Code, tc.want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "https://shop.example/orders/1", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("cross-site POST to another route answered %d, want 403", w.Code)
	}
}
