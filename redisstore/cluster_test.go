package redisstore_test

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/redisstore"
	"github.com/cofidis-go/cofidis/storetest"
)

// The cluster tests run against a Redis Cluster named by
// REDIS_CLUSTER_ADDRS (comma-separated host:port seeds), such as the one
// .ci/steps/71-redis-cluster.sh starts on loopback. Two flags (after -args)
// serve to measure what the package documentation reports.
var (
	clusterClient = flag.String("cluster.client", "recommended",
		"ClusterOptions of the cluster tests' clients: recommended (as in ExampleNew_cluster), "+
			"reload (go-redis defaults but for a 1s ClusterStateReloadInterval) or defaults (go-redis defaults)")
	clusterFailure = flag.String("cluster.failure", "exit",
		"how TestCluster_failover takes a master down: exit (SHUTDOWN NOSAVE: the process exits once its replica "+
			"has caught up) or hang (DEBUG SLEEP 30: it stops answering; needs enable-debug-command)")
)

// clusterSettings are the values -cluster.client accepts.
var clusterSettings = map[string]func(*redis.ClusterOptions){
	// Keep in step with ExampleNew_cluster and the package documentation.
	"recommended": func(o *redis.ClusterOptions) {
		o.ClusterStateReloadInterval = time.Second
		o.DialTimeout = time.Second
		o.ReadTimeout = time.Second
		o.WriteTimeout = time.Second
		o.ContextTimeoutEnabled = true
	},
	"reload": func(o *redis.ClusterOptions) {
		o.ClusterStateReloadInterval = time.Second
	},
	"defaults": func(*redis.ClusterOptions) {},
}

// clusterAddrs returns the seeds in REDIS_CLUSTER_ADDRS. Without them the
// test is skipped, except in CI (CI set), where it fails: a green CI must
// have run these.
func clusterAddrs(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("REDIS_CLUSTER_ADDRS")
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Redis Cluster in CI: REDIS_CLUSTER_ADDRS is not set (.ci/steps/71-redis-cluster.sh sets it)")
		}
		t.Skip("no Redis Cluster: set REDIS_CLUSTER_ADDRS to host:port,host:port,… (.ci/steps/71-redis-cluster.sh starts one)")
	}
	return strings.Split(v, ",")
}

// newClusterClient connects to the test cluster with the -cluster.client
// settings (and then opts), and checks that every shard answers.
func newClusterClient(t testing.TB, opts ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	t.Helper()
	o := &redis.ClusterOptions{Addrs: clusterAddrs(t)}
	settings, ok := clusterSettings[*clusterClient]
	if !ok {
		t.Fatalf("-cluster.client %q: want recommended, reload or defaults", *clusterClient)
	}
	settings(o)
	for _, f := range opts {
		f(o)
	}
	rdb := redis.NewClusterClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rdb.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
	if err == nil {
		var info string
		info, err = rdb.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = fmt.Errorf("CLUSTER INFO: %.40q…, want cluster_state:ok", info)
		}
	}
	if err != nil {
		t.Fatalf("Redis Cluster at %s (REDIS_CLUSTER_ADDRS): %v", strings.Join(o.Addrs, ","), err)
	}
	return rdb
}

// nodeClient connects to one node of the cluster, for administration.
func nodeClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// transactionKey is what the store keys a transaction of the harness's
// merchant by (see the package documentation).
func transactionKey(prefix, merchantTxn string) string {
	id := cofidis.TransactionID{MerchantID: "020280098", MerchantTransactionID: merchantTxn, MerchantTransactionDate: "20260227"}
	return prefix + "{" + id.String() + "}:t"
}

// masterOf returns the address of the master rdb currently routes key to.
func masterOf(ctx context.Context, t testing.TB, rdb *redis.ClusterClient, key string) string {
	t.Helper()
	c, err := rdb.MasterForKey(ctx, key)
	if err != nil {
		t.Fatalf("MasterForKey(%q): %v", key, err)
	}
	return c.Options().Addr
}

