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

// The load test's shape: every decision is delivered three times (as
// Cofidis does for a to_confirm), to two replicas sharing one Redis store.
const (
	loadDecisions   = 10_000
	loadCopies      = 3
	loadWorkers     = 16  // concurrent senders
	loadBlock       = 256 // decisions whose deliveries are shuffled together, so copies overlap in time
	loadFailRate    = 0.05
	loadMaxAttempts = 50 // per delivery, as a sender retrying until 2xx would, bounded
	loadSeed        = 20260227
	loadBudget      = 120 * time.Second
)

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

// loadCounters are the figures the test prints.
type loadCounters struct {
	requests, ok, inProgress, failed, other, exhausted atomic.Int64
	outcomes                                           [int(cofidis.OutcomeUnrecorded) + 1]atomic.Int64
}

func (c *loadCounters) hook(_ context.Context, _ cofidis.Event, o cofidis.Outcome) {
	c.outcomes[o].Add(1)
}

func makeDecisions(rng *rand.Rand) []loadDecision {
	const (
		success = "/pay/cofidis/notify/success"
		pending = "/pay/cofidis/notify/pending"
		other   = "/pay/cofidis/notify/other"
	)
	ds := make([]loadDecision, loadDecisions)
	for i := range ds {
		d := loadDecision{txn: fmt.Sprintf("L%07d", i), failFirst: rng.Float64() < loadFailRate}
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
				out = append(out, loadDelivery{decision: i, copy: c, replica: rng.IntN(2)})
			}
		}
		tail := out[block:]
		rng.Shuffle(len(tail), func(i, j int) { tail[i], tail[j] = tail[j], tail[i] })
	}
	return out
}

