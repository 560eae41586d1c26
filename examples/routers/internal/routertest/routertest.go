// Package routertest checks that a router example delivers Cofidis'
// callbacks to the shared receiver.
package routertest

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
)

// Check builds the shop's receiver with a recorder, mounts it with mount and
// posts a notification, a redirect and a few wrong requests through it.
func Check(t *testing.T, mount func(*cofidis.Router) http.Handler) {
	t.Helper()
	rec := &cofidistest.Recorder{RedirectURL: "/orders/42"}
	rt, err := shop.NewRouter(rec.Redirect, rec.Notify,
		cofidis.WithInsecureSkipVerify(), // requests built by hand: no getStatus behind them
		cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	h := mount(rt)
	urls, err := shop.URLs()
	if err != nil {
		t.Fatal(err)
	}
	key := cofidistest.NewKey(cofidistest.KeyOptions{})

	serve := func(r cofidistest.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.HTTPRequest(urls))
		return w
	}
	notification := cofidistest.Request{Endpoint: cofidis.EndpointNotificationPending, Key: key, Status: "pending", SubState: "signed"}
	if w := serve(notification); w.Code != http.StatusOK {
		t.Errorf("notification answered %d, want 200", w.Code)
	}
	redirect := cofidistest.Request{Endpoint: cofidis.EndpointReturnSuccess, Key: key, Status: "to_confirm"}
	if w := serve(redirect); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/orders/42" {
		t.Errorf("redirect answered %d to %q, want 303 to /orders/42", w.Code, w.Header().Get("Location"))
	}

	// The receiver's own answers must get through the router unchanged.
	get := notification
	get.Method = http.MethodGet
	if w := serve(get); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d, want 405 from the receiver", w.Code)
	}
	broken := notification
	broken.RepeatStatus = true
	if w := serve(broken); w.Code != http.StatusBadRequest {
		t.Errorf("repeated status answered %d, want 400", w.Code)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodPost, "https://shop.example/payments/cofidis/elsewhere", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("unknown path answered %d, want 404", w.Code)
	}

	var got []string
	for _, ev := range rec.Events() {
		got = append(got, cofidistest.Describe(ev))
		if ev.TransactionKey != key {
			t.Errorf("key = %+v, want %+v", ev.TransactionKey, key)
		}
	}
	want := []string{
		"notification notificationUrlPending pending/signed",
		"redirect returnUrlSuccess to_confirm",
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("events %q, want %q", got, want)
	}
}
