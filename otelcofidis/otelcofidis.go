// Package otelcofidis measures and traces a cofidis.Router with
// OpenTelemetry: an Observer (see cofidis.WithObserver) that counts
// deliveries and rejections, times the calls the Router makes to the
// merchant's code (callbacks, Verifier, Store), and opens one span per
// request with one child span per call.
//
// Plug it in with the global providers (those set with otel.SetMeterProvider
// and otel.SetTracerProvider, before or after New):
//
//	obs, err := otelcofidis.New()
//	if err != nil { … }
//	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification,
//		cofidis.WithVerifier(getStatus),
//		cofidis.WithObserver(obs))
//
// or with explicit ones: otelcofidis.New(otelcofidis.WithMeterProvider(mp),
// otelcofidis.WithTracerProvider(tp)). Wrap the Router in otelhttp.NewHandler
// for the HTTP server span (and, with a propagator set, the trace context of
// incoming requests): the request's span is then a child of the server
// span.
//
// Every metric attribute comes from a fixed set of values: a channel's and a
// call's name, an endpoint set (31 values at most), Status.Label and
// SubState.Label (the canonical spelling of a known status, "unknown" for
// any other), an Outcome and cofidis.ErrorClass. Nothing a request carries
// verbatim (a raw status, a transaction's identity, an address, a query)
// ever becomes a metric attribute, so whoever posts cannot create series at
// will. Spans carry the transaction's identity (merchantId,
// merchantTransactionId, merchantTransactionDate) and never providerId,
// providerTransactionId, the raw status, the client's address or the query.
package otelcofidis

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cofidis-go/cofidis"
)

// ScopeName is the instrumentation scope of the meter and the tracer: the
// module's import path.
const ScopeName = "github.com/cofidis-go/cofidis/otelcofidis"

// The names of the instruments, for views (to change a histogram's buckets,
// say) and queries. A Prometheus exporter shows them with dots turned into
// underscores and the unit as a suffix: cofidis_deliveries_total,
// cofidis_rejections_total, cofidis_request_duration_seconds,
// cofidis_call_duration_seconds.
const (
	// MetricDeliveries counts decoded requests (events), by channel,
	// endpoints, status, sub_state and outcome. Unit {delivery}.
	MetricDeliveries = "cofidis.deliveries"
	// MetricRejections counts refused requests (outcomes rejected and
	// store_failed), decoded or not, by channel and error.type. Unit
	// {request}.
	MetricRejections = "cofidis.rejections"
	// MetricRequestDuration is how long the Router took over a request,
	// from its route to its outcome, by channel, outcome and error.type.
	// Unit s.
	MetricRequestDuration = "cofidis.request.duration"
	// MetricCallDuration is how long each call to the merchant's code took,
	// by call, channel and, when the call failed, error.type. Unit s.
	MetricCallDuration = "cofidis.call.duration"
)

// Metric attribute keys. The instrument's name is their namespace, so they
// read well as Prometheus labels (status="unknown").
const (
	keyChannel   = attribute.Key("channel")
	keyEndpoints = attribute.Key("endpoints")
	keyStatus    = attribute.Key("status")
	keySubState  = attribute.Key("sub_state")
	keyOutcome   = attribute.Key("outcome")
	keyCall      = attribute.Key("call")
	// keyErrorType is OpenTelemetry's error.type: a cofidis.ErrorClass.
	keyErrorType = attribute.Key("error.type")
)

// Span attribute keys, namespaced: a tracing backend indexes the
// attributes of every service's spans together.
const (
	spanChannel         = attribute.Key("cofidis.channel")
	spanEndpoints       = attribute.Key("cofidis.endpoints")
	spanStatus          = attribute.Key("cofidis.status")
	spanSubState        = attribute.Key("cofidis.sub_state")
	spanOutcome         = attribute.Key("cofidis.outcome")
	spanMerchantID      = attribute.Key("cofidis.merchant_id")
	spanTransactionID   = attribute.Key("cofidis.merchant_transaction_id")
	spanTransactionDate = attribute.Key("cofidis.merchant_transaction_date")
	spanVerified        = attribute.Key("cofidis.verified")
	spanDuplicate       = attribute.Key("cofidis.duplicate")
	spanStale           = attribute.Key("cofidis.stale")
	spanConflict        = attribute.Key("cofidis.conflict")
	spanUnexpected      = attribute.Key("cofidis.unexpected")
	spanChannelInferred = attribute.Key("cofidis.channel_inferred")
)

// The error.type of a failed call that wraps none of the package's
// sentinels but ended with its context: a timeout is worth telling from
// the other failures of a store or a Verifier.
const (
	errorTypeDeadline = "deadline_exceeded"
	errorTypeCanceled = "canceled"
)

// durationBuckets are the boundaries of the duration histograms, in
// seconds: those OpenTelemetry's HTTP semantic conventions recommend for
// http.server.request.duration.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Option configures New.
type Option func(*config)

type config struct {
	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
}

