package otelcofidis

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cofidis-go/cofidis"
)

// A metric measurement names its series by an attribute.Set, which
// metric.WithAttributes builds (a copy and a sort) on every call. The
// attributes here come from small fixed sets, so each Observer builds
// each set once and keeps the measurement options that carry it: a
// measurement then allocates nothing for its attributes.

// maxCachedSets bounds each cache. The keys are made of bounded labels
// only, so a Router's traffic reaches a few hundred sets at most; past the
// bound (a pathological mix), sets are built per measurement instead of
// growing the cache, whose copy-on-write would then cost more.
const maxCachedSets = 1024

// series holds the options of a measurement on one attribute set.
type series struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

func newSeries(set attribute.Set) *series {
	opt := metric.WithAttributeSet(set)
	return &series{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
}

// setCache maps keys to their series. Reads take no lock: the map is
// replaced, never modified, when a key is added.
type setCache[K comparable] struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[K]*series]
}

// get returns k's series, built by build the first time.
func (c *setCache[K]) get(k K, build func(K) attribute.Set) *series {
	if m := c.m.Load(); m != nil {
		if s, ok := (*m)[k]; ok {
			return s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var n int
	if old != nil {
		if s, ok := (*old)[k]; ok {
			return s
		}
		n = len(*old)
	}
	s := newSeries(build(k))
	if n >= maxCachedSets {
		return s
	}
	next := make(map[K]*series, n+1)
	if old != nil {
		for key, v := range *old {
			next[key] = v
		}
	}
	next[k] = s
	c.m.Store(&next)
	return s
}

// deliveryKey names a series of cofidis.deliveries.
type deliveryKey struct {
	channel   cofidis.Channel
	endpoints cofidis.EndpointSet
	outcome   cofidis.Outcome
	status    string // a Status.Label
	subState  string // a SubState.Label
}

func deliveryAttrs(k deliveryKey) attribute.Set {
	return attribute.NewSet(
		keyChannel.String(k.channel.String()),
		keyEndpoints.String(k.endpoints.String()),
		keyStatus.String(k.status),
		keySubState.String(k.subState),
		keyOutcome.String(k.outcome.String()),
	)
}

// rejectionKey names a series of cofidis.rejections.
type rejectionKey struct {
	channel cofidis.Channel
	class   string // a cofidis.ErrorClass
}

func rejectionAttrs(k rejectionKey) attribute.Set {
	return attribute.NewSet(
		keyChannel.String(k.channel.String()),
		keyErrorType.String(k.class),
	)
}

// requestKey names a series of cofidis.request.duration.
type requestKey struct {
	channel cofidis.Channel
	outcome cofidis.Outcome
	class   string // a cofidis.ErrorClass, "" for none
}

func requestAttrs(k requestKey) attribute.Set {
	kvs := []attribute.KeyValue{
		keyChannel.String(k.channel.String()),
		keyOutcome.String(k.outcome.String()),
	}
	if k.class != "" {
		kvs = append(kvs, keyErrorType.String(k.class))
	}
	return attribute.NewSet(kvs...)
}

// callKey names a series of cofidis.call.duration.
type callKey struct {
	call      cofidis.Call
	channel   cofidis.Channel
	inRequest bool   // channel is known: the call ran within a request
	class     string // callErrorType, "" for none
}

func callAttrs(k callKey) attribute.Set {
	kvs := []attribute.KeyValue{keyCall.String(k.call.String())}
	if k.inRequest {
		kvs = append(kvs, keyChannel.String(k.channel.String()))
	}
	if k.class != "" {
		kvs = append(kvs, keyErrorType.String(k.class))
	}
	return attribute.NewSet(kvs...)
}
