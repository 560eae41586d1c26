package otelcofidis_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/otelcofidis"
)

// freshStore claims every action and completes it, remembering nothing:
// every iteration of a benchmark is a first delivery (four calls: claim,
// verifier, callback, complete), with the same request.
type freshStore struct{}

func (freshStore) Claim(context.Context, cofidis.ActionKey, time.Duration) (cofidis.ClaimResult, error) {
	return cofidis.ClaimResult{State: cofidis.Claimed, Token: "t"}, nil
}
func (freshStore) Complete(context.Context, cofidis.ActionKey, string) error { return nil }
func (freshStore) Release(context.Context, cofidis.ActionKey, string) error  { return nil }
func (freshStore) Peek(context.Context, cofidis.ActionKey) (cofidis.ClaimResult, error) {
	return cofidis.ClaimResult{}, nil
}

// BenchmarkNotification is a pending/signed notification through a Router
// with a Verifier and a Store (a request span and four call spans, four
// measurements), without an Observer and with otelcofidis on: no-op
// providers (OpenTelemetry not configured), the SDK with a ManualReader and
// a tracer provider exporting to a no-op exporter through a batch
// processor, sampling every trace or none. Request construction is
// included, as in the core's benchmarks.
func BenchmarkNotification(b *testing.B) {
	req := cofidistest.Request{Endpoint: cofidis.EndpointNotificationPending, Key: testKey, Status: cofidis.StatusPending, SubState: cofidis.SubStateSigned}
	verifier := cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
		return cofidis.StatusPending, nil
	})
	for _, bc := range benchSetups(b) {
		b.Run(bc.name, func(b *testing.B) {
			urls, err := cofidis.NewURLs("https://shop.example/payments")
			if err != nil {
				b.Fatal(err)
			}
			opts := []cofidis.Option{
				cofidis.WithVerifier(verifier),
				cofidis.WithIdempotency(freshStore{}),
				cofidis.WithLogger(slog.New(slog.DiscardHandler)),
			}
			if bc.opts != nil {
				obs, err := otelcofidis.New(bc.opts()...)
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, cofidis.WithObserver(obs))
			}
			rt, err := cofidis.NewRouter(urls,
				func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
				func(context.Context, cofidis.Event) error { return nil },
				opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				rt.ServeHTTP(w, req.HTTPRequest(urls))
				if w.Code != http.StatusOK {
					b.Fatalf("answered %d", w.Code)
				}
			}
		})
	}
}

// benchSetup is a way to run the Observer, or none (nil opts).
type benchSetup struct {
	name string
	opts func() []otelcofidis.Option
}

// benchSetups are no Observer, then otelcofidis with no-op providers
// (OpenTelemetry not configured), and with the SDK: a ManualReader and a
// tracer provider exporting to a no-op exporter through a batch processor,
// sampling every trace or none.
func benchSetups(b *testing.B) []benchSetup {
	sdk := func(sampler sdktrace.Sampler) []otelcofidis.Option {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() {
			_ = mp.Shutdown(context.Background())
			_ = tp.Shutdown(context.Background())
		})
		return []otelcofidis.Option{otelcofidis.WithMeterProvider(mp), otelcofidis.WithTracerProvider(tp)}
	}
	return []benchSetup{
		{"no-observer", nil},
		{"otel-noop", func() []otelcofidis.Option {
			return []otelcofidis.Option{
				otelcofidis.WithMeterProvider(metricnoop.NewMeterProvider()),
				otelcofidis.WithTracerProvider(tracenoop.NewTracerProvider()),
			}
		}},
		{"otel-sdk-sampled", func() []otelcofidis.Option { return sdk(sdktrace.AlwaysSample()) }},
		{"otel-sdk-unsampled", func() []otelcofidis.Option { return sdk(sdktrace.NeverSample()) }},
	}
}

// BenchmarkObserver is the Observer alone, called as the Router calls it
// for the notification of BenchmarkNotification: a request and four calls.
// It isolates the Observer's cost from the request's, which a shared
// machine makes noisy.
func BenchmarkObserver(b *testing.B) {
	ev := &cofidis.Event{
		Callback:  cofidis.Callback{TransactionKey: testKey, Status: cofidis.StatusPending, SubState: cofidis.SubStateSigned},
		Channel:   cofidis.ChannelNotification,
		Endpoints: cofidis.EndpointSet(0).Add(cofidis.EndpointNotificationPending),
		Verified:  true,
	}
	calls := []cofidis.Call{cofidis.CallStoreClaim, cofidis.CallVerifier, cofidis.CallCallback, cofidis.CallStoreComplete}
	for _, bc := range benchSetups(b)[1:] {
		b.Run(bc.name, func(b *testing.B) {
			obs, err := otelcofidis.New(bc.opts()...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				rctx := obs.StartRequest(ctx, cofidis.ChannelNotification)
				for _, c := range calls {
					cctx := obs.StartCall(rctx, c)
					obs.EndCall(cctx, c, time.Millisecond, nil)
				}
				obs.EndRequest(rctx, cofidis.Report{Channel: cofidis.ChannelNotification, Event: ev, Outcome: cofidis.OutcomeProcessed})
			}
		})
	}
}
