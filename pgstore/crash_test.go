package pgstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
	"github.com/cofidis-go/cofidis/pgstore"
)

// The crash test: replicas in processes of their own (this test binary,
// started again with replicaEnv set) serve a Router whose notification
// callback updates the order and records an effect in the same transaction
// as CompleteTx. They die at every dangerous point, by their own hand
// (os.Exit, nothing flushed, nothing deferred) or by SIGKILL from the
// test, and are restarted; the sender retries every delivery that did not
// get a 2xx on another replica. At the end, every decision must have
// exactly one effect row: none lost, none repeated.

// The replica's environment.
const (
	replicaEnv      = "PGSTORE_CRASH_REPLICA" // the schema of the shop's tables
	replicaPointEnv = "PGSTORE_CRASH_POINT"   // the deathPoint the replica dies at
	replicaAfterEnv = "PGSTORE_CRASH_AFTER"   // how many requests it serves before that
	replicaLeaseEnv = "PGSTORE_CRASH_LEASE"   // WithLease, as a time.Duration
)

// deathPoint is where a replica may die while serving a request.
type deathPoint int

const (
	diesOnArrival         deathPoint = iota // before the Router: nothing claimed
	diesBeforeTransaction                   // claimed, in the callback
	diesBeforeCompleteTx                    // order and effect written, not committed
	diesBeforeCommit                        // CompleteTx ran: the row is locked until the connection drops
	diesAfterCommit                         // done, but the Router never completes nor answers
	diesBeforeAnswer                        // completed by the Router, the 200 never sent
	deathPoints
)

// exitBase is added to a death point to make the replica's exit code.
const exitBase = 40

func (p deathPoint) String() string {
	return [...]string{
		"on arrival, before the claim",
		"claimed, before the transaction",
		"in the transaction, before CompleteTx",
		"after CompleteTx, before the commit",
		"after the commit, before the Router completes",
		"after the Router completed, before the answer is sent",
	}[p]
}

// deathKey is the context key of the point a request's replica dies at.
type deathKey struct{}

// die ends the process, at once, if ctx's request is to die at p.
func die(ctx context.Context, p deathPoint) {
	if at, ok := ctx.Value(deathKey{}).(deathPoint); ok && at == p {
		os.Exit(exitBase + int(p))
	}
}

