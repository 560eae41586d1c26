package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/redisstore"
	"github.com/cofidis-go/cofidis/storetest"
)

// redisAddr is the server the tests use: REDIS_ADDR, or the default port on
// loopback.
func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// newClient connects to the test server. Without one the test is skipped,
// except in CI (CI set), where it fails: a green CI must have run these.
func newClient(t testing.TB, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: redisAddr()}
	for _, f := range opts {
		f(o)
	}
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Redis server at %s (REDIS_ADDR) in CI: %v", o.Addr, err)
		}
		t.Skipf("no Redis server at %s (set REDIS_ADDR): %v", o.Addr, err)
	}
	return rdb
}

// uniquePrefix keeps tests apart on a shared server.
func uniquePrefix() string { return "cofidistest:" + rand.Text() + ":" }

// newStore returns a store on rdb, by default under a prefix of its own,
// and so with a due list of its own, as storetest requires. The due list
// has no TTL: it is deleted when the test ends.
func newStore(t testing.TB, rdb redis.Scripter, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix()
	}
	s, err := redisstore.New(rdb, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = rdb.Eval(ctx, `return redis.call('DEL', KEYS[1], KEYS[2])`, trackerKeys(opts.Prefix)).Err()
	})
	return s
}

// trackerKeys returns the keys of the due list under prefix (see the
// package documentation): the sorted set and the hash of records.
func trackerKeys(prefix string) []string {
	return []string{prefix + "{tracker}:due", prefix + "{tracker}:tracked"}
}

func TestContract(t *testing.T) {
	rdb := newClient(t)
	storetest.Run(t, func(t *testing.T) cofidis.Store { return newStore(t, rdb, redisstore.Options{}) })
}