// transactionOn returns a merchantTransactionId whose keys live on master.
func transactionOn(ctx context.Context, t testing.TB, rdb *redis.ClusterClient, prefix, master string) string {
	t.Helper()
	for range 10_000 {
		txn := rand.Text()[:12]
		if masterOf(ctx, t, rdb, transactionKey(prefix, txn)) == master {
			return txn
		}
	}
	t.Fatalf("no transaction hashes to %s", master)
	return ""
}

// shards returns the cluster's shards that serve slots, each as its
// master's address and its replicas' (a node that failed is neither).
func shards(ctx context.Context, t testing.TB, rdb *redis.ClusterClient) map[string][]string {
	t.Helper()
	list, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, sh := range list {
		var master string
		var replicas []string
		for _, n := range sh.Nodes {
			addr := net.JoinHostPort(n.Endpoint, strconv.FormatInt(n.Port, 10))
			switch {
			case n.Health != "online":
			case n.Role == "master":
				master = addr
			default:
				replicas = append(replicas, addr)
			}
		}
		if master != "" && len(sh.Slots) > 0 {
			out[master] = replicas
		}
	}
	return out
}

// masters lists the addresses of the masters serving slots, sorted.
func masters(ctx context.Context, t testing.TB, rdb *redis.ClusterClient) []string {
	t.Helper()
	return slices.Sorted(maps.Keys(shards(ctx, t, rdb)))
}

func TestCluster_contract(t *testing.T) {
	rdb := newClusterClient(t)
	storetest.Run(t, func(t *testing.T) cofidis.Store { return newStore(t, rdb, redisstore.Options{}) })
}

// Each transaction is a hash tag of its own, so transactions spread over
// every master while a transaction's keys stay in one slot (the scripts
// would fail with CROSSSLOT otherwise).
func TestCluster_keysSpreadOverEveryMaster(t *testing.T) {
	const transactions = 300
	rdb := newClusterClient(t)
	prefix := uniquePrefix()
	s := newStore(t, rdb, redisstore.Options{Prefix: prefix, TTL: 10 * time.Minute})
	ctx := context.Background()
	for range transactions {
		k := actionKey(cofidis.StatusToConfirm)
		res, err := s.Claim(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, k, res.Token); err != nil {
			t.Fatal(err)
		}
	}
	perMaster := map[string]int{}
	var mu sync.Mutex
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, prefix+"*").Result()
		mu.Lock()
		defer mu.Unlock()
		perMaster[c.Options().Addr] = len(keys)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range perMaster {
		total += n
	}
	if total != 2*transactions {
		t.Fatalf("%d keys under the prefix, want %d (an action and a transaction each)", total, 2*transactions)
	}
	// Binomial(300, 1/3) per master: below a sixth is 6 standard
	// deviations away; one master holding everything is the bug this
	// catches.
	for _, m := range masters(ctx, t, rdb) {
		if n := perMaster[m]; n < total/(2*len(perMaster)) {
			t.Errorf("master %s holds %d of %d keys: %v", m, n, total, perMaster)
		}
	}
}

// nodeCounter counts the commands a cluster client sends to its nodes,
// that is the network round trips, by node and command name.
type nodeCounter struct {
	mu sync.Mutex
	n  map[nodeCommand]int64
}

// nodeCommand is a command's name, lower-cased, and the node it went to.
type nodeCommand struct{ node, name string }

func newNodeCounter() *nodeCounter { return &nodeCounter{n: map[nodeCommand]int64{}} }

// counting makes a cluster client count its commands with c.
func (c *nodeCounter) counting(o *redis.ClusterOptions) {
	o.NewClient = func(opt *redis.Options) *redis.Client {
		node := redis.NewClient(opt)
		node.AddHook(nodeHook{c, opt.Addr})
		return node
	}
}

// take returns the counts since the last call and resets them.
func (c *nodeCounter) take() map[nodeCommand]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[nodeCommand]int64{}
	return n
}

