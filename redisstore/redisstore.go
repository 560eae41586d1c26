// Package redisstore is a cofidis.Store kept in Redis, for receivers that run
// as several replicas: every replica shares what was claimed and completed,
// so each decision reaches the merchant's callback once across processes.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	store, err := redisstore.New(rdb, redisstore.Options{})
//	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification, cofidis.WithIdempotency(store))
//
// Each operation is one Lua script, so atomic and one round trip: a delivery
// costs two (Claim, then Complete or Release), a redirect one (Peek). Scripts
// run with EVALSHA and fall back to EVAL when the server does not know them.
// Claims' leases are timed by the Redis server's clock, so replicas' clocks
// need not agree. Every key of the claims carries a TTL (Options.TTL); the
// due list of reconciliation has none (see Reconciliation).
//
// Keys are "<prefix>{<transaction>}:a:<action>" (a hash: state, token, lease
// end) and "<prefix>{<transaction>}:t" (a hash: the furthest rank and
// status). The braces are a hash tag: a Redis Cluster puts both keys of a
// transaction in the same slot, as scripts require, and spreads the
// transactions over its masters; hence no braces in Options.Prefix. The due
// list of reconciliation is two more keys, "<prefix>{tracker}:due" and
// "<prefix>{tracker}:tracked" (see Reconciliation). Requires Redis 5 or
// later (scripts call TIME).
//
// # Reconciliation
//
// Store implements cofidis.Tracker, so that it keeps the due list of
// cofidis.WithReconciliation for every replica, in two keys per store:
//
//   - "<prefix>{tracker}:due", a sorted set: each tracked transaction
//     (its identity, cofidis.TransactionID's String) scored by when it is
//     next due, in Unix milliseconds;
//   - "<prefix>{tracker}:tracked", a hash from the same identity to a JSON
//     record: {"attempts":1,"token":"…","since":1772186400000,"key":{…}},
//     the key as json.Marshal wrote it, so that it comes back exactly (an
//     absent, null or empty providerTransactionId stays so).
//
// Each method is one script, so atomic and one round trip. Track adds the
// transaction to both unless it is tracked already. TakeDue takes up to
// limit members scored at now or before, earliest first, gives each a new
// token, and moves its score to now+lease: another replica takes it over
// then, unless Reschedule (a new score, the attempts, no token) or Untrack
// (removed from both) settle it first, which they do only with the token
// of the take, else cofidis.ErrLeaseLost. TakeDue returns each transaction
// with the score that made it due. The scripts rewrite a record's attempts
// and token in place, without decoding the rest: a record edited by hand
// out of that shape, or missing for a member of the sorted set, fails
// TakeDue loudly, naming the transaction, until it is repaired or removed
// from both keys (a record whose key no longer parses is found after the
// take: the transactions taken with it wait for the lease).
//
// TakeDue's tokens: the call sends one random value (crypto/rand, as for
// the claims' tokens) and the script appends each transaction's rank in
// the take ("<random>.3"): unique, unguessable, and one argument whatever
// the limit. The script could not draw them itself: math.random in a Redis
// script is seeded alike at every run, to keep scripts deterministic.
//
// Unlike the claims, the Tracker's times are the caller's: the now given
// to TakeDue and the times in Tracked, from the Router's clock
// (cofidis.WithClock), which tests fake to skip the 50 minutes. They are
// kept to the millisecond (finer digits are truncated) and read back in
// UTC. A take's lease is therefore judged by the replicas' clocks: one
// whose clock runs d ahead takes a transaction over d early. The Router's
// lease of a take is the verify timeout plus the claims' lease plus 30s;
// keep the replicas' clocks well within that of each other (NTP does).
//
// The due list has no TTL. A transaction stays tracked until the Router
// untracks it: once its decision is delivered or found recorded, a day
// after the first check if Cofidis still reports the journey running, or
// after cofidis.ReconcileOptions.MaxTracking (30 days by default) if it
// reports pending; a failing check is retried, never dropped. No TTL could
// serve: Redis expires whole keys (a hash's fields only from 7.4, a sorted
// set's members never), so a TTL on the due list would be refreshed by
// every Track and bound nothing, and would drop every tracked transaction
// after a quiet spell. Memory is the transactions tracked, about 450
// bytes each with keys like the documentation's example (MEMORY USAGE of
// both keys, 10,000 tracked). With maxmemory, keep the noeviction policy
// or a volatile-* one, which evicts only keys with a TTL: an allkeys-*
// policy may evict the due list, and with it every tracked transaction.
// To stop reconciling for good, delete the two keys.
//
// Round trips: Track is one per transaction. ReconcileDue takes due
// transactions as its slots free up (ReconcileOptions.Concurrency, 4 by
// default), one TakeDue for each take of one to Concurrency transactions;
// then, per transaction, come the Router's Peek and an Untrack or
// Reschedule, with a Claim and a Complete between when a status is
// delivered: 2 for a transaction whose outcome was recorded (settled
// without getStatus) or that Cofidis reports still running, 4 for one
// whose status is delivered (TestRoundTrips_perReconciledTransaction).
//
// Measured by TestReconciliation_atScale on one redis-server (7.0, on
// loopback, two cores shared with the test): 10,000 tracked transactions,
// 2,921 of them with every callback lost, two replicas with a client each
// reconciling at once. Every decision reached the callback exactly once,
// getStatus was called 2,921 times, once for each lost transaction, and
// the other 7,079 were settled without it. The two passes took 1.8–2.1s
// together (4,700–5,500 transactions/s; 3.8–4.1s under the race
// detector), in 3.3–3.4 round trips per transaction, TakeDue taking 1.25
// to 1.4 transactions a call.
//
// # Redis Cluster
//
// Pass a *redis.ClusterClient (see ExampleNew_cluster). The store needs
// nothing more; what matters is how soon the client finds a master's
// successor when the master fails. The cluster elects a replica in its
// place after cluster-node-timeout; the client must then notice. Measured
// with go-redis v9.22.0 on a loopback cluster of three masters and three
// replicas (Redis 7.0, cluster-node-timeout 2s) while two Routers took
// deliveries (TestCluster_failover), over several runs and both Routers'
// clients: the time from the replica's promotion (3.1–5.3s after the
// failure) to the first store call that succeeded again on the failed
// master's slots.
//
//	the master's process…        go-redis defaults               1s reload only   recommended
//	exits (SHUTDOWN NOSAVE)      +53.7–56.2s (58–60s in all)     +0.2–0.8s        +0.1–1.1s
//	hangs (DEBUG SLEEP 30)       +26.1–26.5s (until it woke up)  +1.6–6.8s        +0.1–4.4s
//
// With Redis' default cluster-node-timeout (15s), the promotion took 17.9s
// and the recommended client followed 0.4s later.
//
// The settings, in go-redis' ClusterOptions:
//
//   - ClusterStateReloadInterval: 1s (default 60s). The client sends each
//     command to the master its view of the cluster (CLUSTER SLOTS) names
//     for the key's slot. It refreshes that view when a node answers MOVED,
//     ASK or READONLY, and once it is older than this interval: lazily, the
//     first command after that starts a reload in the background, from a
//     random known node. A master that died answers nothing, so nothing
//     prompts a refresh: with the default, the clients kept dialling it
//     until their view was 60s old, long after its replica had taken over.
//     The cost is one CLUSTER SLOTS per client and second of use.
//   - ReadTimeout and WriteTimeout: 1s (default 5s), with
//     ContextTimeoutEnabled: true (default false). The Router bounds every
//     store call (at 5s today), but without ContextTimeoutEnabled go-redis
//     holds the socket to its own timeouts, not to the caller's deadline,
//     and every attempt of a command waits ReadTimeout on a node that
//     hangs: after a hang, the clients took +1.6–6.8s to move on with the
//     reload alone, +0.1–4.4s with these settings (above). The scripts run
//     in microseconds, so 1s leaves room for retries within the Router's
//     bound.
//   - DialTimeout: 1s (default 5s), for the same reason, when a host is gone
//     without refusing connections (not measured: on loopback a dead port
//     refuses at once).
//   - MaxRedirects: keep the default, 3. It bounds the attempts of one
//     command, on MOVED or ASK and on network errors alike: more buys
//     nothing within the Router's bound, and -1 (none) would turn every slot
//     migration into failed store calls.
//   - ReadOnly, RouteByLatency and RouteRandomly: keep them off (the
//     default). They send commands flagged read-only to replicas, which lag
//     behind their master, and a store must read its own writes. The
//     store's scripts are not so flagged, and go-redis v9.22.0 sends them to
//     the master whatever these say (TestCluster_scriptsRunOnMasters), so a
//     client shared with code that wants replica reads still serves the
//     store; do not count on that across go-redis versions.
//
// # The due list on a Redis Cluster
//
// The due list is in one slot, on one master: its two keys share the hash
// tag {tracker}, whatever the prefix, since every script touches both (a
// script's keys must share a slot). That is a choice. Sorted sets per
// shard ({tracker:0} … {tracker:N-1}, each transaction hashed to one)
// would spread the due list over the masters, but every TakeDue (about one
// per reconciled transaction, and one per replica at every interval) would
// then visit every shard, in N round trips mostly answering nothing;
// earliest first would need a merge across shards; and ReconcileDue, which
// ends its pass on a take short of the limit, would stop early unless
// TakeDue kept visiting shards until the limit. One master is ample: a
// tracked transaction costs it a Track, then a share of a TakeDue and an
// Untrack or Reschedule, scripts of some 16 microseconds each (INFO
// commandstats, during TestReconciliation_atScale), while the Peek, Claim
// and Complete of reconciliation, like every delivery's, spread over all
// the masters by transaction. What it costs is that master's failures:
// while it fails over, Track fails (Router.Track returns the error) and so
// do reconciliation passes, tried again at the next interval.
// TestCluster_reconciliation reconciles 10,000 transactions on the cluster
// of .ci/steps/71-redis-cluster.sh, two replicas at once: in 4.9–5.0s
// under the race detector.
//
// # What a failover can lose
//
// While a master is down, claims on its slots fail: the Router answers 503
// and Cofidis retries. The completions of callbacks that succeeded in the
// meantime fail too, and the Router retries them until the claim's lease
// ends; the promoted replica has the claim, so they succeed once the client
// reaches it. TestCluster_failover holds 8 to 14 callbacks on the master's
// slots across its fall, among 3,000 decisions: with the default lease
// (2 minutes) every completion was recorded, no action ran twice and no
// decision was lost, whatever the client settings; the slowest answer took
// 4.1–8.2s with the recommended settings, 60s with go-redis defaults after
// an exit. A completion still failing when the lease ends is acknowledged
// and logged (cofidis.OutcomeUnrecorded), and the next copy of the
// decision runs the action again: keep WithLease well above the cluster's
// failover time plus the client's.
//
// Redis replicates asynchronously: a master acknowledges a write before its
// replica has it. A failover can therefore forget acknowledged writes: those
// of a master's last moments when it crashes, and up to
// cluster-node-timeout of them when a partition leaves it with some of the
// clients (the Redis Cluster specification, "Write safety"). For this store:
//
//   - a lost Complete leaves the action held (until its claim's lease ends)
//     or unknown, and the next delivery runs it again; the transaction's
//     furthest status may also step back, so that a stale event is
//     delivered as new;
//   - a lost Claim lets another delivery claim and run the action while the
//     first one runs it; one of the two completions is then refused
//     (cofidis.ErrLeaseLost) and logged;
//   - a lost Release keeps the claim until its lease ends: the next
//     delivery is answered 503 until then;
//   - a lost Track leaves the transaction untracked: if every callback of
//     its journey is lost too, nothing reconciles it;
//   - a lost TakeDue lets another replica take the same transactions while
//     the first one reconciles them: getStatus may be called twice, and the
//     claims deliver the status once (the loser's Untrack or Reschedule is
//     refused and logged);
//   - a lost Reschedule or Untrack leaves the transaction due when the
//     take's lease ends: it is checked again, and found settled, or its
//     status delivered as a duplicate.
//
// No failover loses a decision that reached a replica: a delivery is
// acknowledged only once its action ran (or was recorded as run), and
// forgetting a record only lets the action run again. TestCluster_failover
// takes masters down with SHUTDOWN NOSAVE, which first lets the replica
// catch up, so that it sees none of these; a crash or a partition can add
// them.
package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis"
)

