// Command prometheus mounts the Cofidis receiver on a net/http ServeMux, as
// the stdlib example does, observed by otelcofidis: its metrics go through
// OpenTelemetry's Prometheus exporter and are served at /metrics on a
// second address, meant to stay internal.
//
// The receiver's URLs are public (Cofidis' servers and the customers'
// browsers post to them); the metrics tell how many credit applications
// the shop receives and how they end, which is nobody else's business. So
// /metrics listens on -metrics-addr (OpenTelemetry's default Prometheus
// port, on loopback), not on the receiver's server.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprometheus "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
	"github.com/cofidis-go/cofidis/otelcofidis"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the receiver listens on")
	metricsAddr := flag.String("metrics-addr", "127.0.0.1:9464", "address /metrics listens on; keep it off the internet")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *metricsAddr); err != nil {
		log.Fatal(err)
	}
}

// run serves the receiver on addr and its metrics on metricsAddr until ctx
// ends or one of the two servers fails, which stops the other.
func run(ctx context.Context, addr, metricsAddr string) (err error) {
	m, err := newMetrics()
	if err != nil {
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, m.provider.Shutdown(shutdownCtx))
	}()
	// These examples have no Cofidis account, hence no getStatus client:
	// they say so. A real shop passes cofidis.WithVerifier(getStatus).
	rt, err := shop.NewRouter(shop.OnRedirect, shop.OnNotification,
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithObserver(m.observer))
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- shop.Serve(ctx, addr, newHandler(rt)) }()
	go func() { errs <- shop.Serve(ctx, metricsAddr, m.handler) }()
	err = <-errs
	cancel()
	return errors.Join(err, <-errs)
}

// newHandler mounts the receiver next to the shop's own pages.
func newHandler(rt *cofidis.Router) http.Handler {
	mux := http.NewServeMux()
	rt.Register(mux) // one exact-path pattern per URL
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		shop.OrderPage(w, r.PathValue("id"))
	})
	cop := http.NewCrossOriginProtection()
	if err := rt.ExemptReturnRoutes(cop); err != nil {
		panic(err) // only a second call could conflict
	}
	return cop.Handler(mux)
}

// metrics is the receiver's telemetry: an Observer recording with a
// MeterProvider whose reader is the Prometheus exporter, and the handler
// serving what it collects.
type metrics struct {
	observer *otelcofidis.Observer
	handler  http.Handler // GET /metrics
	provider *sdkmetric.MeterProvider
}

// newMetrics builds the exporter on a registry of its own (not
// prometheus.DefaultRegisterer, which a library could fill), the
// MeterProvider reading from it and the Observer. Spans go to the global
// TracerProvider: a real shop sets one up with an OTLP exporter.
func newMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprometheus.New(
		otelprometheus.WithRegisterer(reg),
		// Prometheus-style names (cofidis_deliveries_total,
		// cofidis_call_duration_seconds) and labels (error_type), stated
		// rather than left to the exporter's default, which is due to
		// change.
		otelprometheus.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	obs, err := otelcofidis.New(otelcofidis.WithMeterProvider(provider))
	if err != nil {
		return nil, errors.Join(err, provider.Shutdown(context.Background()))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return &metrics{observer: obs, handler: mux, provider: provider}, nil
}