// nodeHook counts one node's commands.
type nodeHook struct {
	c    *nodeCounter
	node string
}

func (h nodeHook) add(name string) {
	h.c.mu.Lock()
	h.c.n[nodeCommand{h.node, strings.ToLower(name)}]++
	h.c.mu.Unlock()
}

func (h nodeHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h nodeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd.Name())
		return next(ctx, cmd)
	}
}
func (h nodeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.add("pipeline")
		return next(ctx, cmds)
	}
}

// roundTrips sums counts, leaving out the cluster view's refreshes (CLUSTER
// SLOTS), which the client sends in the background, unless all is set.
func roundTrips(counts map[nodeCommand]int64, all bool) int64 {
	var n int64
	for cmd, c := range counts {
		if all || cmd.name != "cluster" {
			n += c
		}
	}
	return n
}

func TestCluster_roundTrips(t *testing.T) {
	counter := newNodeCounter()
	rdb := newClusterClient(t, counter.counting, func(o *redis.ClusterOptions) { o.PoolSize = 1 })
	prefix := uniquePrefix()
	h := newDeliveryHandlers(t, newStore(t, rdb, redisstore.Options{Prefix: prefix}))
	ctx := context.Background()
	// Load the scripts on every master (EVALSHA falls back to EVAL once
	// per script and node) and open the connections.
	for _, m := range masters(ctx, t, rdb) {
		warm := transactionOn(ctx, t, rdb, prefix, m)
		h.post(t, h.notify, warm)
		h.post(t, h.notify, warm)
		h.post(t, h.redirect, warm)
	}
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
		counter.take()
		if code := h.post(t, tt.h, txn); code != http.StatusOK {
			t.Fatalf("%s: answered %d", tt.name, code)
		}
		if got := counter.take(); roundTrips(got, false) != tt.want {
			t.Errorf("%s: %d round trips %v, want %d", tt.name, roundTrips(got, false), got, tt.want)
		}
	}
}

// ReadOnly, RouteByLatency and RouteRandomly send commands flagged
// read-only to replicas, which lag behind their master. The store's scripts
// (EVALSHA, EVAL) are not so flagged and go to the master all the same: the
// package documentation relies on it.
func TestCluster_scriptsRunOnMasters(t *testing.T) {
	tests := []struct {
		name string
		set  func(*redis.ClusterOptions)
		// readsOnReplicas: reads are sure to reach replicas (the closest
		// node may be the master itself).
		readsOnReplicas bool
	}{
		{"ReadOnly", func(o *redis.ClusterOptions) { o.ReadOnly = true }, true},
		{"RouteByLatency", func(o *redis.ClusterOptions) { o.RouteByLatency = true }, false},
		{"RouteRandomly", func(o *redis.ClusterOptions) { o.RouteRandomly = true }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := newNodeCounter()
			rdb := newClusterClient(t, counter.counting, tt.set)
			s := newStore(t, rdb, redisstore.Options{})
			ctx := context.Background()
			for range 30 {
				k := actionKey(cofidis.StatusToConfirm)
				if _, err := s.Peek(ctx, k); err != nil {
					t.Fatal(err)
				}
				res, err := s.Claim(ctx, k, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Complete(ctx, k, res.Token); err != nil {
					t.Fatal(err)
				}
				// A command flagged read-only, to see the setting at work.
				if err := rdb.Exists(ctx, transactionKey("cofidistest:", rand.Text())).Err(); err != nil {
					t.Fatal(err)
				}
			}
			primaries := masters(ctx, t, rdb)
			scripts, reads := 0, 0
			for cmd, n := range counter.take() {
				onMaster := slices.Contains(primaries, cmd.node)
				switch {
				case (cmd.name == "evalsha" || cmd.name == "eval") && !onMaster:
					t.Errorf("%d %s sent to %s, a replica", n, strings.ToUpper(cmd.name), cmd.node)
				case cmd.name == "evalsha" || cmd.name == "eval":
					scripts += int(n)
				case cmd.name == "exists" && !onMaster:
					reads += int(n)
				}
			}
			if scripts < 90 {
				t.Errorf("%d scripts counted on the masters, want at least 90", scripts)
			}
			if reads == 0 && tt.readsOnReplicas {
				t.Errorf("no EXISTS went to a replica: %s had no effect, and the test shows nothing", tt.name)
			}
		})
	}
}

