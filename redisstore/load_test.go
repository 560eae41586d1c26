package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/redisstore"
)

// The load harness's shape: every decision is delivered three times (as
// Cofidis does for a to_confirm), to two replicas sharing one store.
const (
	loadCopies   = 3
	loadReplicas = 2
	loadWorkers  = 16  // concurrent senders
	loadBlock    = 256 // decisions whose deliveries are shuffled together, so copies overlap in time
	loadSeed     = 20260227
)

// loadConfig shapes one run of the harness.
type loadConfig struct {
	decisions int
	failRate  float64 // of first callback attempts failing (error or panic)
	// maxAttempts bounds the POSTs of one delivery, as a sender retrying
	// until 2xx would; maxBackoff bounds the pause between them.
	maxAttempts int
	maxBackoff  time.Duration
	budget      time.Duration // for the whole run
	lease       time.Duration // WithLease; zero for the default
	// midway, when set, starts once a midwayAt fraction of the deliveries
	// has been handed to the senders, and runs alongside the rest; the run
	// ends when both are done.
	midway   func()
	midwayAt float64
	// beforeAction, when set, is called by the callback before it does a
	// decision's business action.
	beforeAction func(decision int)
}

// loadDecision is one decision and the fate of its first callback.
type loadDecision struct {
	txn       string
	status    string
	subState  string
	paths     [loadCopies]string // the notification URLs its copies reach
	failFirst bool               // the first callback attempt fails (error or panic)
}

// loadDelivery is one POST: a copy of a decision sent to a replica.
type loadDelivery struct {
	decision int
	copy     int
	replica  int
}

// loadRun is what became of one run: the HTTP answers, the outcomes the
// routers reported, and the business actions each decision caused.
type loadRun struct {
	cfg        loadConfig
	decisions  []loadDecision
	deliveries []loadDelivery
	byTxn      map[string]int

	actions    []atomic.Int32 // business actions done, per decision
	attempts   []atomic.Int32 // callback calls, per decision
	unrecorded []atomic.Int32 // OutcomeUnrecorded reports, per decision
	failures   atomic.Int64   // injected callback failures

	requests, ok, inProgress, failed, other, exhausted atomic.Int64
	outcomes                                           [int(cofidis.OutcomeUnrecorded) + 1]atomic.Int64
	slowest                                            atomic.Int64 // the longest answer, in nanoseconds

	elapsed time.Duration
}

func (r *loadRun) hook(_ context.Context, ev cofidis.Event, o cofidis.Outcome) {
	r.outcomes[o].Add(1)
	if i, ok := r.byTxn[ev.TransactionKey.MerchantTransactionID]; ok && o == cofidis.OutcomeUnrecorded {
		r.unrecorded[i].Add(1)
	}
}

func (r *loadRun) outcome(o cofidis.Outcome) int64 { return r.outcomes[o].Load() }

