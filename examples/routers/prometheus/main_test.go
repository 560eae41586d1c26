package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/examples/routers/internal/routertest"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
)

func TestServeMux(t *testing.T) {
	routertest.Check(t, newHandler)
}

// TestMetrics plays a pending journey, a notification of a status nobody
// documented and a wrong request against the receiver over HTTP, then
// scrapes /metrics over HTTP.
func TestMetrics(t *testing.T) {
	m, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.provider.Shutdown(context.Background()) })
	var ledger cofidistest.Ledger
	rec := &cofidistest.Recorder{RedirectURL: "/orders/42"}
	rt, err := shop.NewRouter(rec.Redirect, rec.Notify,
		cofidis.WithVerifier(&ledger),
		cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})),
		cofidis.WithObserver(m.observer),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	receiver := httptest.NewTLSServer(newHandler(rt))
	t.Cleanup(receiver.Close)
	metricsServer := httptest.NewServer(m.handler)
	t.Cleanup(metricsServer.Close)

	// The shop's URLs, on the test server: the Router matches paths and
	// queries, not hosts.
	urls, err := cofidis.NewURLs(receiver.URL + "/payments")
	if err != nil {
		t.Fatal(err)
	}
	j := cofidistest.PendingAccepted(cofidistest.NewKey(cofidistest.KeyOptions{})).Then(
		cofidistest.Step{Request: cofidistest.Request{Endpoint: cofidis.EndpointNotificationOther, Status: "Invented_By_Someone"}},
		cofidistest.Step{Request: cofidistest.Request{Endpoint: cofidis.EndpointNotificationOther, Status: "Refused", Method: http.MethodPut}},
	)
	ds, err := cofidistest.Fake{URLs: urls, Client: receiver.Client(), Ledger: &ledger}.Play(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	var answers []int
	for _, d := range ds {
		answers = append(answers, d.HTTPStatus)
	}
	if want := []int{303, 200, 200, 200, 200, 405}; !slices.Equal(answers, want) {
		t.Fatalf("answers %v, want %v", answers, want)
	}

	families, samples := scrape(t, metricsServer.URL+"/metrics")
	var ours []string
	for _, f := range families {
		if strings.HasPrefix(f, "cofidis_") {
			ours = append(ours, f)
		}
	}
	wantFamilies := []string{
		"cofidis_call_duration_seconds histogram",
		"cofidis_deliveries_total counter",
		"cofidis_rejections_total counter",
		"cofidis_request_duration_seconds histogram",
	}
	if !slices.Equal(ours, wantFamilies) {
		t.Errorf("families %q, want %q", ours, wantFamilies)
	}
	for _, want := range []struct {
		name   string
		labels []string
	}{
		{"cofidis_deliveries_total", []string{`channel="notification"`, `endpoints="notificationUrlOther"`, `status="unknown"`, `outcome="processed"`}},
		{"cofidis_deliveries_total", []string{`channel="notification"`, `status="pending"`, `sub_state="signed"`}},
		{"cofidis_deliveries_total", []string{`channel="redirect"`, `endpoints="returnUrlOther"`, `status="pending"`}},
		{"cofidis_rejections_total", []string{`channel="notification"`, `error_type="method_not_allowed"`}},
		{"cofidis_call_duration_seconds_bucket", []string{`call="verifier"`, `channel="notification"`, `le="0.005"`}},
		{"cofidis_call_duration_seconds_count", []string{`call="store.claim"`}},
		{"cofidis_request_duration_seconds_count", []string{`channel="redirect"`, `outcome="processed"`}},
	} {
		if !slices.ContainsFunc(samples, func(s string) bool { return hasSample(s, want.name, want.labels) }) {
			t.Errorf("no %s sample with %v", want.name, want.labels)
		}
	}
	for _, s := range samples {
		if strings.Contains(s, "Invented") {
			t.Errorf("a posted status became a label: %s", s)
		}
	}
}

// scrape GETs a Prometheus text exposition and returns its families, as
// "name type" from the # TYPE lines, and its sample lines.
func scrape(t *testing.T, url string) (families, samples []string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			families = append(families, f)
		} else if line != "" && !strings.HasPrefix(line, "#") {
			samples = append(samples, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(families)
	return families, samples
}

// hasSample reports whether the sample line s is of metric name and
// carries every label.
func hasSample(s, name string, labels []string) bool {
	rest, ok := strings.CutPrefix(s, name+"{")
	if !ok {
		return false
	}
	set, _, _ := strings.Cut(rest, "}")
	have := strings.Split(set, ",")
	for _, l := range labels {
		if !slices.Contains(have, l) {
			return false
		}
	}
	return true
}