// Two replicas, each with its own cluster client, deduplicate concurrent
// deliveries: every decision's action runs exactly once.
func TestCluster_exactlyOnceAcrossTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	stores := clusterStores(t, uniquePrefix())
	r := runLoad(t, stores, loadConfig{
		decisions:   3_000,
		failRate:    0.05,
		maxAttempts: 50,
		maxBackoff:  20 * time.Millisecond,
		budget:      120 * time.Second,
	})
	r.report(t, "load test, Redis Cluster")
	r.checkExactlyOnce(t)
}

// clusterStores returns one store per replica, each on its own cluster
// client, sharing prefix.
func clusterStores(t *testing.T, prefix string) [loadReplicas]cofidis.Store {
	t.Helper()
	var stores [loadReplicas]cofidis.Store
	for i := range stores {
		stores[i] = newStore(t, newClusterClient(t), redisstore.Options{Prefix: prefix, TTL: 10 * time.Minute})
	}
	return stores
}

// failoverTarget is a master to take down and the replica that will take
// over its slots.
type failoverTarget struct {
	master, replica string
}

// pickFailoverTarget returns the first master (by address) whose replica
// is in sync, waiting for one if needed.
func pickFailoverTarget(ctx context.Context, t *testing.T, rdb *redis.ClusterClient) failoverTarget {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var candidates []failoverTarget
		for master, replicas := range shards(ctx, t, rdb) {
			for _, r := range replicas {
				candidates = append(candidates, failoverTarget{master: master, replica: r})
			}
		}
		slices.SortFunc(candidates, func(a, b failoverTarget) int { return strings.Compare(a.master+a.replica, b.master+b.replica) })
		for _, c := range candidates {
			info, err := nodeClient(t, c.replica).Info(ctx, "replication").Result()
			if err == nil && strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0") {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no master has a replica in sync (%d candidates): a failover would lose its slots; "+
				"start a fresh cluster (.ci/steps/71-redis-cluster.sh)", len(candidates))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// takeDown makes the master at c unavailable the -cluster.failure way.
func takeDown(ctx context.Context, c *redis.Client) error {
	switch *clusterFailure {
	case "exit":
		// Not NOW: the master first waits for its replica to have every
		// write it acknowledged (up to shutdown-timeout, 10s), so that the
		// test sees the failover, not Redis' asynchronous replication (see
		// the package documentation).
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		patient := redis.NewClient(&redis.Options{Addr: c.Options().Addr, MaxRetries: -1, ReadTimeout: -1})
		defer patient.Close()
		return patient.ShutdownNoSave(ctx).Err()
	case "hang":
		// DEBUG SLEEP answers when it ends: send it, do not wait.
		sleeper := redis.NewClient(&redis.Options{Addr: c.Options().Addr, MaxRetries: -1, ReadTimeout: -1})
		go func() {
			defer sleeper.Close()
			_ = sleeper.Do(context.Background(), "debug", "sleep", "30").Err()
		}()
		for c.Ping(ctx).Err() == nil {
			time.Sleep(5 * time.Millisecond) // until the sleep has begun
		}
		return nil
	}
	return fmt.Errorf("-cluster.failure %q: want exit or hang", *clusterFailure)
}

// waitUntil calls ok every 20ms until it reports true, and returns how long
// after since that was; it gives up, returning -1, at deadline.
func waitUntil(since, deadline time.Time, ok func() bool) time.Duration {
	for !ok() {
		if time.Now().After(deadline) {
			return -1
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(since)
}

// redisLog is go-redis' logger in these tests: it counts the failed dials
// that a failover makes by the hundred instead of printing them.
type redisLog struct{ dialFailures atomic.Int64 }

var redisLogs redisLog

func init() { redis.SetLogger(&redisLogs) } // before any client exists: go-redis reads it unguarded

func (l *redisLog) Printf(_ context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "failed to dial") {
		l.dialFailures.Add(1)
		return
	}
	fmt.Fprintln(os.Stderr, "redis:", msg)
}

// A master goes down while two replicas receive deliveries, retried until
// 2xx as Cofidis does, with a few callbacks running on its slots. Its
// replica takes over (a real failover, elected by the other masters after
// cluster-node-timeout); the clients find it when they next refresh their
// view of the cluster. Meanwhile claims on its slots fail (503, retried),
// and so do the completions of the callbacks that were running: the
// Router retries them until the lease ends. One that fails until then is
// acknowledged and logged as unrecorded, and a later copy of the decision
// may run the action again, as WithIdempotency documents. The test checks
// that no decision is lost and that every duplicate action is one of
// those; with the default lease there are none.
//
// With -cluster.failure exit the master stays down: a cluster survives as
// many runs as it has masters with a replica.
func TestCluster_failover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover test skipped in -short mode")
	}
	const (
		budget = 4 * time.Minute // the default lease, and the failover
		parked = 4               // callbacks on the master's slots held across its fall
	)
	ctx := context.Background()
	admin := newClusterClient(t)
	target := pickFailoverTarget(ctx, t, admin)
	master, replica := nodeClient(t, target.master), nodeClient(t, target.replica)
	prefix := uniquePrefix()
	stores := clusterStores(t, prefix)
	// A key on the master going down, to time when each replica's client
	// reaches its successor.
	probeKey := cofidis.ActionKey{
		Transaction: cofidis.TransactionID{
			MerchantID: "020280098", MerchantTransactionID: transactionOn(ctx, t, admin, prefix, target.master),
			MerchantTransactionDate: "20260227",
		}.String(),
		Action: "probe",
	}

	var (
		gateMu     sync.Mutex
		gate       chan struct{} // non-nil while callbacks on the master's slots wait at it
		waiting    atomic.Int32
		down       time.Time
		downErr    error
		promoted   time.Duration
		recovered  [loadReplicas]time.Duration
		probeFails atomic.Int64
		dials      = redisLogs.dialFailures.Load()
	)
	cfg := loadConfig{
		decisions:   3_000,
		failRate:    0.05,
		maxAttempts: 1 << 30, // bounded by the budget
		maxBackoff:  50 * time.Millisecond,
		budget:      budget,
		midwayAt:    0.25,
	}
	r := newLoad(cfg)
	onMaster := make([]bool, len(r.decisions)) // the decision's keys are on the master going down
	for i, d := range r.decisions {
		onMaster[i] = masterOf(ctx, t, admin, transactionKey(prefix, d.txn)) == target.master
	}
	r.cfg.beforeAction = func(i int) {
		gateMu.Lock()
		g := gate
		gateMu.Unlock()
		if g != nil && onMaster[i] {
			waiting.Add(1)
			<-g
		}
	}
	r.cfg.midway = func() {
		g := make(chan struct{})
		gateMu.Lock()
		gate = g
		gateMu.Unlock()
		// Hold a few callbacks that claimed on the master's slots, so
		// that they complete after it went down.
		waitUntil(time.Now(), time.Now().Add(30*time.Second), func() bool { return waiting.Load() >= parked })
		down = time.Now()
		downErr = takeDown(ctx, master)
		gateMu.Lock()
		gate = nil
		gateMu.Unlock()
		close(g)

		deadline := down.Add(budget)
		var wg sync.WaitGroup
		wg.Go(func() {
			promoted = waitUntil(down, deadline, func() bool {
				role, err := replica.Do(ctx, "role").Slice()
				return err == nil && len(role) > 0 && role[0] == "master"
			})
		})
		for i, s := range stores {
			wg.Go(func() {
				recovered[i] = waitUntil(down, deadline, func() bool {
					ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // as the Router bounds a store call
					defer cancel()
					_, err := s.Peek(ctx, probeKey)
					if err != nil {
						probeFails.Add(1)
					}
					return err == nil
				})
			})
		}
		wg.Wait()
	}
	r.run(t, stores)
	r.report(t, "failover test")
	if downErr != nil {
		t.Fatalf("taking %s down: %v", target.master, downErr)
	}

	onIt, duplicated, unrecorded := 0, 0, 0
	for i := range r.decisions {
		n, u := r.actions[i].Load(), r.unrecorded[i].Load()
		if onMaster[i] {
			onIt++
		}
		if n > 1 {
			duplicated++
		}
		unrecorded += int(u)
		if n > 1+u {
			t.Errorf("decision %s: action ran %d times, with %d unrecorded completions: a duplicate the library does not explain",
				r.decisions[i].txn, n, u)
		}
	}
	t.Logf("failover (-cluster.client %s, -cluster.failure %s): master %s down with %d callbacks on its slots running, "+
		"replica %s promoted after %v; store calls on its slots succeeded again after %v and %v "+
		"(the two replicas' clients; %d probe failures, %d failed dials logged)\n"+
		"  %d of %d decisions on its slots; %d claims failed; %d completions unrecorded; %d decisions' actions ran twice",
		*clusterClient, *clusterFailure, target.master, waiting.Load(),
		target.replica, promoted.Round(time.Millisecond), recovered[0].Round(time.Millisecond), recovered[1].Round(time.Millisecond),
		probeFails.Load(), redisLogs.dialFailures.Load()-dials,
		onIt, len(r.decisions), r.outcome(cofidis.OutcomeStoreFailed), unrecorded, duplicated)

	if promoted < 0 {
		t.Fatalf("replica %s was not promoted within %v", target.replica, budget)
	}
	for i, d := range recovered {
		if d < 0 {
			t.Errorf("replica %d's client never reached the promoted master", i)
		}
	}
	if n := waiting.Load(); n < parked {
		t.Errorf("%d callbacks were running on the master's slots when it went down, want %d", n, parked)
	}
	r.checkDelivered(t)
}

