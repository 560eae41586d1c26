package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/redisstore"
)

// trackedAt returns a transaction no other test uses, sent at since and
// due at due.
func trackedAt(since, due time.Time) cofidis.Tracked {
	return cofidis.Tracked{
		Key: cofidis.TransactionKey{
			MerchantCountry: "fr", ProviderID: "providrid", ProviderTransactionID: cofidis.NullValue(),
			MerchantID: "020280098", MerchantTransactionID: rand.Text()[:10], MerchantTransactionDate: "20260227",
		},
		Since: since,
		Due:   due,
	}
}

func mustTrack(t *testing.T, s *redisstore.Store, x cofidis.Tracked) {
	t.Helper()
	if err := s.Track(context.Background(), x); err != nil {
		t.Fatalf("Track(%s): %v", x.Key, err)
	}
}

func mustTakeDue(t *testing.T, s *redisstore.Store, now time.Time, limit int, lease time.Duration) []cofidis.Tracked {
	t.Helper()
	got, err := s.TakeDue(context.Background(), now, limit, lease)
	if err != nil {
		t.Fatalf("TakeDue(%s): %v", now, err)
	}
	return got
}

// trackedIDs lists the merchantTransactionIds of ts, for comparisons.
func trackedIDs(ts []cofidis.Tracked) []string {
	out := make([]string, len(ts))
	for i, x := range ts {
		out[i] = x.Key.MerchantTransactionID
	}
	return out
}

// The due list is two keys under the prefix, in the {tracker} hash tag,
// without a TTL: a sorted set of the transactions by due time in Unix
// milliseconds, and a hash of their records, whose key is json.Marshal's.
func TestTracker_keys(t *testing.T) {
	rdb := newClient(t)
	prefix := uniquePrefix()
	s := newStore(t, rdb, redisstore.Options{Prefix: prefix, TTL: time.Hour})
	ctx := context.Background()
	since := time.Date(2026, 2, 27, 10, 0, 0, 0, time.UTC)
	x := trackedAt(since, since.Add(50*time.Minute))
	x.Attempts = 2
	mustTrack(t, s, x)
	keys := trackerKeys(prefix)
	zset, hash := keys[0], keys[1]
	id := x.Key.ID().String()

	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{zset, hash}; !slices.Equal(keys, want) {
		t.Fatalf("keys under the prefix = %q, want %q", keys, want)
	}
	check := func(t *testing.T, wantToken bool) {
		t.Helper()
		for _, k := range keys {
			if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl != -1 {
				t.Errorf("PTTL(%q) = %v, %v; want none (-1): a tracked transaction must outlive any TTL", k, ttl, err)
			}
		}
		raw, err := rdb.HGet(ctx, hash, id).Result()
		if err != nil {
			t.Fatalf("HGET %s %s: %v", hash, id, err)
		}
		var rec struct {
			Attempts int             `json:"attempts"`
			Token    string          `json:"token"`
			Since    int64           `json:"since"`
			Key      json.RawMessage `json:"key"`
		}
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			t.Fatalf("record %s: %v", raw, err)
		}
		wantKey, _ := json.Marshal(x.Key)
		if rec.Attempts != 2 || rec.Since != since.UnixMilli() || string(rec.Key) != string(wantKey) || (rec.Token != "") != wantToken {
			t.Errorf("record %s; want attempts 2, since %d, key %s, a token: %t", raw, since.UnixMilli(), wantKey, wantToken)
		}
	}
	if score, err := rdb.ZScore(ctx, zset, id).Result(); err != nil || int64(score) != x.Due.UnixMilli() {
		t.Errorf("ZSCORE = %v, %v; want the due time in Unix milliseconds, %d", score, err, x.Due.UnixMilli())
	}
	check(t, false)

	taken := mustTakeDue(t, s, x.Due, 10, time.Minute)
	if len(taken) != 1 {
		t.Fatalf("TakeDue = %v, want the transaction", trackedIDs(taken))
	}
	if score, err := rdb.ZScore(ctx, zset, id).Result(); err != nil || int64(score) != x.Due.Add(time.Minute).UnixMilli() {
		t.Errorf("ZSCORE after the take = %v, %v; want the end of its lease", score, err)
	}
	check(t, true)

	if err := s.Untrack(ctx, taken[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, zset, hash).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS after the last Untrack = %d, %v; want both keys gone", n, err)
	}
}