// WithMeterProvider records the metrics with mp instead of the global
// MeterProvider (otel.GetMeterProvider). A nil mp keeps the global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithTracerProvider starts the spans with tp instead of the global
// TracerProvider (otel.GetTracerProvider). A nil tp keeps the global one.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// Observer is a cofidis.Observer recording OpenTelemetry metrics and spans.
// Build it with New and give it to a Router once, with cofidis.WithObserver;
// one Observer may serve several Routers. It is safe for concurrent use.
type Observer struct {
	tracer          trace.Tracer
	deliveries      metric.Int64Counter
	rejections      metric.Int64Counter
	requestDuration metric.Float64Histogram
	callDuration    metric.Float64Histogram

	// The span names of every Channel and Call value (both are bytes),
	// computed once: Channel.String and Call.String return constants, but
	// concatenating them into a span name would allocate on every request.
	requestNames [256]string
	callNames    [256]string

	deliverySets  setCache[deliveryKey]
	rejectionSets setCache[rejectionKey]
	requestSets   setCache[requestKey]
	callSets      setCache[callKey]
}

var _ cofidis.Observer = (*Observer)(nil)

// New returns an Observer recording with the providers the options give,
// the global ones by default. Its error comes from creating the
// instruments.
func New(opts ...Option) (*Observer, error) {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	meter := c.meterProvider.Meter(ScopeName)
	o := &Observer{tracer: c.tracerProvider.Tracer(ScopeName)}
	var err, e error
	o.deliveries, e = meter.Int64Counter(MetricDeliveries, metric.WithUnit("{delivery}"),
		metric.WithDescription("Decoded Cofidis callbacks, by what became of them."))
	err = errors.Join(err, e)
	o.rejections, e = meter.Int64Counter(MetricRejections, metric.WithUnit("{request}"),
		metric.WithDescription("Requests refused by the Cofidis receiver, by error class."))
	err = errors.Join(err, e)
	o.requestDuration, e = meter.Float64Histogram(MetricRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Time the Cofidis receiver took over a request."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	err = errors.Join(err, e)
	o.callDuration, e = meter.Float64Histogram(MetricCallDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of the calls the Cofidis receiver makes to the merchant's code: callbacks, Verifier, Store."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	for i := range 256 {
		o.requestNames[i] = "cofidis." + cofidis.Channel(i).String()
		o.callNames[i] = "cofidis." + cofidis.Call(i).String()
	}
	return o, nil
}

// requestCtxKey and callCtxKey find an Observer's own state in a context:
// its span, not the innermost span of the context, which may belong to
// another Observer running after it.
type (
	requestCtxKey struct{ o *Observer }
	callCtxKey    struct{ o *Observer }
)

// requestContext is the context StartRequest returns: the request's
// context with the request's span, plus what EndRequest needs. Being the
// context itself, it costs one allocation rather than a context.WithValue
// on top of the span's.
type requestContext struct {
	context.Context
	o     *Observer
	span  trace.Span
	ch    cofidis.Channel
	start time.Time
}

// Value returns rc for the Observer's request key, and asks the parent otherwise.
func (rc *requestContext) Value(key any) any {
	if k, ok := key.(requestCtxKey); ok && k.o == rc.o {
		return rc
	}
	return rc.Context.Value(key)
}

// callContext is the context StartCall returns, like requestContext.
type callContext struct {
	context.Context
	o    *Observer
	span trace.Span
}

// Value returns cc for the Observer's call key, and asks the parent
// otherwise.
func (cc *callContext) Value(key any) any {
	if k, ok := key.(callCtxKey); ok && k.o == cc.o {
		return cc
	}
	return cc.Context.Value(key)
}

// StartRequest starts the request's span, named "cofidis." and the channel
// ("cofidis.notification"), as a child of the span ctx carries (otelhttp's
// server span).
func (o *Observer) StartRequest(ctx context.Context, ch cofidis.Channel) context.Context {
	ctx, span := o.tracer.Start(ctx, o.requestNames[ch])
	return &requestContext{Context: ctx, o: o, span: span, ch: ch, start: time.Now()}
}

// EndRequest records the request's metrics and ends its span.
func (o *Observer) EndRequest(ctx context.Context, rep cofidis.Report) {
	class := cofidis.ErrorClass(rep.Err)
	var status, subState string // the event's labels
	if ev := rep.Event; ev != nil {
		status, subState = ev.Status.Label(), ev.SubState.Label()
		o.deliveries.Add(ctx, 1, o.deliverySets.get(deliveryKey{
			channel:   rep.Channel,
			endpoints: ev.Endpoints,
			status:    status,
			subState:  subState,
			outcome:   rep.Outcome,
		}, deliveryAttrs).add...)
	}
	if rep.Outcome == cofidis.OutcomeRejected || rep.Outcome == cofidis.OutcomeStoreFailed {
		o.rejections.Add(ctx, 1, o.rejectionSets.get(rejectionKey{channel: rep.Channel, class: class}, rejectionAttrs).add...)
	}
	rc, _ := ctx.Value(requestCtxKey{o}).(*requestContext)
	if rc == nil {
		return // not a request this Observer started
	}
	o.requestDuration.Record(ctx, time.Since(rc.start).Seconds(),
		o.requestSets.get(requestKey{channel: rep.Channel, outcome: rep.Outcome, class: class}, requestAttrs).record...)
	span := rc.span
	if span.IsRecording() {
		o.annotate(span, rep, class, status, subState)
	}
	span.End()
}

// annotate sets the request span's attributes and status; status and
// subState are the event's labels.
func (o *Observer) annotate(span trace.Span, rep cofidis.Report, class, status, subState string) {
	attrs := make([]attribute.KeyValue, 0, 16)
	attrs = append(attrs,
		spanChannel.String(rep.Channel.String()),
		spanOutcome.String(rep.Outcome.String()))
	if ev := rep.Event; ev != nil {
		k := ev.TransactionKey
		attrs = append(attrs,
			spanMerchantID.String(truncate(k.MerchantID)),
			spanTransactionID.String(truncate(k.MerchantTransactionID)),
			spanTransactionDate.String(k.MerchantTransactionDate),
			spanEndpoints.String(ev.Endpoints.String()),
			spanStatus.String(status),
			spanVerified.Bool(ev.Verified))
		if subState != "" {
			attrs = append(attrs, spanSubState.String(subState))
		}
		for _, f := range [...]struct {
			key attribute.Key
			set bool
		}{
			{spanDuplicate, ev.Duplicate},
			{spanStale, ev.Stale},
			{spanConflict, ev.Conflict},
			{spanUnexpected, ev.Unexpected},
			{spanChannelInferred, ev.ChannelInferred},
		} {
			if f.set {
				attrs = append(attrs, f.key.Bool(true))
			}
		}
	}
	if rep.Err != nil {
		attrs = append(attrs, keyErrorType.String(class))
	}
	span.SetAttributes(attrs...)
	if rep.Err != nil {
		span.RecordError(rep.Err)
	}
	switch {
	case rep.Err != nil && cofidis.HTTPStatus(rep.Err) >= http.StatusInternalServerError:
		// The receiver's failure (its Verifier, its Store, its callback),
		// or one it answers with a 5xx so that Cofidis retries.
		span.SetStatus(codes.Error, class)
	case rep.Outcome == cofidis.OutcomeUnrecorded:
		// Acknowledged, since the action happened, but the store could
		// not record it: the receiver failed, although the client did not.
		span.SetStatus(codes.Error, rep.Outcome.String())
	}
	// A 4xx (or a 200 for a Permanent error) leaves the status unset, as
	// OpenTelemetry's HTTP conventions do for a server span: the request
	// was wrong, not the receiver; error.type and the exception event say
	// why.
}

// StartCall starts the call's span, named "cofidis." and the call
// ("cofidis.store.claim"), as a child of the request's span. A call outside
// any trace (with no-op providers, or the Router's background calls, such
// as the reconciler's Tracker.TakeDue at every interval) gets no span: it
// would make a trace of its own each time. EndCall measures it all the
// same.
func (o *Observer) StartCall(ctx context.Context, call cofidis.Call) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	ctx, span := o.tracer.Start(ctx, o.callNames[call])
	return &callContext{Context: ctx, o: o, span: span}
}