// TestReconciliation_atScale on the cluster: two replicas, each with its
// own cluster client, reconcile 10,000 transactions at once
// (reconcileAtScale). The due list's two keys are in the slot of their
// {tracker} hash tag, on one master, while the claims of the transactions
// spread over every master.
func TestCluster_reconciliation(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	const n = 10_000
	admin := newClusterClient(t)
	var onMaster map[string][]string // the keys of the due list, by master
	run := reconcileAtScale(t, n, [2]redis.UniversalClient{newClusterClient(t), newClusterClient(t)}, admin, func(sh *shop) {
		onMaster = map[string][]string{}
		var mu sync.Mutex
		err := admin.ForEachMaster(sh.ctx, func(ctx context.Context, c *redis.Client) error {
			keys, err := c.Keys(ctx, sh.prefix+"{tracker}*").Result()
			if len(keys) > 0 {
				slices.Sort(keys)
				mu.Lock()
				onMaster[c.Options().Addr] = keys
				mu.Unlock()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		zset, hash := sh.tracker()
		want := masterOf(sh.ctx, t, admin, zset)
		if len(onMaster) != 1 || !slices.Equal(onMaster[want], []string{zset, hash}) {
			t.Fatalf("the due list's keys by master: %v; want %q and %q on %s, the master of their slot", onMaster, zset, hash, want)
		}
	})
	slot, err := admin.ClusterKeySlot(context.Background(), trackerKeys("")[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	run.logf(t, "reconciliation, Redis Cluster", fmt.Sprintf("\n  the due list on %s (slot %d)", slices.Collect(maps.Keys(onMaster)), slot))
}