func (r *loadRun) observeLatency(d time.Duration) {
	for {
		old := r.slowest.Load()
		if int64(d) <= old || r.slowest.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

func makeDecisions(rng *rand.Rand, n int, failRate float64) []loadDecision {
	const (
		success = "/pay/cofidis/notify/success"
		pending = "/pay/cofidis/notify/pending"
		other   = "/pay/cofidis/notify/other"
	)
	ds := make([]loadDecision, n)
	for i := range ds {
		d := loadDecision{txn: fmt.Sprintf("L%07d", i), failFirst: rng.Float64() < failRate}
		switch p := rng.IntN(100); {
		case p < 70: // accepted at the end of the journey or after a pending check
			d.status, d.paths = "to_confirm", [loadCopies]string{success, pending, success}
		case p < 85:
			d.status, d.paths = "Refused", [loadCopies]string{other, pending, other}
		case p < 95:
			d.status, d.paths = "Aborted", [loadCopies]string{other, other, other}
		default:
			d.status, d.subState, d.paths = "pending", "signed", [loadCopies]string{pending, pending, pending}
		}
		ds[i] = d
	}
	return ds
}

// makeDeliveries lists every copy of every decision, each to a random
// replica, shuffled within blocks of decisions so that copies of one
// decision are often in flight together.
func makeDeliveries(rng *rand.Rand, n int) []loadDelivery {
	out := make([]loadDelivery, 0, n*loadCopies)
	for start := 0; start < n; start += loadBlock {
		block := len(out)
		for i := start; i < min(start+loadBlock, n); i++ {
			for c := range loadCopies {
				out = append(out, loadDelivery{decision: i, copy: c, replica: rng.IntN(loadReplicas)})
			}
		}
		tail := out[block:]
		rng.Shuffle(len(tail), func(i, j int) { tail[i], tail[j] = tail[j], tail[i] })
	}
	return out
}

// runLoad is newLoad(cfg).run(t, stores).
func runLoad(t *testing.T, stores [loadReplicas]cofidis.Store, cfg loadConfig) *loadRun {
	t.Helper()
	r := newLoad(cfg)
	r.run(t, stores)
	return r
}

// newLoad draws the decisions and deliveries of a run.
func newLoad(cfg loadConfig) *loadRun {
	rng := rand.New(rand.NewPCG(loadSeed, loadSeed))
	r := &loadRun{cfg: cfg, decisions: makeDecisions(rng, cfg.decisions, cfg.failRate)}
	r.deliveries = makeDeliveries(rng, len(r.decisions))
	r.byTxn = make(map[string]int, len(r.decisions))
	for i, d := range r.decisions {
		r.byTxn[d.txn] = i
	}
	r.actions = make([]atomic.Int32, len(r.decisions))
	r.attempts = make([]atomic.Int32, len(r.decisions))
	r.unrecorded = make([]atomic.Int32, len(r.decisions))
	return r
}

// run delivers every copy of every decision to loadReplicas routers over
// real HTTP on loopback, replica i deduplicating through stores[i] (one
// store shared, or one client each on the same Redis), and retries each
// delivery until it is answered 2xx.
func (r *loadRun) run(t *testing.T, stores [loadReplicas]cofidis.Store) {
	t.Helper()
	cfg := r.cfg
	callback := func(_ context.Context, ev cofidis.Event) error {
		i, ok := r.byTxn[ev.TransactionKey.MerchantTransactionID]
		if !ok {
			return cofidis.Permanent(errors.New("unknown transaction"))
		}
		if r.attempts[i].Add(1) == 1 && r.decisions[i].failFirst {
			r.failures.Add(1)
			if i%2 == 0 {
				panic("simulated crash in the merchant's callback")
			}
			return errors.New("simulated database error")
		}
		if cfg.beforeAction != nil {
			cfg.beforeAction(i)
		}
		r.actions[i].Add(1)
		return nil
	}

	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	var servers [loadReplicas]*httptest.Server
	for i := range servers {
		opts := []cofidis.Option{
			cofidis.WithInsecureSkipVerify(), // the harness posts made-up decisions
			cofidis.WithIdempotency(stores[i]), cofidis.WithDeliveryHook(r.hook), cofidis.WithLogger(quiet),
		}
		if cfg.lease > 0 {
			opts = append(opts, cofidis.WithLease(cfg.lease))
		}
		rt, err := cofidis.NewRouter(urls,
			func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
				w.WriteHeader(http.StatusOK)
				return nil
			},
			callback, opts...)
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = httptest.NewServer(rt)
		defer servers[i].Close()
	}
	lease := cfg.lease
	if lease == 0 {
		lease = cofidis.DefaultLease
	}
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: loadWorkers, MaxConnsPerHost: loadWorkers},
		// Above what a Router may take when the store fails: a claim, then
		// completions retried until the lease ends, each call bounded.
		Timeout: lease + 30*time.Second,
	}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), cfg.budget)
	defer cancel()
	send := func(dl loadDelivery) {
		d := r.decisions[dl.decision]
		v := url.Values{
			"transactionKey": {`{"merchantCountry":"fr","providerId":"loadtest","providerTransactionId":null,` +
				`"merchantId":"020280098","merchantTransactionId":"` + d.txn + `","merchantTransactionDate":"20260227"}`},
			"transactionStatus": {d.status},
		}
		if d.subState != "" && strings.HasSuffix(d.paths[dl.copy], "pending") {
			v.Set("subState", d.subState)
		}
		body := v.Encode()
		target := servers[dl.replica].URL + d.paths[dl.copy]
		for attempt := 1; attempt <= cfg.maxAttempts; attempt++ {
			if ctx.Err() != nil {
				break
			}
			r.requests.Add(1)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			sent := time.Now()
			resp, err := client.Do(req)
			r.observeLatency(time.Since(sent))
			code := 0
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			switch {
			case code >= 200 && code < 300:
				r.ok.Add(1)
				return
			case code == http.StatusServiceUnavailable:
				r.inProgress.Add(1)
			case code == http.StatusInternalServerError:
				r.failed.Add(1)
			default:
				r.other.Add(1)
			}
			// Retry as Cofidis would, sooner: the harness cannot wait
			// for Retry-After (the holder's whole lease).
			time.Sleep(min(time.Duration(attempt)*time.Millisecond, cfg.maxBackoff))
		}
		r.exhausted.Add(1)
	}

	start := time.Now()
	queue := make(chan loadDelivery)
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for dl := range queue {
				send(dl)
			}
		})
	}
	midwayAt := -1
	if cfg.midway != nil {
		midwayAt = int(cfg.midwayAt * float64(len(r.deliveries)))
	}
	for i, dl := range r.deliveries {
		if i == midwayAt {
			wg.Go(cfg.midway)
		}
		queue <- dl
	}
	close(queue)
	wg.Wait()
	r.elapsed = time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the load ran out of its %v budget", cfg.budget)
	}
}