// The Tracker keeps the caller's times to the millisecond, whatever their
// location or monotonic reading: a transaction is due at exactly its due
// time truncated to the millisecond, and comes back with its times so
// truncated, never rounded up.
func TestTracker_times(t *testing.T) {
	rdb := newClient(t)
	s := newStore(t, rdb, redisstore.Options{})
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		since, due time.Time
	}{
		{"whole seconds", time.Date(2026, 2, 27, 10, 0, 0, 0, time.UTC), time.Date(2026, 2, 27, 10, 50, 0, 0, time.UTC)},
		{"below half a millisecond", time.Date(2026, 2, 27, 10, 0, 0, 123_000_001, time.UTC), time.Date(2026, 2, 27, 10, 50, 0, 1, time.UTC)},
		{"above half a millisecond", time.Date(2026, 2, 27, 10, 0, 0, 999_999_999, time.UTC), time.Date(2026, 2, 27, 10, 50, 0, 999_999, time.UTC)},
		{"another location", time.Date(2026, 3, 29, 1, 59, 59, 999_500_000, paris), time.Date(2026, 3, 29, 3, 0, 0, 500_000, paris)},
		{"a monotonic reading", time.Now(), time.Now().Add(time.Hour)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999_500_000, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := trackedAt(tt.since, tt.due)
			mustTrack(t, s, x)
			due := tt.due.Truncate(time.Millisecond)
			if got := mustTakeDue(t, s, due.Add(-time.Millisecond), 10, time.Minute); len(got) != 0 {
				t.Fatalf("a millisecond before its due time: took %v", trackedIDs(got))
			}
			got := mustTakeDue(t, s, due, 10, time.Minute)
			if len(got) != 1 || got[0].Key != x.Key {
				t.Fatalf("at its due time: took %v, want %s", trackedIDs(got), x.Key)
			}
			if want := tt.since.Truncate(time.Millisecond); !got[0].Since.Equal(want) {
				t.Errorf("since %s, want %s", got[0].Since, want)
			}
			if !got[0].Due.Equal(due) {
				t.Errorf("due %s, want %s", got[0].Due, due)
			}
			if err := s.Untrack(context.Background(), got[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTracker_withoutARoundTrip covers the calls the store answers without
// asking the server.
func TestTracker_withoutARoundTrip(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never contacted
	defer rdb.Close()
	s, err := redisstore.New(rdb, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	untaken := trackedAt(time.Now(), time.Now())
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"TakeDue of none", func() error {
			got, err := s.TakeDue(ctx, time.Now(), 0, time.Minute)
			if len(got) != 0 {
				t.Errorf("TakeDue(limit 0) = %v", trackedIDs(got))
			}
			return err
		}, nil},
		{"Reschedule without a token", func() error { return s.Reschedule(ctx, untaken) }, cofidis.ErrLeaseLost},
		{"Untrack without a token", func() error { return s.Untrack(ctx, untaken) }, cofidis.ErrLeaseLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("= %v, want %v", err, tt.want)
			}
		})
	}
}

// A record edited by hand fails TakeDue loudly, naming the transaction:
// the Router logs the failed pass at every interval until it is repaired
// or removed. A record the scripts cannot read fails before anything
// changes; one whose key no longer parses is found in Go, after the take.
func TestTakeDue_aRecordEditedByHand(t *testing.T) {
	tests := []struct {
		name string
		edit func(ctx context.Context, rdb *redis.Client, hash, id string) error
		// taken: the take went through before the record was found bad,
		// so that the transaction waits for the lease.
		taken bool
		is    error // what the error wraps, if anything in particular
	}{
		{"record missing", func(ctx context.Context, rdb *redis.Client, hash, id string) error {
			return rdb.HDel(ctx, hash, id).Err()
		}, false, nil},
		{"not JSON", func(ctx context.Context, rdb *redis.Client, hash, id string) error {
			return rdb.HSet(ctx, hash, id, "020280098/ABC/20260227").Err()
		}, false, nil},
		{"members reordered", func(ctx context.Context, rdb *redis.Client, hash, id string) error {
			return rdb.HSet(ctx, hash, id, `{"token":"","attempts":0,"since":0,"key":{}}`).Err()
		}, false, nil},
		{"a key that no longer parses", func(ctx context.Context, rdb *redis.Client, hash, id string) error {
			return rdb.HSet(ctx, hash, id, `{"attempts":0,"token":"","since":0,"key":{"merchantId":42}}`).Err()
		}, true, cofidis.ErrInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := newClient(t)
			prefix := uniquePrefix()
			s := newStore(t, rdb, redisstore.Options{Prefix: prefix})
			ctx := context.Background()
			now := time.Date(2026, 2, 27, 11, 0, 0, 0, time.UTC)
			bad, good := trackedAt(now, now.Add(-2*time.Minute)), trackedAt(now, now.Add(-time.Minute))
			mustTrack(t, s, bad)
			mustTrack(t, s, good)
			keys := trackerKeys(prefix)
			zset, hash := keys[0], keys[1]
			if err := tt.edit(ctx, rdb, hash, bad.Key.ID().String()); err != nil {
				t.Fatal(err)
			}

			_, err := s.TakeDue(ctx, now, 10, time.Hour)
			if err == nil || !strings.Contains(err.Error(), bad.Key.ID().String()) {
				t.Fatalf("TakeDue = %v, want an error naming %s", err, bad.Key.ID())
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("TakeDue = %v, want it to wrap %v", err, tt.is)
			}
			wantScore := bad.Due
			if tt.taken {
				wantScore = now.Add(time.Hour)
			}
			if score, err := rdb.ZScore(ctx, zset, bad.Key.ID().String()).Result(); err != nil || int64(score) != wantScore.UnixMilli() {
				t.Errorf("the bad transaction's score = %v, %v; want %s", score, err, wantScore)
			}

			// Removed from both keys, as the error says, the others are
			// taken again.
			if err := rdb.Eval(ctx, `redis.call('ZREM', KEYS[1], ARGV[1]); return redis.call('HDEL', KEYS[2], ARGV[1])`,
				[]string{zset, hash}, bad.Key.ID().String()).Err(); err != nil {
				t.Fatal(err)
			}
			later := now
			if tt.taken {
				later = now.Add(time.Hour)
			}
			if got := mustTakeDue(t, s, later, 10, time.Hour); len(got) != 1 || got[0].Key != good.Key {
				t.Errorf("TakeDue once the record is removed = %v, want %s", trackedIDs(got), good.Key.MerchantTransactionID)
			}
		})
	}
}