// DefaultPrefix starts every key the store writes, unless Options.Prefix
// sets another.
const DefaultPrefix = "cofidis:"

// Options configures New. The zero value gives the defaults.
type Options struct {
	// Prefix starts every key; DefaultPrefix when empty. Give each
	// environment sharing a Redis database its own. It must not contain a
	// brace ("{" or "}"): the store puts each transaction's identity in a
	// hash tag of its own, and a Redis Cluster hashes only the first
	// "{...}" of a key, so a tag in the prefix would replace it. "{shop}:"
	// would put every key in one slot, on one master; "{}:" (an empty tag,
	// which Redis ignores) would split a transaction's keys across slots,
	// and every Claim would fail with CROSSSLOT. New rejects such a prefix.
	Prefix string
	// TTL is how long a claim's key is kept after its last write;
	// cofidis.DefaultRetention when zero. The due list of reconciliation
	// has no TTL (see Reconciliation in the package documentation).
	TTL time.Duration
}

// Store is a cofidis.Store in Redis, and a cofidis.Tracker (see
// Reconciliation in the package documentation). It is safe for concurrent
// use.
type Store struct {
	rdb         redis.Scripter
	prefix      string
	ttlMS       int64
	trackerKeys []string // the due list: the sorted set, the hash of records
}

