package otelcofidis_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/otelcofidis"
)

// An Observer on explicit providers (here a MeterProvider with a
// ManualReader; in production, with an exporter), given to the Router with
// cofidis.WithObserver. otelhttp wraps the Router for the HTTP server span
// that the request's span is a child of.
func ExampleNew() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	obs, err := otelcofidis.New(otelcofidis.WithMeterProvider(mp)) // the global TracerProvider
	if err != nil {
		log.Fatal(err)
	}
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	if err != nil {
		log.Fatal(err)
	}
	var ledger cofidistest.Ledger // the shop's getStatus client, in a real shop
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders/"+ev.TransactionKey.MerchantTransactionID)
		},
		func(ctx context.Context, ev cofidis.Event) error { return nil },
		cofidis.WithVerifier(&ledger),
		cofidis.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	handler := otelhttp.NewHandler(rt, "cofidis")

	// Cofidis accepts a transaction: a redirect and a notification.
	fake := cofidistest.Fake{URLs: urls, Handler: handler, Ledger: &ledger}
	if _, err := fake.Play(context.Background(), cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{}))); err != nil {
		log.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != otelcofidis.MetricDeliveries {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				ch, _ := dp.Attributes.Value("channel")
				st, _ := dp.Attributes.Value("status")
				out, _ := dp.Attributes.Value("outcome")
				fmt.Println(ch.AsString(), st.AsString(), out.AsString(), dp.Value)
			}
		}
	}
	// Unordered output:
	// redirect to_confirm processed 1
	// notification to_confirm processed 1
}