// EndCall records the call's duration and ends its span, recording its
// error.
func (o *Observer) EndCall(ctx context.Context, call cofidis.Call, elapsed time.Duration, err error) {
	ch, ok := cofidis.ChannelUnknown, false
	if rc, _ := ctx.Value(requestCtxKey{o}).(*requestContext); rc != nil {
		ch, ok = rc.ch, true
	}
	class := callErrorType(err)
	o.callDuration.Record(ctx, elapsed.Seconds(),
		o.callSets.get(callKey{call: call, channel: ch, inRequest: ok, class: class}, callAttrs).record...)
	cc, _ := ctx.Value(callCtxKey{o}).(*callContext)
	if cc == nil {
		return
	}
	if err != nil && cc.span.IsRecording() {
		cc.span.SetAttributes(keyErrorType.String(class))
		cc.span.RecordError(err)
		cc.span.SetStatus(codes.Error, class)
	}
	cc.span.End()
}

// maxIdentityBytes bounds the identity's members on a span. Real ones are
// short (merchantId has 9 digits, the documentation's
// merchantTransactionId 10 characters), but without a Verifier anyone can
// post a key whose members fill the body.
const maxIdentityBytes = 128

// truncate cuts s to at most maxIdentityBytes, at a character boundary.
func truncate(s string) string {
	if len(s) <= maxIdentityBytes {
		return s
	}
	n := maxIdentityBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// callErrorType is the error.type of a call's error: its
// cofidis.ErrorClass, or for an error wrapping none of the package's
// sentinels, "deadline_exceeded" or "canceled" when it is its context's
// end, "other" otherwise. "" for nil.
func callErrorType(err error) string {
	class := cofidis.ErrorClass(err)
	if class != "other" {
		return class
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errorTypeDeadline
	case errors.Is(err, context.Canceled):
		return errorTypeCanceled
	}
	return class
}