var (
	_ cofidis.Store   = (*Store)(nil)
	_ cofidis.Tracker = (*Store)(nil)
)

// New returns a Store on rdb: a *redis.Client, *redis.ClusterClient or
// *redis.Ring. It checks its arguments only; the server is first contacted
// by the first call.
func New(rdb redis.Scripter, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: redisstore.New: want a non-nil client", cofidis.ErrInvalidOption)
	}
	if opts.TTL < 0 || (opts.TTL > 0 && opts.TTL < time.Millisecond) {
		return nil, fmt.Errorf("%w: redisstore.New: want a TTL of at least 1ms", cofidis.ErrInvalidOption)
	}
	if i := strings.IndexAny(opts.Prefix, "{}"); i >= 0 {
		return nil, fmt.Errorf("%w: redisstore.New: Prefix %q contains %q: the store sets each transaction's hash tag itself, and a brace in the prefix would change how a Redis Cluster places the keys",
			cofidis.ErrInvalidOption, opts.Prefix, opts.Prefix[i])
	}
	s := &Store{rdb: rdb, prefix: opts.Prefix, ttlMS: opts.TTL.Milliseconds()}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	s.trackerKeys = []string{s.prefix + trackerTag + ":due", s.prefix + trackerTag + ":tracked"}
	if s.ttlMS == 0 {
		s.ttlMS = cofidis.DefaultRetention.Milliseconds()
	}
	return s, nil
}