// runReplica serves the shop on a loopback port, printed on the standard
// output, until it dies. It returns the exit code of a replica that could
// not start.
func runReplica() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "replica:", err)
		return 1
	}
	schema := os.Getenv(replicaEnv)
	point, err := strconv.Atoi(os.Getenv(replicaPointEnv))
	if err != nil {
		return fail(err)
	}
	after, err := strconv.ParseInt(os.Getenv(replicaAfterEnv), 10, 64)
	if err != nil {
		return fail(err)
	}
	lease, err := time.ParseDuration(os.Getenv(replicaLeaseEnv))
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(os.Getenv("PGSTORE_URL"))
	if err != nil {
		return fail(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	store, err := pgstore.New(pool, pgstore.Options{Schema: schema})
	if err != nil {
		return fail(err)
	}
	sh := &shop{
		pool: pool, store: store,
		orders:  pgx.Identifier{schema, "orders"}.Sanitize(),
		effects: pgx.Identifier{schema, "effects"}.Sanitize(),
	}
	urls, err := cofidis.NewURLs(crashBaseURL)
	if err != nil {
		return fail(err)
	}
	rt, err := cofidis.NewRouter(urls,
		func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
		sh.crashCallback,
		cofidis.WithIdempotency(store),
		cofidis.WithLease(lease),
		cofidis.WithStaleEvents(true), // a pending/signed after its to_confirm is still one action, run once
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	fmt.Println(ln.Addr())
	var served atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Past its quota, the first request to reach the replica's
			// death point ends it.
			if served.Add(1) > after {
				r = r.WithContext(context.WithValue(r.Context(), deathKey{}, deathPoint(point)))
			}
			die(r.Context(), diesOnArrival)
			rt.ServeHTTP(w, r)
			// The answer is still in the server's buffer: dying now sends
			// nothing.
			die(r.Context(), diesBeforeAnswer)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return fail(srv.Serve(ln))
}

// crashCallback is the replica's notification callback: the order moves
// forward to the event's status and one effect row records the action, in
// the transaction that completes the claim.
func (s *shop) crashCallback(ctx context.Context, ev cofidis.Event) error {
	die(ctx, diesBeforeTransaction)
	claim, ok := cofidis.ClaimFromContext(ctx)
	if !ok {
		return pgstore.ErrNoClaim
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `INSERT INTO `+s.orders+` AS o (id, status, rank) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, rank = excluded.rank WHERE o.rank < excluded.rank`,
		ev.TransactionKey.MerchantTransactionID, string(ev.Status), ev.Status.Rank())
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+s.effects+` (action_key, pid) VALUES ($1, $2)`, ev.ActionKey().String(), os.Getpid()); err != nil {
		return err
	}
	die(ctx, diesBeforeCompleteTx)
	if err := s.store.CompleteTx(ctx, tx, claim); err != nil {
		return err
	}
	die(ctx, diesBeforeCommit)
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	die(ctx, diesAfterCommit)
	return nil
}

// crashBaseURL is the base of the replicas' technicalData URLs; requests
// go to the same paths on each replica's loopback address.
const crashBaseURL = "https://shop.example/pay"

// The shape of the crash test.
const (
	crashDecisions = 1000 // at least
	crashReplicas  = 3
	crashSenders   = 24
	crashBlock     = 48 // transactions whose deliveries are shuffled together, so copies overlap
	crashLease     = time.Second
	crashLifetime  = 20  // requests a replica serves at least before it dies at its point…
	crashLifespan  = 120 // …and at most this many more
	crashKillEvery = 60  // deliveries between two SIGKILLs
	crashSeed      = 20260227
	crashBudget    = 100 * time.Second
)

// crashDelivery is one POST of a decision.
type crashDelivery struct {
	key      cofidis.TransactionKey
	endpoint cofidis.Endpoint
	status   cofidis.Status
	subState cofidis.SubState
}

// crashPlan is the decisions of the run, their deliveries, and each
// transaction's final status.
type crashPlan struct {
	decisions  map[string]bool // action keys (ActionKey().String())
	final      map[string]cofidis.Status
	deliveries []crashDelivery
}

// makeCrashPlan draws transactions until they hold at least n decisions:
// accepted (to_confirm three times, as Cofidis sends it), accepted after a
// pending check (pending/signed twice, then to_confirm three times) and
// refused (three times). Deliveries are shuffled within blocks of
// transactions, so a transaction's copies, and its pending and to_confirm,
// arrive in any order and often at once.
func makeCrashPlan(rng *rand.Rand, n int) crashPlan {
	p := crashPlan{decisions: map[string]bool{}, final: map[string]cofidis.Status{}}
	var block []crashDelivery
	flush := func() {
		rng.Shuffle(len(block), func(i, j int) { block[i], block[j] = block[j], block[i] })
		p.deliveries = append(p.deliveries, block...)
		block = block[:0]
	}
	add := func(d crashDelivery, copies ...cofidis.Endpoint) {
		for _, e := range copies {
			d.endpoint = e
			block = append(block, d)
		}
		ev := cofidis.Event{Callback: cofidis.Callback{TransactionKey: d.key, Status: d.status, SubState: d.subState}}
		p.decisions[ev.ActionKey().String()] = true
	}
	const (
		success = cofidis.EndpointNotificationSuccess
		pending = cofidis.EndpointNotificationPending
		other   = cofidis.EndpointNotificationOther
	)
	for txns := 0; len(p.decisions) < n; txns++ {
		key := cofidistest.NewKey(cofidistest.KeyOptions{Rand: rng})
		switch r := rng.IntN(10); {
		case r < 4:
			add(crashDelivery{key: key, status: cofidis.StatusToConfirm}, success, pending, success)
			p.final[key.MerchantTransactionID] = cofidis.StatusToConfirm
		case r < 7:
			add(crashDelivery{key: key, status: cofidis.StatusPending, subState: cofidis.SubStateSigned}, pending, pending)
			add(crashDelivery{key: key, status: cofidis.StatusToConfirm}, success, pending, success)
			p.final[key.MerchantTransactionID] = cofidis.StatusToConfirm
		default:
			add(crashDelivery{key: key, status: cofidis.StatusRefused}, other, pending, other)
			p.final[key.MerchantTransactionID] = cofidis.StatusRefused
		}
		if txns%crashBlock == crashBlock-1 {
			flush()
		}
	}
	flush()
	return p
}

// crashRun is what happened during the run.
type crashRun struct {
	requests, retries, transportErrors atomic.Int64
	answers                            sync.Map // status code → *atomic.Int64
	deaths                             [deathPoints]atomic.Int64
	sigkills, starts                   atomic.Int64
	generation                         atomic.Int64 // replica processes started
}

// nextPoint returns the death point of the next replica: the one fewest
// replicas died at so far, in turn among equals, so that every point is
// reached even when SIGKILL takes the replicas meant for one.
func (r *crashRun) nextPoint() deathPoint {
	gen := deathPoint(r.generation.Add(1) % int64(deathPoints))
	best := gen
	for i := range deathPoints {
		if p := (gen + i) % deathPoints; r.deaths[p].Load() < r.deaths[best].Load() {
			best = p
		}
	}
	return best
}

func (r *crashRun) answered(code int) {
	v, _ := r.answers.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// replica is one slot of the test's replicas: the process serving it now,
// replaced when it dies.
type replica struct {
	addr atomic.Pointer[string] // nil while no process serves
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// tailBuffer keeps the last bytes written to it: a replica's standard
// error.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 64<<10; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// supervise keeps a process serving slot until ctx ends, restarting it
// whenever it dies; it reports a replica that died in an unplanned way.
// Each process dies at a death point (nextPoint) after a random number of
// requests, unless the test kills it first.
func (rep *replica) supervise(ctx context.Context, t *testing.T, run *crashRun, env []string, rng *rand.Rand) {
	for ctx.Err() == nil {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(env[:len(env):len(env)], // a copy: the slots share env
			replicaPointEnv+"="+strconv.Itoa(int(run.nextPoint())),
			replicaAfterEnv+"="+strconv.Itoa(crashLifetime+rng.IntN(crashLifespan)))
		stderr := &tailBuffer{}
		cmd.Stderr = stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Errorf("replica: %v", err)
			return
		}
		if err := cmd.Start(); err != nil {
			t.Errorf("replica: %v", err)
			return
		}
		run.starts.Add(1)
		rep.mu.Lock()
		rep.cmd = cmd
		rep.mu.Unlock()
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err == nil {
			addr := "http://" + strings.TrimSpace(line)
			rep.addr.Store(&addr)
		}
		err = cmd.Wait()
		rep.addr.Store(nil)
		rep.mu.Lock()
		rep.cmd = nil
		rep.mu.Unlock()
		if strings.Contains(stderr.String(), "DATA RACE") {
			t.Errorf("a replica reported a data race:\n%s", stderr)
		}
		var exit *exec.ExitError
		switch {
		case ctx.Err() != nil: // stopped at the end
		case errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled():
			// Killed by the test; counted there.
		case errors.As(err, &exit) && exit.ExitCode() >= exitBase && exit.ExitCode() < exitBase+int(deathPoints):
			run.deaths[exit.ExitCode()-exitBase].Add(1)
		default:
			t.Errorf("a replica ended unplanned (%v):\n%s", err, stderr)
			return
		}
	}
}

// kill sends SIGKILL to the slot's process, if one runs.
func (rep *replica) kill() bool {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.cmd != nil && rep.cmd.Process.Kill() == nil
}

// killOne sends SIGKILL to a random replica if another one is serving.
func killOne(rng *rand.Rand, reps []*replica) bool {
	i := rng.IntN(len(reps))
	for j, rep := range reps {
		if j != i && rep.addr.Load() != nil {
			return reps[i].kill()
		}
	}
	return false
}

// nextLive returns the address of the first replica serving after slot,
// and its slot; it waits while none serves.
func nextLive(ctx context.Context, reps []*replica, slot int) (string, int, error) {
	for {
		for i := 1; i <= len(reps); i++ {
			s := (slot + i) % len(reps)
			if addr := reps[s].addr.Load(); addr != nil {
				return *addr, s, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// post sends d once, to the first replica serving after slot, and reports
// whether it was answered 2xx and the slot it went to.
func post(ctx context.Context, client *http.Client, reps []*replica, run *crashRun, d crashDelivery, slot int) (bool, int, error) {
	r := cofidistest.Request{Endpoint: d.endpoint, Key: d.key, Status: d.status, SubState: d.subState}
	urls, err := cofidis.NewURLs(crashBaseURL)
	if err != nil {
		return false, slot, err
	}
	u, err := url.Parse(r.URL(urls))
	if err != nil {
		return false, slot, err
	}
	addr, slot, err := nextLive(ctx, reps, slot)
	if err != nil {
		return false, slot, err
	}
	req, err := r.NewClientRequest(ctx, addr+u.RequestURI())
	if err != nil {
		return false, slot, err
	}
	run.requests.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, slot, ctx.Err()
		}
		run.transportErrors.Add(1)
		return false, slot, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	run.answered(resp.StatusCode)
	return resp.StatusCode >= 200 && resp.StatusCode < 300, slot, nil
}

func TestCrash_exactlyOnceAcrossKilledReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	pool := newPool(t)
	sh := newShop(t, pool, pgstore.Options{})
	schema := strings.Trim(strings.SplitN(sh.orders, ".", 2)[0], `"`)
	ctx := testContext(t)
	_, err := pool.Exec(ctx, `ALTER TABLE `+sh.orders+` ADD COLUMN rank integer NOT NULL DEFAULT 0`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ALTER TABLE `+sh.effects+` ADD COLUMN pid integer NOT NULL DEFAULT 0`)
	require.NoError(t, err)

	rng := rand.New(rand.NewPCG(crashSeed, crashSeed))
	plan := makeCrashPlan(rng, crashDecisions)
	run := &crashRun{}
	env := append(os.Environ(),
		replicaEnv+"="+schema,
		replicaLeaseEnv+"="+crashLease.String())

	runCtx, cancelRun := context.WithTimeout(context.Background(), crashBudget)
	defer cancelRun()
	superviseCtx, stopReplicas := context.WithCancel(context.Background())
	reps := make([]*replica, crashReplicas)
	var supervisors sync.WaitGroup
	for i := range reps {
		reps[i] = &replica{}
		rng := rand.New(rand.NewPCG(crashSeed, uint64(i)+2))
		supervisors.Go(func() { reps[i].supervise(superviseCtx, t, run, env, rng) })
	}
	defer func() {
		stopReplicas()
		for _, rep := range reps {
			rep.kill()
		}
		supervisors.Wait()
	}()

	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: crashSenders},
		// Above what a replica may take: a claim waiting on a row lock
		// (5s), then the callback within its lease.
		Timeout: 15 * time.Second,
	}
	defer client.CloseIdleConnections()
	// The senders: each delivery is posted until a replica answers 2xx.
	// One that fails goes back to the queue, after a pause, for the next
	// replica: the sender meanwhile posts others, as Cofidis would, rather
	// than wait for a dead replica's lease to end.
	start := time.Now()
	work := make(chan int, len(plan.deliveries)) // room for every delivery: sends never block
	for i := range plan.deliveries {
		work <- i
	}
	slots := make([]atomic.Int64, len(plan.deliveries))    // the replica each delivery went to last
	attempts := make([]atomic.Int64, len(plan.deliveries)) // its failed attempts
	var (
		pending   sync.WaitGroup // deliveries not answered 2xx yet
		delivered atomic.Int64
		errs      = make(chan error, crashSenders)
		killMu    sync.Mutex
		krng      = rand.New(rand.NewPCG(crashSeed, 1))
	)
	pending.Add(len(plan.deliveries))
	for range crashSenders {
		go func() {
			for {
				var i int
				select {
				case <-runCtx.Done():
					return
				case i = <-work:
				}
				ok, slot, err := post(runCtx, client, reps, run, plan.deliveries[i], int(slots[i].Load()))
				if err != nil {
					if runCtx.Err() == nil {
						errs <- err
					}
					return
				}
				if ok {
					pending.Done()
					// The killer: every crashKillEvery deliveries, SIGKILL
					// a replica, wherever it is, as long as another serves.
					if delivered.Add(1)%crashKillEvery == 0 {
						killMu.Lock()
						if killOne(krng, reps) {
							run.sigkills.Add(1)
						}
						killMu.Unlock()
					}
					continue
				}
				slots[i].Store(int64(slot))
				run.retries.Add(1)
				n := attempts[i].Add(1)
				time.AfterFunc(min(time.Duration(n)*20*time.Millisecond, 250*time.Millisecond), func() { work <- i })
			}
		}()
	}
	allDelivered := make(chan struct{})
	go func() {
		pending.Wait()
		close(allDelivered)
	}()
	select {
	case <-allDelivered:
	case <-runCtx.Done():
	case err := <-errs:
		t.Fatalf("sender: %v", err)
	}
	elapsed := time.Since(start)
	cancelRun() // the senders stop
	select {
	case <-allDelivered:
	default:
		t.Fatalf("the run exceeded its %v budget: %d of %d deliveries answered 2xx", crashBudget, delivered.Load(), len(plan.deliveries))
	}

	// Every decision's effect, exactly once.
	ctx = testContext(t) // the run may have taken most of the first one
	rows, err := pool.Query(ctx, `SELECT action_key, count(*) FROM `+sh.effects+` GROUP BY action_key`)
	require.NoError(t, err)
	counts := map[string]int{}
	for rows.Next() {
		var (
			k string
			n int
		)
		require.NoError(t, rows.Scan(&k, &n))
		counts[k] = n
	}
	require.NoError(t, rows.Err())
	var lost, duplicated, once []string
	for k := range plan.decisions {
		switch n := counts[k]; n {
		case 0:
			lost = append(lost, k)
		case 1:
			once = append(once, k)
		default:
			duplicated = append(duplicated, fmt.Sprintf("%s ×%d", k, n))
		}
		delete(counts, k)
	}
	// Every order at its final status.
	wrongOrders := 0
	orders, err := pool.Query(ctx, `SELECT id, status FROM `+sh.orders)
	require.NoError(t, err)
	seen := 0
	for orders.Next() {
		var id, st string
		require.NoError(t, orders.Scan(&id, &st))
		seen++
		if plan.final[id] != cofidis.Status(st) {
			wrongOrders++
		}
	}
	require.NoError(t, orders.Err())

	var deaths []string
	var selfKills int64
	for p := range deathPoints {
		n := run.deaths[p].Load()
		selfKills += n
		deaths = append(deaths, fmt.Sprintf("%s %d", p, n))
	}
	var answers []string
	run.answers.Range(func(k, v any) bool {
		answers = append(answers, fmt.Sprintf("%d: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(answers)
	figures := fmt.Sprintf("crash test: %d decisions (%d transactions), %d deliveries, %d replicas, %d senders, lease %v\n"+
		"  kills: %d (%d SIGKILL at random moments, %d exits at a chosen point: %s); %d replica starts\n"+
		"  HTTP requests %d (%s; transport errors %d), retries %d\n"+
		"  effects: %d exactly once, %d lost, %d duplicated; orders at their final status %d of %d\n"+
		"  elapsed %v",
		len(plan.decisions), len(plan.final), len(plan.deliveries), crashReplicas, crashSenders, crashLease,
		run.sigkills.Load()+selfKills, run.sigkills.Load(), selfKills, strings.Join(deaths, ", "), run.starts.Load(),
		run.requests.Load(), strings.Join(answers, ", "), run.transportErrors.Load(), run.retries.Load(),
		len(once), len(lost), len(duplicated), seen-wrongOrders, len(plan.final),
		elapsed.Round(time.Millisecond))
	t.Log(figures)

	if len(lost) > 0 {
		t.Errorf("%d decisions lost (answered 2xx without their effect), such as %q", len(lost), lost[:min(len(lost), 5)])
	}
	if len(duplicated) > 0 {
		t.Errorf("%d decisions repeated, such as %q", len(duplicated), duplicated[:min(len(duplicated), 5)])
	}
	if len(counts) > 0 {
		t.Errorf("effects of %d actions that were never sent", len(counts))
	}
	if wrongOrders > 0 || seen != len(plan.final) {
		t.Errorf("orders: %d of %d at their final status, %d wrong", seen-wrongOrders, len(plan.final), wrongOrders)
	}
	for p := range deathPoints {
		if run.deaths[p].Load() == 0 {
			t.Errorf("no replica died %s: the run no longer exercises it", p)
		}
	}
	if run.sigkills.Load() == 0 {
		t.Error("no replica was killed with SIGKILL")
	}
}