func TestLoad_exactlyOnceAcrossTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	rdb := newClient(t)
	store := newStore(t, rdb, redisstore.Options{TTL: 10 * time.Minute})
	rng := rand.New(rand.NewPCG(loadSeed, loadSeed))
	decisions := makeDecisions(rng)
	deliveries := makeDeliveries(rng, len(decisions))

	byTxn := make(map[string]int, len(decisions))
	for i, d := range decisions {
		byTxn[d.txn] = i
	}
	var (
		actions  = make([]atomic.Int32, len(decisions)) // business actions done
		attempts = make([]atomic.Int32, len(decisions)) // callback calls
		failures atomic.Int64
	)
	callback := func(_ context.Context, ev cofidis.Event) error {
		i, ok := byTxn[ev.TransactionKey.MerchantTransactionID]
		if !ok {
			return cofidis.Permanent(errors.New("unknown transaction"))
		}
		if attempts[i].Add(1) == 1 && decisions[i].failFirst {
			failures.Add(1)
			if i%2 == 0 {
				panic("simulated crash in the merchant's callback")
			}
			return errors.New("simulated database error")
		}
		actions[i].Add(1)
		return nil
	}

	// Two replicas: separate routers, one shared store, real HTTP on loopback.
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	counters := &loadCounters{}
	quiet := slog.New(slog.DiscardHandler)
	var servers [2]*httptest.Server
	for i := range servers {
		rt, err := cofidis.NewRouter(urls,
			func(w http.ResponseWriter, _ *http.Request, _ cofidis.Event) error {
				w.WriteHeader(http.StatusOK)
				return nil
			},
			callback,
			cofidis.WithInsecureSkipVerify(), // the load test posts made-up decisions
			cofidis.WithIdempotency(store), cofidis.WithDeliveryHook(counters.hook), cofidis.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = httptest.NewServer(rt)
		defer servers[i].Close()
	}
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: loadWorkers, MaxConnsPerHost: loadWorkers},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), loadBudget)
	defer cancel()
	send := func(dl loadDelivery) {
		d := decisions[dl.decision]
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
		for attempt := 1; attempt <= loadMaxAttempts; attempt++ {
			if ctx.Err() != nil {
				break
			}
			counters.requests.Add(1)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := client.Do(req)
			code := 0
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			switch {
			case code >= 200 && code < 300:
				counters.ok.Add(1)
				return
			case code == http.StatusServiceUnavailable:
				counters.inProgress.Add(1)
			case code == http.StatusInternalServerError:
				counters.failed.Add(1)
			default:
				counters.other.Add(1)
			}
			// Retry as Cofidis would, sooner: the load test cannot wait
			// for Retry-After (the holder's whole lease).
			time.Sleep(time.Duration(min(attempt, 20)) * time.Millisecond)
		}
		counters.exhausted.Add(1)
	}

	start := time.Now()
	queue := make(chan loadDelivery)
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dl := range queue {
				send(dl)
			}
		}()
	}
	for _, dl := range deliveries {
		queue <- dl
	}
	close(queue)
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the load test ran out of its %v budget", loadBudget)
	}

	lost, duplicated := 0, 0
	for i := range actions {
		switch n := actions[i].Load(); {
		case n == 0:
			lost++
		case n > 1:
			duplicated++
		}
	}
	out := func(o cofidis.Outcome) int64 { return counters.outcomes[o].Load() }
	figures := fmt.Sprintf("load test: %d decisions × %d copies = %d deliveries to 2 replicas sharing Redis, %d senders\n"+
		"  HTTP requests %d (2xx %d, 503 in progress %d, 500 failed %d, other %d, gave up %d)\n"+
		"  outcomes: processed %d, duplicates acknowledged %d, in progress %d, failed first attempts retried %d (injected %d), stale %d, store failed %d, unrecorded %d\n"+
		"  business actions: %d exactly once, %d lost, %d duplicated\n"+
		"  elapsed %v, %.0f requests/s, %.0f deliveries/s",
		len(decisions), loadCopies, len(deliveries), loadWorkers,
		counters.requests.Load(), counters.ok.Load(), counters.inProgress.Load(), counters.failed.Load(), counters.other.Load(), counters.exhausted.Load(),
		out(cofidis.OutcomeProcessed), out(cofidis.OutcomeDuplicate), out(cofidis.OutcomeInProgress), out(cofidis.OutcomeFailed), failures.Load(),
		out(cofidis.OutcomeStale), out(cofidis.OutcomeStoreFailed), out(cofidis.OutcomeUnrecorded),
		len(decisions)-lost-duplicated, lost, duplicated,
		elapsed.Round(time.Millisecond), float64(counters.requests.Load())/elapsed.Seconds(), float64(len(deliveries))/elapsed.Seconds())
	t.Log(figures)
	if testing.Verbose() {
		fmt.Println(figures)
	}

	if lost != 0 || duplicated != 0 {
		t.Errorf("business actions: %d lost, %d duplicated; want every one exactly once", lost, duplicated)
	}
	if n := counters.exhausted.Load(); n != 0 {
		t.Errorf("%d deliveries never got a 2xx", n)
	}
	if n := counters.other.Load(); n != 0 {
		t.Errorf("%d answers were neither 2xx, 500 nor 503", n)
	}
	wantChecks := []struct {
		name      string
		got, want int64
	}{
		{"processed", out(cofidis.OutcomeProcessed), int64(len(decisions))},
		{"duplicates acknowledged", out(cofidis.OutcomeDuplicate), int64(len(deliveries) - len(decisions))},
		{"failed attempts", out(cofidis.OutcomeFailed), failures.Load()},
		{"500 answers", counters.failed.Load(), failures.Load()},
		{"503 answers", counters.inProgress.Load(), out(cofidis.OutcomeInProgress)},
		{"2xx answers", counters.ok.Load(), int64(len(deliveries))},
		{"store failures", out(cofidis.OutcomeStoreFailed) + out(cofidis.OutcomeUnrecorded) + out(cofidis.OutcomeStale), 0},
	}
	for _, c := range wantChecks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if failures.Load() == 0 {
		t.Error("no callback failure was injected: the seed no longer exercises retries")
	}
}