// tally counts the decisions whose action ran not at all, once, and more
// than once.
func (r *loadRun) tally() (lost, once, duplicated int) {
	for i := range r.actions {
		switch r.actions[i].Load() {
		case 0:
			lost++
		case 1:
			once++
		default:
			duplicated++
		}
	}
	return lost, once, duplicated
}

// report logs the run's figures (shown under -v, as in CI).
func (r *loadRun) report(t *testing.T, title string) {
	t.Helper()
	lost, once, duplicated := r.tally()
	out := r.outcome
	figures := fmt.Sprintf("%s: %d decisions × %d copies = %d deliveries to %d replicas, %d senders\n"+
		"  HTTP requests %d (2xx %d, 503 %d, 500 failed %d, other %d, gave up %d)\n"+
		"  outcomes: processed %d, duplicates acknowledged %d, in progress %d, failed first attempts retried %d (injected %d), stale %d, store failed %d, unrecorded %d\n"+
		"  business actions: %d exactly once, %d lost, %d duplicated\n"+
		"  elapsed %v, %.0f requests/s, %.0f deliveries/s, slowest answer %v",
		title, len(r.decisions), loadCopies, len(r.deliveries), loadReplicas, loadWorkers,
		r.requests.Load(), r.ok.Load(), r.inProgress.Load(), r.failed.Load(), r.other.Load(), r.exhausted.Load(),
		out(cofidis.OutcomeProcessed), out(cofidis.OutcomeDuplicate), out(cofidis.OutcomeInProgress), out(cofidis.OutcomeFailed), r.failures.Load(),
		out(cofidis.OutcomeStale), out(cofidis.OutcomeStoreFailed), out(cofidis.OutcomeUnrecorded),
		once, lost, duplicated,
		r.elapsed.Round(time.Millisecond), float64(r.requests.Load())/r.elapsed.Seconds(), float64(len(r.deliveries))/r.elapsed.Seconds(),
		time.Duration(r.slowest.Load()).Round(time.Millisecond))
	t.Log(figures)
}

// checkDelivered fails the test unless every delivery was answered 2xx,
// every other answer was a 500 or a 503, and every decision's action ran.
func (r *loadRun) checkDelivered(t *testing.T) {
	t.Helper()
	if n := r.exhausted.Load(); n != 0 {
		t.Errorf("%d deliveries never got a 2xx", n)
	}
	if n := r.other.Load(); n != 0 {
		t.Errorf("%d answers were neither 2xx, 500 nor 503", n)
	}
	if lost, _, _ := r.tally(); lost != 0 {
		t.Errorf("%d decisions lost: answered 2xx without their business action", lost)
	}
	if r.failures.Load() == 0 && r.cfg.failRate > 0 {
		t.Error("no callback failure was injected: the seed no longer exercises retries")
	}
}

// checkExactlyOnce fails the test unless every decision's action ran exactly
// once and every answer and outcome is what a store that never fails gives.
func (r *loadRun) checkExactlyOnce(t *testing.T) {
	t.Helper()
	r.checkDelivered(t)
	if lost, _, duplicated := r.tally(); lost != 0 || duplicated != 0 {
		t.Errorf("business actions: %d lost, %d duplicated; want every one exactly once", lost, duplicated)
	}
	out := r.outcome
	wantChecks := []struct {
		name      string
		got, want int64
	}{
		{"processed", out(cofidis.OutcomeProcessed), int64(len(r.decisions))},
		{"duplicates acknowledged", out(cofidis.OutcomeDuplicate), int64(len(r.deliveries) - len(r.decisions))},
		{"failed attempts", out(cofidis.OutcomeFailed), r.failures.Load()},
		{"500 answers", r.failed.Load(), r.failures.Load()},
		{"503 answers", r.inProgress.Load(), out(cofidis.OutcomeInProgress)},
		{"2xx answers", r.ok.Load(), int64(len(r.deliveries))},
		{"store failures", out(cofidis.OutcomeStoreFailed) + out(cofidis.OutcomeUnrecorded) + out(cofidis.OutcomeStale), 0},
	}
	for _, c := range wantChecks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestLoad_exactlyOnceAcrossTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	rdb := newClient(t)
	store := newStore(t, rdb, redisstore.Options{TTL: 10 * time.Minute})
	r := runLoad(t, [loadReplicas]cofidis.Store{store, store}, loadConfig{
		decisions:   10_000,
		failRate:    0.05,
		maxAttempts: 50,
		maxBackoff:  20 * time.Millisecond,
		budget:      120 * time.Second,
	})
	r.report(t, "load test, one redis-server")
	r.checkExactlyOnce(t)
}