func TestNew_rejectsBadArguments(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{}) // never contacted
	defer rdb.Close()
	tests := []struct {
		name    string
		rdb     redis.Scripter
		opts    redisstore.Options
		mention string // what the error names
	}{
		{"nil client", nil, redisstore.Options{}, "client"},
		{"negative TTL", rdb, redisstore.Options{TTL: -time.Second}, "TTL"},
		{"sub-millisecond TTL", rdb, redisstore.Options{TTL: time.Microsecond}, "TTL"},
		// A Redis Cluster hashes the first "{...}" of a key: a tag in the
		// prefix would replace the transaction's own.
		{"prefix with a hash tag: every key on one master", rdb, redisstore.Options{Prefix: "{shop}:"}, `"{shop}:"`},
		{"prefix with an empty hash tag: CROSSSLOT", rdb, redisstore.Options{Prefix: "{}:"}, `"{}:"`},
		{"prefix with an opening brace", rdb, redisstore.Options{Prefix: "shop{:"}, `'{'`},
		{"prefix with a closing brace", rdb, redisstore.Options{Prefix: "shop}:"}, `'}'`},
		{"prefix with a tag after the namespace", rdb, redisstore.Options{Prefix: "cofidis:{eu}:"}, `'{'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.New(tt.rdb, tt.opts)
			if !errors.Is(err, cofidis.ErrInvalidOption) {
				t.Fatalf("New = %v, %v; want ErrInvalidOption", s, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("New = %q; want it to mention %s", err, tt.mention)
			}
		})
	}
}

func TestNew_acceptsPrefixes(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{}) // never contacted
	defer rdb.Close()
	tests := []struct {
		name   string
		prefix string
	}{
		{"empty: the default", ""},
		{"the default spelled out", redisstore.DefaultPrefix},
		{"an environment", "cofidis:staging:"},
		{"no separator", "shop"},
		{"other punctuation", "shop[eu]/(prod)|1:"},
		{"non-ASCII", "bestellungen:ü:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := redisstore.New(rdb, redisstore.Options{Prefix: tt.prefix}); err != nil {
				t.Errorf("New(Prefix %q) = %v", tt.prefix, err)
			}
		})
	}
}

func actionKey(st cofidis.Status) cofidis.ActionKey {
	return cofidis.ActionKey{Transaction: "020280098/" + rand.Text() + "/20260227", Action: string(st), Status: st, Rank: st.Rank()}
}

func TestKeys_areNamespacedAndExpire(t *testing.T) {
	rdb := newClient(t)
	prefix := uniquePrefix()
	s := newStore(t, rdb, redisstore.Options{Prefix: prefix, TTL: time.Hour})
	ctx := context.Background()
	k := actionKey(cofidis.StatusToConfirm)
	res, err := s.Claim(ctx, k, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, k, res.Token); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys under the prefix = %q, want the action and the transaction", keys)
	}
	for _, key := range keys {
		if !strings.HasPrefix(key, prefix+"{"+k.Transaction+"}:") {
			t.Errorf("key %q does not carry the transaction as a hash tag", key)
		}
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 59*time.Minute || ttl > time.Hour {
			t.Errorf("PTTL(%q) = %v, want about the 1h TTL", key, ttl)
		}
	}
}

func TestKeys_heldClaimsExpireToo(t *testing.T) {
	rdb := newClient(t)
	prefix := uniquePrefix()
	s := newStore(t, rdb, redisstore.Options{Prefix: prefix, TTL: time.Hour})
	ctx := context.Background()
	if _, err := s.Claim(ctx, actionKey(cofidis.StatusPending), time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, _ := rdb.Keys(ctx, prefix+"*").Result()
	for _, key := range keys {
		if ttl, _ := rdb.PTTL(ctx, key).Result(); ttl <= 0 {
			t.Errorf("PTTL(%q) = %v: a crashed replica's claim would stay forever", key, ttl)
		}
	}
}

func TestPrefixes_areIsolated(t *testing.T) {
	rdb := newClient(t)
	a := newStore(t, rdb, redisstore.Options{})
	b := newStore(t, rdb, redisstore.Options{})
	ctx := context.Background()
	k := actionKey(cofidis.StatusToConfirm)
	res, err := a.Claim(ctx, k, time.Minute)
	if err != nil || res.State != cofidis.Claimed {
		t.Fatalf("a.Claim = %v, %v", res.State, err)
	}
	if res, err := b.Claim(ctx, k, time.Minute); err != nil || res.State != cofidis.Claimed {
		t.Fatalf("b.Claim = %v, %v: want its own namespace", res.State, err)
	}
}

func TestScripts_areReloadedAfterAFlush(t *testing.T) {
	rdb := newClient(t)
	s := newStore(t, rdb, redisstore.Options{})
	ctx := context.Background()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	k := actionKey(cofidis.StatusToConfirm)
	res, err := s.Claim(ctx, k, time.Minute)
	if err != nil {
		t.Fatalf("Claim after SCRIPT FLUSH: %v", err)
	}
	if err := s.Complete(ctx, k, res.Token); err != nil {
		t.Fatalf("Complete after SCRIPT FLUSH: %v", err)
	}
	now := time.Now()
	x := trackedAt(now, now)
	if err := s.Track(ctx, x); err != nil {
		t.Fatalf("Track after SCRIPT FLUSH: %v", err)
	}
	if got, err := s.TakeDue(ctx, now, 10, time.Minute); err != nil || len(got) != 1 {
		t.Fatalf("TakeDue after SCRIPT FLUSH = %d taken, %v", len(got), err)
	}
}

func TestUnreachableServer_isAnError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	defer rdb.Close()
	s := newStore(t, rdb, redisstore.Options{})
	ctx := context.Background()
	k := actionKey(cofidis.StatusToConfirm)
	if _, err := s.Claim(ctx, k, time.Minute); err == nil {
		t.Error("Claim succeeded without a server")
	}
	if err := s.Complete(ctx, k, "t"); err == nil || errors.Is(err, cofidis.ErrLeaseLost) {
		t.Errorf("Complete = %v, want a connection error", err)
	}
	if err := s.Release(ctx, k, "t"); err == nil {
		t.Error("Release succeeded without a server")
	}
	if _, err := s.Peek(ctx, k); err == nil {
		t.Error("Peek succeeded without a server")
	}
	x := trackedAt(time.Now(), time.Now())
	if err := s.Track(ctx, x); err == nil {
		t.Error("Track succeeded without a server")
	}
	if _, err := s.TakeDue(ctx, time.Now(), 10, time.Minute); err == nil {
		t.Error("TakeDue succeeded without a server")
	}
	x.Token = "t"
	if err := s.Reschedule(ctx, x); err == nil || errors.Is(err, cofidis.ErrLeaseLost) {
		t.Errorf("Reschedule = %v, want a connection error", err)
	}
	if err := s.Untrack(ctx, x); err == nil || errors.Is(err, cofidis.ErrLeaseLost) {
		t.Errorf("Untrack = %v, want a connection error", err)
	}
}

// commandCounter counts the commands a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// deliveryHandlers are a Router's notification and redirect handlers for
// to_confirm, deduplicating through a store, with callbacks that do nothing.
type deliveryHandlers struct {
	notify, redirect http.Handler
}

func newDeliveryHandlers(t testing.TB, store cofidis.Store) deliveryHandlers {
	t.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
			w.WriteHeader(http.StatusOK)
			return nil
		},
		func(context.Context, cofidis.Event) error { return nil },
		cofidis.WithInsecureSkipVerify(), // store round trips only: no getStatus
		cofidis.WithIdempotency(store), cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	route := func(e cofidis.Endpoint) http.Handler {
		for _, r := range rt.Routes() {
			if r.Endpoints.Has(e) {
				return r.Handler
			}
		}
		t.Fatalf("no route for %s", e)
		return nil
	}
	return deliveryHandlers{notify: route(cofidis.EndpointNotificationSuccess), redirect: route(cofidis.EndpointReturnSuccess)}
}

// deliveryBody is the form Cofidis posts for a to_confirm of merchantTxn.
func deliveryBody(merchantTxn string) string {
	return url.Values{
		"transactionKey": {`{"merchantCountry":"fr","providerId":"p","providerTransactionId":null,"merchantId":"020280098",` +
			`"merchantTransactionId":"` + merchantTxn + `","merchantTransactionDate":"20260227"}`},
		"transactionStatus": {"to_confirm"},
	}.Encode()
}

// post delivers a to_confirm of merchantTxn to h and returns the answer's
// status code.
func (deliveryHandlers) post(t testing.TB, h http.Handler, merchantTxn string) int {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(deliveryBody(merchantTxn)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestRoundTrips_perDelivery(t *testing.T) {
	rdb := newClient(t, func(o *redis.Options) { o.PoolSize = 1 })
	h := newDeliveryHandlers(t, newStore(t, rdb, redisstore.Options{}))
	// Load the scripts (EVALSHA falls back to EVAL once per script).
	h.post(t, h.notify, "warm")
	h.post(t, h.notify, "warm")
	h.post(t, h.redirect, "warm")

	counter := &commandCounter{}
	rdb.AddHook(counter)
	txn := rand.Text()[:10]
	tests := []struct {
		name string
		h    http.Handler
		want int64
	}{
		{"first notification: claim and complete", h.notify, 2},
		{"duplicate notification: claim", h.notify, 1},
		{"redirect: peek", h.redirect, 1},
	}
	for _, tt := range tests {
		counter.n.Store(0)
		if code := h.post(t, tt.h, txn); code != http.StatusOK {
			t.Fatalf("%s: answered %d", tt.name, code)
		}
		if got := counter.n.Load(); got != tt.want {
			t.Errorf("%s: %d round trips, want %d", tt.name, got, tt.want)
		}
	}
}
