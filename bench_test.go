package cofidis_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofidis-go/cofidis"
)

// The benchmarks below compare the library with the handler a merchant would
// write by hand, on the documentation's example notification. Every
// iteration builds its request and recorder the same way (benchRequest), so
// the ratios include that shared cost. BENCHMARKS.md has the commands and the
// latest figures.

// benchBody is the documentation's example notification, form-encoded.
func benchBody(tb testing.TB) string {
	tb.Helper()
	key, err := os.ReadFile(filepath.Join("testdata", "transactionkey", "doc-example.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return url.Values{
		cofidis.FieldTransactionKey:    {string(key)},
		cofidis.FieldTransactionStatus: {"pending"},
		cofidis.FieldSubState:          {"signed"},
	}.Encode()
}

// benchRequest is the request construction every benchmark shares.
func benchRequest(body string) (*httptest.ResponseRecorder, *http.Request) {
	r := httptest.NewRequest(http.MethodPost, "/payments/cofidis/notify/pending", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return httptest.NewRecorder(), r
}

// baselineKey is the struct a merchant would unmarshal transactionKey into.
type baselineKey struct {
	MerchantCountry         string  `json:"merchantCountry"`
	ProviderID              string  `json:"providerId"`
	ProviderTransactionID   *string `json:"providerTransactionId"`
	MerchantID              string  `json:"merchantId"`
	MerchantTransactionID   string  `json:"merchantTransactionId"`
	MerchantTransactionDate string  `json:"merchantTransactionDate"`
}

// baselineHandler is what a merchant would write without the library:
// r.ParseForm, json.Unmarshal of the key, a non-empty status, 200. It checks
// neither repeated fields, nor the content type's charset, nor UTF-8, nor the
// key's members.
func baselineHandler(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var key baselineKey
	if err := json.Unmarshal([]byte(r.PostForm.Get("transactionKey")), &key); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("transactionStatus") == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// benchServe runs h on a fresh request per iteration and checks the answer.
func benchServe(b *testing.B, h http.Handler, want int) {
	body := benchBody(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		w, r := benchRequest(body)
		h.ServeHTTP(w, r)
		if w.Code != want {
			b.Fatalf("status %d, want %d", w.Code, want)
		}
	}
}

func BenchmarkBaselineHandler(b *testing.B) {
	benchServe(b, http.HandlerFunc(baselineHandler), http.StatusOK)
}

// benchNotificationRoute is the handler of the library's
// notificationUrlPending route with every local check on: a known endpoint
// (so Unexpected is computed) and a source allowlist holding httptest's
// client address. Without a Verifier, as the baseline has none.
func benchNotificationRoute(tb testing.TB) http.Handler {
	tb.Helper()
	rt := benchRouter(tb, cofidis.WithAllowedSources("192.0.2.0/24"))
	for _, r := range rt.Routes() {
		if r.Endpoints.Has(cofidis.EndpointNotificationPending) {
			return r.Handler
		}
	}
	tb.Fatal("no notificationUrlPending route")
	return nil
}

// benchRouter is a Router on the five URLs of NewURLs whose callbacks do
// nothing.
func benchRouter(tb testing.TB, opts ...cofidis.Option) *cofidis.Router {
	tb.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, r *http.Request, _ cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders/42")
		},
		func(context.Context, cofidis.Event) error { return nil },
		append(opts, cofidis.WithInsecureSkipVerify())...,
	)
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

// TestNotificationRoute_allocationBudget keeps the target of at
// most 25 allocations per notification, request construction included (16
// of them), from regressing. It bounds a count, never a time.
func TestNotificationRoute_allocationBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	const budget = 25
	h := benchNotificationRoute(t)
	body := benchBody(t)
	allocs := testing.AllocsPerRun(200, func() {
		w, r := benchRequest(body)
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d, want 200", w.Code)
		}
	})
	if allocs > budget {
		t.Errorf("a notification costs %.0f allocations, request construction included; the budget is %d (see BENCHMARKS.md)", allocs, budget)
	}
}

func BenchmarkNotificationRoute(b *testing.B) {
	benchServe(b, benchNotificationRoute(b), http.StatusOK)
}

// BenchmarkRouterNotification is BenchmarkNotificationRoute through the
// Router's own path matching, as the load harness does.
func BenchmarkRouterNotification(b *testing.B) {
	benchServe(b, benchRouter(b), http.StatusOK)
}

// BenchmarkRedirectRoute is a redirect whose callback answers 303.
func BenchmarkRedirectRoute(b *testing.B) {
	rt := benchRouter(b)
	body := benchBody(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		w, r := benchRequest(body)
		r.URL.Path = "/payments/cofidis/return/other"
		rt.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther {
			b.Fatalf("status %d, want 303", w.Code)
		}
	}
}

// BenchmarkParseRequest measures the parse layer alone.
func BenchmarkParseRequest(b *testing.B) {
	body := benchBody(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, r := benchRequest(body)
		if _, err := cofidis.ParseRequest(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestConstruction measures what every benchmark above shares:
// building the request and the recorder. Subtract it to see the handlers'
// own cost.
func BenchmarkRequestConstruction(b *testing.B) {
	body := benchBody(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		w, r := benchRequest(body)
		if w == nil || r == nil {
			b.Fatal("no request")
		}
	}
}