// tagEscaper keeps "}" out of the hash tag, so that the tag always spans the
// whole transaction and key names stay injective.
var tagEscaper = strings.NewReplacer("%", "%25", "}", "%7D")

// keys returns the action's key and its transaction's key.
func (s *Store) keys(k cofidis.ActionKey) []string {
	base := s.base(k)
	return []string{base + "a:" + k.Action, base + "t"}
}

// base is the prefix shared by the keys of k's transaction.
func (s *Store) base(k cofidis.ActionKey) string {
	return s.prefix + "{" + tagEscaper.Replace(k.Transaction) + "}:"
}

// Both claim and peek read the time, the action and the transaction's
// furthest status the same way.
const readState = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local a = redis.call('HMGET', KEYS[1], 'state', 'token', 'until')
local furthest = redis.call('HGET', KEYS[2], 'status') or ''
if a[1] == 'done' then
	return {3, '', 0, furthest}
end
if a[1] == 'held' then
	local left = tonumber(a[3]) - now
	if left > 0 then
		return {2, '', left, furthest}
	end
end
`

// claimScript: KEYS action, transaction; ARGV token, lease ms, ttl ms.
// Returns {state, token, lease left ms, furthest status}.
var claimScript = redis.NewScript(readState + `
redis.call('HSET', KEYS[1], 'state', 'held', 'token', ARGV[1], 'until', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, ARGV[1], 0, furthest}
`)

// peekScript: KEYS action, transaction. Returns like claimScript, state 0
// when unclaimed.
var peekScript = redis.NewScript(readState + `
return {0, '', 0, furthest}
`)

// completeScript: KEYS action, transaction; ARGV token, rank, status, ttl
// ms. Returns 1, or 0 when another token holds or completed the action.
var completeScript = redis.NewScript(`
local a = redis.call('HMGET', KEYS[1], 'state', 'token')
if a[1] and a[2] ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 'state', 'done', 'token', ARGV[1])
redis.call('HDEL', KEYS[1], 'until')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local rank = tonumber(ARGV[2])
if rank > 0 and rank > tonumber(redis.call('HGET', KEYS[2], 'rank') or '0') then
	redis.call('HSET', KEYS[2], 'rank', rank, 'status', ARGV[3])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`)

// releaseScript: KEYS action; ARGV token. Returns 1, or 0 when the token
// does not hold the claim.
var releaseScript = redis.NewScript(`
local a = redis.call('HMGET', KEYS[1], 'state', 'token')
if not a[1] then
	return 1