// Replicas, each with its own client, take the due transactions of one
// store at once, in small batches: each is taken exactly once, under a
// token of its own, each batch earliest due first.
func TestTakeDue_acrossReplicas(t *testing.T) {
	const (
		replicas = 4
		takers   = 2 // per replica
		n        = 1000
		limit    = 7
	)
	prefix := uniquePrefix()
	stores := make([]*redisstore.Store, replicas)
	for i := range stores {
		stores[i] = newStore(t, newClient(t), redisstore.Options{Prefix: prefix})
	}
	ctx := context.Background()
	now := time.Date(2026, 2, 27, 11, 0, 0, 0, time.UTC)
	for i := range n {
		x := trackedAt(now.Add(-time.Hour), now.Add(-time.Duration(i%97)*time.Second))
		x.Key.MerchantTransactionID = fmt.Sprintf("T%09d", i)
		mustTrack(t, stores[i%replicas], x)
	}

	var (
		mu     sync.Mutex
		taken  = map[string]int{}
		tokens = map[string]bool{}
		wg     sync.WaitGroup
	)
	for i := range replicas * takers {
		wg.Go(func() {
			for {
				got, err := stores[i%replicas].TakeDue(ctx, now, limit, time.Hour)
				if err != nil {
					t.Errorf("TakeDue: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				if !slices.IsSortedFunc(got, func(a, b cofidis.Tracked) int { return a.Due.Compare(b.Due) }) {
					t.Errorf("a batch not earliest due first: %v", got)
				}
				mu.Lock()
				for _, g := range got {
					taken[g.Key.MerchantTransactionID]++
					tokens[g.Token] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(taken) != n {
		t.Errorf("%d transactions taken, want %d", len(taken), n)
	}
	for id, times := range taken {
		if times != 1 {
			t.Errorf("%s taken %d times", id, times)
		}
	}
	if len(tokens) != n {
		t.Errorf("%d distinct tokens, want %d", len(tokens), n)
	}
}
