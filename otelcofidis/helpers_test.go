package otelcofidis_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/otelcofidis"
)

// telemetry is an SDK meter and tracer provider recording in memory.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	mp     *sdkmetric.MeterProvider
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewSpanRecorder()
	tel := &telemetry{
		reader: reader,
		spans:  spans,
		mp:     sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		tp:     sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
	}
	t.Cleanup(func() {
		// Shutdown never fails for in-memory readers and recorders.
		_ = tel.mp.Shutdown(context.Background())
		_ = tel.tp.Shutdown(context.Background())
	})
	return tel
}

// observer returns an Observer recording with tel's providers.
func (tel *telemetry) observer(t testing.TB) *otelcofidis.Observer {
	t.Helper()
	obs, err := otelcofidis.New(otelcofidis.WithMeterProvider(tel.mp), otelcofidis.WithTracerProvider(tel.tp))
	require.NoError(t, err)
	return obs
}

// series returns every data point collected so far, one line each, sorted:
// `name{key=value,…} value` for a counter, `… count=N` for a histogram
// (whose sums are durations, hence left out).
func (tel *telemetry) series(t testing.TB) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	var out []string
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelcofidis.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					out = append(out, fmt.Sprintf("%s{%s} %d", m.Name, encode(dp.Attributes), dp.Value))
				}
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					out = append(out, fmt.Sprintf("%s{%s} count=%d", m.Name, encode(dp.Attributes), dp.Count))
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	slices.Sort(out)
	return out
}

// spanNames keeps the indentation and the name of each line of a tree.
func spanNames(tree []string) []string {
	out := make([]string, len(tree))
	for i, line := range tree {
		name := strings.TrimLeft(line, " ")
		name, _, _ = strings.Cut(name, " ")
		out[i] = line[:len(line)-len(strings.TrimLeft(line, " "))] + name
	}
	return out
}

// encode writes an attribute set as key=value pairs in key order.
func encode(set attribute.Set) string {
	var b strings.Builder
	for i, kv := range set.ToSlice() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(kv.Key) + "=" + kv.Value.String())
	}
	return b.String()
}

// tree returns the ended spans as an indented tree, children in the order
// they ended (the Router's calls are sequential), one line per span:
// name, attributes in key order, then the status and the exception events.
// Spans whose parent was not recorded are roots.
func (tel *telemetry) tree() []string {
	ended := tel.spans.Ended()
	recorded := map[trace.SpanID]bool{}
	for _, s := range ended {
		recorded[s.SpanContext().SpanID()] = true
	}
	var out []string
	var walk func(parent trace.SpanID, root bool, depth int)
	walk = func(parent trace.SpanID, root bool, depth int) {
		for _, s := range ended {
			p := s.Parent().SpanID()
			if root && recorded[p] || !root && p != parent {
				continue
			}
			out = append(out, strings.Repeat("  ", depth)+describeSpan(s))
			walk(s.SpanContext().SpanID(), false, depth+1)
		}
	}
	walk(trace.SpanID{}, true, 0)
	return out
}

func describeSpan(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	b.WriteString(s.Name())
	attrs := slices.Clone(s.Attributes())
	slices.SortFunc(attrs, func(a, b attribute.KeyValue) int { return strings.Compare(string(a.Key), string(b.Key)) })
	for _, kv := range attrs {
		b.WriteString(" " + string(kv.Key) + "=" + kv.Value.String())
	}
	if st := s.Status(); st.Code != 0 {
		fmt.Fprintf(&b, " [%s %s]", st.Code, st.Description)
	}
	for _, ev := range s.Events() {
		b.WriteString(" !" + ev.Name)
	}
	return b.String()
}

// The key every journey uses, for exact span attributes.
var (
	testNow = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	testKey = cofidistest.NewKey(cofidistest.KeyOptions{MerchantTransactionID: "2YgKoUd4DB", Now: testNow})
)

// identity is the span attributes of testKey.
const identity = "cofidis.merchant_id=020280098 cofidis.merchant_transaction_date=20260314 cofidis.merchant_transaction_id=2YgKoUd4DB"

// shop is a receiver under test: a Router observed by an Observer, with a
// Ledger as its Verifier and a MemoryStore.
type shop struct {
	urls   cofidis.URLs
	ledger *cofidistest.Ledger
	rec    *cofidistest.Recorder
	router *cofidis.Router
}

// newShop builds the receiver with the given Observers, verifier (the
// shop's Ledger when nil) and store (a MemoryStore when nil).
func newShop(t testing.TB, observers []cofidis.Observer, verifier cofidis.Verifier, store cofidis.Store) *shop {
	t.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	require.NoError(t, err)
	s := &shop{urls: urls, ledger: &cofidistest.Ledger{}, rec: &cofidistest.Recorder{RedirectURL: "/orders/42"}}
	if verifier == nil {
		verifier = s.ledger
	}
	if store == nil {
		store = cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
	}
	opts := []cofidis.Option{
		cofidis.WithVerifier(verifier),
		cofidis.WithIdempotency(store),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)),
	}
	for _, o := range observers {
		opts = append(opts, cofidis.WithObserver(o))
	}
	s.router, err = cofidis.NewRouter(urls, s.rec.Redirect, s.rec.Notify, opts...)
	require.NoError(t, err)
	return s
}

// fake plays Cofidis against h (the shop's Router when nil), advancing the
// shop's Ledger.
func (s *shop) fake(h http.Handler) cofidistest.Fake {
	if h == nil {
		h = s.router
	}
	return cofidistest.Fake{URLs: s.urls, Handler: h, Ledger: s.ledger}
}

// play plays j and returns the answers' status codes.
func (s *shop) play(t testing.TB, j cofidistest.Journey) []int {
	t.Helper()
	ds, err := s.fake(nil).Play(t.Context(), j)
	require.NoError(t, err)
	codes := make([]int, len(ds))
	for i, d := range ds {
		codes[i] = d.HTTPStatus
	}
	return codes
}

// notification is a one-step journey: a notification of status on
// endpoint.
func notification(endpoint cofidis.Endpoint, status cofidis.Status) cofidistest.Journey {
	return cofidistest.Journey{Name: "one", Key: testKey, Steps: []cofidistest.Step{
		{Request: cofidistest.Request{Endpoint: endpoint, Status: status}},
	}}
}