end
if a[1] == 'held' and a[2] == ARGV[1] then
	redis.call('DEL', KEYS[1])
	return 1
end
return 0
`)

// Claim implements cofidis.Store.
func (s *Store) Claim(ctx context.Context, key cofidis.ActionKey, lease time.Duration) (cofidis.ClaimResult, error) {
	ms := lease.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	v, err := claimScript.Run(ctx, s.rdb, s.keys(key), rand.Text(), ms, s.ttlMS).Slice()
	if err != nil {
		return cofidis.ClaimResult{}, fmt.Errorf("redisstore: claim: %w", err)
	}
	return parseResult(v)
}

// Peek implements cofidis.Store.
func (s *Store) Peek(ctx context.Context, key cofidis.ActionKey) (cofidis.ClaimResult, error) {
	v, err := peekScript.Run(ctx, s.rdb, s.keys(key)).Slice()
	if err != nil {
		return cofidis.ClaimResult{}, fmt.Errorf("redisstore: peek: %w", err)
	}
	return parseResult(v)
}

// Complete implements cofidis.Store.
func (s *Store) Complete(ctx context.Context, key cofidis.ActionKey, token string) error {
	ok, err := completeScript.Run(ctx, s.rdb, s.keys(key), token, key.Rank, string(key.Status), s.ttlMS).Int()
	if err != nil {
		return fmt.Errorf("redisstore: complete: %w", err)
	}
	if ok == 0 {
		return cofidis.ErrLeaseLost
	}
	return nil
}

// Release implements cofidis.Store.
func (s *Store) Release(ctx context.Context, key cofidis.ActionKey, token string) error {
	ok, err := releaseScript.Run(ctx, s.rdb, []string{s.base(key) + "a:" + key.Action}, token).Int()
	if err != nil {
		return fmt.Errorf("redisstore: release: %w", err)
	}
	if ok == 0 {
		return cofidis.ErrLeaseLost
	}
	return nil
}

var errReply = errors.New("redisstore: unexpected script reply")

// parseResult decodes {state, token, lease left ms, furthest status}.
func parseResult(v []any) (cofidis.ClaimResult, error) {
	if len(v) != 4 {
		return cofidis.ClaimResult{}, errReply
	}
	state, ok1 := v[0].(int64)
	token, ok2 := v[1].(string)
	left, ok3 := v[2].(int64)
	furthest, ok4 := v[3].(string)
	if !ok1 || !ok2 || !ok3 || !ok4 || state < 0 || state > int64(cofidis.Done) {
		return cofidis.ClaimResult{}, fmt.Errorf("%w: %s", errReply, strconv.Quote(fmt.Sprint(v)))
	}
	return cofidis.ClaimResult{
		State:      cofidis.ClaimState(state),
		Token:      token,
		RetryAfter: time.Duration(left) * time.Millisecond,
		Furthest:   cofidis.Status(furthest),
	}, nil
}
