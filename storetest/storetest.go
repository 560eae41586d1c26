// Package storetest is the contract test suite of cofidis.Store: every store
// (the in-memory one, the Redis one, a third party's) runs the same tests, so
// that the handlers' exactly-once guarantees hold whichever store is used.
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) cofidis.Store { return newMyStore(t) })
//	}
//
// The suite uses real time: a few tests wait for short leases to end, which
// takes well under a second in all. Each test uses its own random
// transaction identities, so stores may share a backend with other tests.
//
// A store that also implements cofidis.Tracker (the due list of
// cofidis.WithReconciliation) is checked as a Tracker too. Those tests
// drive time through the now the Tracker methods take, never by sleeping;
// since TakeDue returns whatever is due in the store, every store newStore
// returns must have a due list of its own (a fresh prefix, schema or
// database), not shared with other tests.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
)

// Lease lengths used by the suite: long enough never to end during a test,
// or short enough to wait for.
const (
	longLease  = time.Minute
	shortLease = 50 * time.Millisecond
	// afterShortLease is how long the suite sleeps for a short lease to end.
	afterShortLease = 150 * time.Millisecond
)

// Run runs the contract suite against stores made by newStore, one per
// subtest. Subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) cofidis.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s cofidis.Store)
	}{
		{"claim", testClaim},
		{"complete", testComplete},
		{"release", testRelease},
		{"lease", testLease},
		{"peek", testPeek},
		{"furthest status", testFurthest},
		{"isolation", testIsolation},
		{"concurrent claims", testConcurrentClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
	if _, ok := newStore(t).(cofidis.Tracker); ok {
		t.Run("tracker", func(t *testing.T) {
			runTracker(t, func(t *testing.T) cofidis.Tracker {
				s, ok := newStore(t).(cofidis.Tracker)
				if !ok {
					t.Fatal("newStore returned a store that is not a Tracker this time")
				}
				return s
			})
		})
	}
}

// key returns an action key of a transaction no other test uses.
func key(action string, st cofidis.Status) cofidis.ActionKey {
	return cofidis.ActionKey{
		Transaction: "020280098/" + rand.Text() + "/20260227",
		Action:      action,
		Status:      st,
		Rank:        st.Rank(),
	}
}

// sibling returns another action of k's transaction.
func sibling(k cofidis.ActionKey, action string, st cofidis.Status) cofidis.ActionKey {
	return cofidis.ActionKey{Transaction: k.Transaction, Action: action, Status: st, Rank: st.Rank()}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// mustClaim claims k and fails the test unless the result is want.
func mustClaim(t *testing.T, s cofidis.Store, k cofidis.ActionKey, lease time.Duration, want cofidis.ClaimState) cofidis.ClaimResult {
	t.Helper()
	res, err := s.Claim(ctx(t), k, lease)
	if err != nil {
		t.Fatalf("Claim(%s): %v", k, err)
	}
	if res.State != want {
		t.Fatalf("Claim(%s) = %s, want %s", k, res.State, want)
	}
	if (res.State == cofidis.Claimed) != (res.Token != "") {
		t.Fatalf("Claim(%s) = %s with token %q: want a token exactly when claimed", k, res.State, res.Token)
	}
	return res
}

func mustPeek(t *testing.T, s cofidis.Store, k cofidis.ActionKey, want cofidis.ClaimState) cofidis.ClaimResult {
	t.Helper()
	res, err := s.Peek(ctx(t), k)
	if err != nil {
		t.Fatalf("Peek(%s): %v", k, err)
	}
	if res.State != want {
		t.Fatalf("Peek(%s) = %s, want %s", k, res.State, want)
	}
	if res.Token != "" {
		t.Fatalf("Peek(%s) returned a token", k)
	}
	return res
}

func mustComplete(t *testing.T, s cofidis.Store, k cofidis.ActionKey, token string) {
	t.Helper()
	if err := s.Complete(ctx(t), k, token); err != nil {
		t.Fatalf("Complete(%s): %v", k, err)
	}
}

func mustRelease(t *testing.T, s cofidis.Store, k cofidis.ActionKey, token string) {
	t.Helper()
	if err := s.Release(ctx(t), k, token); err != nil {
		t.Fatalf("Release(%s): %v", k, err)
	}
}

func wantLeaseLost(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, cofidis.ErrLeaseLost) {
		t.Fatalf("%s = %v, want ErrLeaseLost", op, err)
	}
}

func testClaim(t *testing.T, s cofidis.Store) {
	tests := []struct {
		name  string
		setup func(t *testing.T, k cofidis.ActionKey)
		want  cofidis.ClaimState
	}{
		{"a fresh action is claimed", func(*testing.T, cofidis.ActionKey) {}, cofidis.Claimed},
		{"an action held under a live lease is in progress", func(t *testing.T, k cofidis.ActionKey) {
			mustClaim(t, s, k, longLease, cofidis.Claimed)
		}, cofidis.InProgress},
		{"a completed action is done", func(t *testing.T, k cofidis.ActionKey) {
			mustComplete(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		}, cofidis.Done},
		{"a released action is claimed again", func(t *testing.T, k cofidis.ActionKey) {
			mustRelease(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		}, cofidis.Claimed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := key("to_confirm", cofidis.StatusToConfirm)
			tt.setup(t, k)
			res := mustClaim(t, s, k, longLease, tt.want)
			if tt.want == cofidis.InProgress && (res.RetryAfter <= 0 || res.RetryAfter > longLease) {
				t.Errorf("RetryAfter = %v, want within (0, %v]", res.RetryAfter, longLease)
			}
		})
	}

	t.Run("each claim gets a new token", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		first := mustClaim(t, s, k, longLease, cofidis.Claimed)
		mustRelease(t, s, k, first.Token)
		second := mustClaim(t, s, k, longLease, cofidis.Claimed)
		if first.Token == second.Token {
			t.Errorf("two claims got the same token %q", first.Token)
		}
	})
}

func testComplete(t *testing.T, s cofidis.Store) {
	t.Run("twice with the same token succeeds", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		tok := mustClaim(t, s, k, longLease, cofidis.Claimed).Token
		mustComplete(t, s, k, tok)
		mustComplete(t, s, k, tok)
		mustClaim(t, s, k, longLease, cofidis.Done)
	})
	t.Run("with another token while held is refused", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		mustClaim(t, s, k, longLease, cofidis.Claimed)
		wantLeaseLost(t, "Complete(wrong token)", s.Complete(ctx(t), k, "not-the-token"))
		mustClaim(t, s, k, longLease, cofidis.InProgress)
	})
	t.Run("with another token once done is refused", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		mustComplete(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		wantLeaseLost(t, "Complete(wrong token)", s.Complete(ctx(t), k, "not-the-token"))
		mustClaim(t, s, k, longLease, cofidis.Done)
	})
	t.Run("with nothing recorded marks the action done", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		mustComplete(t, s, k, "a-token")
		mustClaim(t, s, k, longLease, cofidis.Done)
	})
}

func testRelease(t *testing.T, s cofidis.Store) {
	t.Run("with nothing recorded is a no-op", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		mustRelease(t, s, k, "a-token")
		mustPeek(t, s, k, cofidis.Unclaimed)
	})
	t.Run("with another token is refused and keeps the claim", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		mustClaim(t, s, k, longLease, cofidis.Claimed)
		wantLeaseLost(t, "Release(wrong token)", s.Release(ctx(t), k, "not-the-token"))
		mustClaim(t, s, k, longLease, cofidis.InProgress)
	})
	t.Run("of a completed action is refused and keeps it done", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		tok := mustClaim(t, s, k, longLease, cofidis.Claimed).Token
		mustComplete(t, s, k, tok)
		wantLeaseLost(t, "Release(after Complete)", s.Release(ctx(t), k, tok))
		mustClaim(t, s, k, longLease, cofidis.Done)
	})
	t.Run("twice is a no-op the second time", func(t *testing.T) {
		k := key("to_confirm", cofidis.StatusToConfirm)
		tok := mustClaim(t, s, k, longLease, cofidis.Claimed).Token
		mustRelease(t, s, k, tok)
		mustRelease(t, s, k, tok)
		mustClaim(t, s, k, longLease, cofidis.Claimed)
	})
}

func testLease(t *testing.T, s cofidis.Store) {
	t.Run("an expired lease is taken over with a new token", func(t *testing.T) {
		t.Parallel()
		k := key("to_confirm", cofidis.StatusToConfirm)
		crashed := mustClaim(t, s, k, shortLease, cofidis.Claimed)
		time.Sleep(afterShortLease)
		next := mustClaim(t, s, k, longLease, cofidis.Claimed)
		if next.Token == crashed.Token {
			t.Fatal("the takeover reused the expired token")
		}
		// The replica that lost its lease cannot settle the new claim.
		wantLeaseLost(t, "Complete(expired token)", s.Complete(ctx(t), k, crashed.Token))
		wantLeaseLost(t, "Release(expired token)", s.Release(ctx(t), k, crashed.Token))
		mustClaim(t, s, k, longLease, cofidis.InProgress)
		mustComplete(t, s, k, next.Token)
		mustClaim(t, s, k, longLease, cofidis.Done)
	})
	t.Run("an expired lease nobody took over can still be completed", func(t *testing.T) {
		t.Parallel()
		k := key("to_confirm", cofidis.StatusToConfirm)
		slow := mustClaim(t, s, k, shortLease, cofidis.Claimed)
		time.Sleep(afterShortLease)
		mustComplete(t, s, k, slow.Token)
		mustClaim(t, s, k, longLease, cofidis.Done)
	})
	t.Run("an expired lease nobody took over can still be released", func(t *testing.T) {
		t.Parallel()
		k := key("to_confirm", cofidis.StatusToConfirm)
		slow := mustClaim(t, s, k, shortLease, cofidis.Claimed)
		time.Sleep(afterShortLease)
		mustRelease(t, s, k, slow.Token)
		mustClaim(t, s, k, longLease, cofidis.Claimed)
	})
	t.Run("a completion by the expired holder after a takeover is refused", func(t *testing.T) {
		t.Parallel()
		k := key("to_confirm", cofidis.StatusToConfirm)
		slow := mustClaim(t, s, k, shortLease, cofidis.Claimed)
		time.Sleep(afterShortLease)
		next := mustClaim(t, s, k, longLease, cofidis.Claimed)
		mustComplete(t, s, k, next.Token)
		wantLeaseLost(t, "Complete(expired token)", s.Complete(ctx(t), k, slow.Token))
	})
	t.Run("a live lease reports what is left of it", func(t *testing.T) {
		t.Parallel()
		k := key("to_confirm", cofidis.StatusToConfirm)
		mustClaim(t, s, k, 3*time.Second, cofidis.Claimed)
		res := mustClaim(t, s, k, longLease, cofidis.InProgress)
		if res.RetryAfter <= time.Second || res.RetryAfter > 3*time.Second {
			t.Errorf("RetryAfter = %v, want about 3s (the holder's lease, not the caller's)", res.RetryAfter)
		}
	})
}

func testPeek(t *testing.T, s cofidis.Store) {
	tests := []struct {
		name  string
		setup func(t *testing.T, k cofidis.ActionKey)
		want  cofidis.ClaimState
	}{
		{"fresh", func(*testing.T, cofidis.ActionKey) {}, cofidis.Unclaimed},
		{"held", func(t *testing.T, k cofidis.ActionKey) {
			mustClaim(t, s, k, longLease, cofidis.Claimed)
		}, cofidis.InProgress},
		{"released", func(t *testing.T, k cofidis.ActionKey) {
			mustRelease(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		}, cofidis.Unclaimed},
		{"completed", func(t *testing.T, k cofidis.ActionKey) {
			mustComplete(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		}, cofidis.Done},
		{"lease expired", func(t *testing.T, k cofidis.ActionKey) {
			mustClaim(t, s, k, shortLease, cofidis.Claimed)
			time.Sleep(afterShortLease)
		}, cofidis.Unclaimed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := key("to_confirm", cofidis.StatusToConfirm)
			tt.setup(t, k)
			mustPeek(t, s, k, tt.want)
		})
	}
	t.Run("does not claim", func(t *testing.T) {
		t.Parallel()
		k := key("to_confirm", cofidis.StatusToConfirm)
		mustPeek(t, s, k, cofidis.Unclaimed)
		mustPeek(t, s, k, cofidis.Unclaimed)
		mustClaim(t, s, k, longLease, cofidis.Claimed)
	})
}

func testFurthest(t *testing.T, s cofidis.Store) {
	const (
		pending   = cofidis.StatusPending
		toConfirm = cofidis.StatusToConfirm
		refused   = cofidis.StatusRefused
		validated = cofidis.StatusValidated
	)
	tests := []struct {
		name      string
		completed []cofidis.ActionKey // Status and Rank matter; filled in with the transaction
		want      cofidis.Status
	}{
		{"nothing completed", nil, ""},
		{"one status", []cofidis.ActionKey{{Action: "pending", Status: pending, Rank: pending.Rank()}}, pending},
		{"a higher rank moves it", []cofidis.ActionKey{
			{Action: "pending", Status: pending, Rank: pending.Rank()},
			{Action: "to_confirm", Status: toConfirm, Rank: toConfirm.Rank()},
		}, toConfirm},
		{"a lower rank leaves it", []cofidis.ActionKey{
			{Action: "validated", Status: validated, Rank: validated.Rank()},
			{Action: "to_confirm", Status: toConfirm, Rank: toConfirm.Rank()},
		}, validated},
		{"an equal rank keeps the first", []cofidis.ActionKey{
			{Action: "to_confirm", Status: toConfirm, Rank: toConfirm.Rank()},
			{Action: "Refused", Status: refused, Rank: refused.Rank()},
		}, toConfirm},
		{"rank zero never moves it", []cofidis.ActionKey{
			{Action: "pending", Status: pending, Rank: pending.Rank()},
			{Action: "validated", Status: validated, Rank: 0},
			{Action: "Something_new", Status: "Something_new", Rank: 0},
		}, pending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := key("Initialized", cofidis.StatusInitialized)
			for _, c := range tt.completed {
				c.Transaction = probe.Transaction
				mustComplete(t, s, c, mustClaim(t, s, c, longLease, cofidis.Claimed).Token)
			}
			if got := mustClaim(t, s, probe, longLease, cofidis.Claimed).Furthest; got != tt.want {
				t.Errorf("Claim reports Furthest %q, want %q", got, tt.want)
			}
			if got := mustPeek(t, s, probe, cofidis.InProgress).Furthest; got != tt.want {
				t.Errorf("Peek reports Furthest %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("every claim state reports it", func(t *testing.T) {
		k := key("validated", validated)
		mustComplete(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		if got := mustClaim(t, s, k, longLease, cofidis.Done).Furthest; got != validated {
			t.Errorf("Done reports Furthest %q", got)
		}
		held := sibling(k, "pending", pending)
		mustClaim(t, s, held, longLease, cofidis.Claimed)
		if got := mustClaim(t, s, held, longLease, cofidis.InProgress).Furthest; got != validated {
			t.Errorf("InProgress reports Furthest %q", got)
		}
	})
	t.Run("a held or released claim does not move it", func(t *testing.T) {
		k := key("pending", pending)
		mustComplete(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		mustClaim(t, s, sibling(k, "validated", validated), longLease, cofidis.Claimed)
		r := sibling(k, "Refused", refused)
		mustRelease(t, s, r, mustClaim(t, s, r, longLease, cofidis.Claimed).Token)
		if got := mustClaim(t, s, sibling(k, "x", "x"), longLease, cofidis.Claimed).Furthest; got != pending {
			t.Errorf("Furthest = %q, want pending", got)
		}
	})
}

func testIsolation(t *testing.T, s cofidis.Store) {
	t.Run("actions of one transaction are independent", func(t *testing.T) {
		k := key("pending", cofidis.StatusPending)
		mustComplete(t, s, k, mustClaim(t, s, k, longLease, cofidis.Claimed).Token)
		mustClaim(t, s, sibling(k, "pending/signed", cofidis.StatusPending), longLease, cofidis.Claimed)
	})
	t.Run("transactions are independent", func(t *testing.T) {
		a := key("to_confirm", cofidis.StatusToConfirm)
		b := key("to_confirm", cofidis.StatusToConfirm)
		mustComplete(t, s, a, mustClaim(t, s, a, longLease, cofidis.Claimed).Token)
		res := mustClaim(t, s, b, longLease, cofidis.Claimed)
		if res.Furthest != "" {
			t.Errorf("Furthest leaked across transactions: %q", res.Furthest)
		}
	})
	t.Run("separators inside the parts do not collide", func(t *testing.T) {
		base := rand.Text()
		keys := []cofidis.ActionKey{
			{Transaction: base + "}:a:x", Action: "y"},
			{Transaction: base, Action: "x}:a:y"},
			{Transaction: base + "}", Action: ":a:x}:a:y"},
			{Transaction: base + " x", Action: "y"},
			{Transaction: base, Action: "x y"},
			{Transaction: base + "|x", Action: "y"},
			{Transaction: base, Action: "x|y"},
			{Transaction: base + "{é}%7D", Action: "ü/{}"},
		}
		for _, k := range keys {
			mustClaim(t, s, k, longLease, cofidis.Claimed)
		}
	})
}

func testConcurrentClaims(t *testing.T, s cofidis.Store) {
	const n = 16
	k := key("to_confirm", cofidis.StatusToConfirm)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		states = map[cofidis.ClaimState]int{}
		errs   []error
	)
	for range n {
		wg.Go(func() {
			res, err := s.Claim(ctx(t), k, longLease)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			states[res.State]++
			if res.State == cofidis.InProgress && res.RetryAfter <= 0 {
				errs = append(errs, errors.New("an in-progress answer without the lease left (RetryAfter)"))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Claim: %v", errs[0])
	}
	if states[cofidis.Claimed] != 1 || states[cofidis.InProgress] != n-1 {
		t.Errorf("%d concurrent claims answered %v, want exactly 1 claimed and %d in progress", n, states, n-1)
	}
}

// The Tracker's contract. Times are the caller's: base is an arbitrary
// moment, far from the real clock, to show that the store uses the now it
// is given.
var base = time.Date(2031, 3, 14, 9, 26, 53, 0, time.UTC)

func runTracker(t *testing.T, newTracker func(t *testing.T) cofidis.Tracker) {
	tests := []struct {
		name string
		fn   func(t *testing.T, tr cofidis.Tracker)
	}{
		{"due time", testTrackDue},
		{"track twice", testTrackTwice},
		{"take and lease", testTakeLease},
		{"reschedule", testReschedule},
		{"untrack", testUntrack},
		{"order and limit", testOrderAndLimit},
		{"key round trip", testTrackedKey},
		{"concurrent takes", testConcurrentTakes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newTracker(t))
		})
	}
}

// tracked returns a transaction no other test uses, sent at since and due
// an hour later.
func tracked(since time.Time) cofidis.Tracked {
	return cofidis.Tracked{
		Key: cofidis.TransactionKey{
			MerchantCountry: "fr", ProviderID: "providrid", ProviderTransactionID: cofidis.NullValue(),
			MerchantID: "020280098", MerchantTransactionID: rand.Text()[:10], MerchantTransactionDate: "20310314",
		},
		Since: since,
		Due:   since.Add(time.Hour),
	}
}

func mustTrack(t *testing.T, tr cofidis.Tracker, x cofidis.Tracked) {
	t.Helper()
	if err := tr.Track(ctx(t), x); err != nil {
		t.Fatalf("Track(%s): %v", x.Key, err)
	}
}

func takeDue(t *testing.T, tr cofidis.Tracker, now time.Time, limit int, lease time.Duration) []cofidis.Tracked {
	t.Helper()
	got, err := tr.TakeDue(ctx(t), now, limit, lease)
	if err != nil {
		t.Fatalf("TakeDue(%s): %v", now, err)
	}
	for _, g := range got {
		if g.Token == "" {
			t.Fatalf("TakeDue returned %s without a token", g.Key)
		}
	}
	return got
}

// ids lists the transaction ids of ts, for comparisons.
func ids(ts []cofidis.Tracked) []string {
	out := make([]string, len(ts))
	for i, x := range ts {
		out[i] = x.Key.MerchantTransactionID
	}
	return out
}

func wantIDs(t *testing.T, what string, got []cofidis.Tracked, want ...cofidis.Tracked) {
	t.Helper()
	if g, w := ids(got), ids(want); !slices.Equal(g, w) {
		t.Fatalf("%s: got %v, want %v", what, g, w)
	}
}

func testTrackDue(t *testing.T, tr cofidis.Tracker) {
	x := tracked(base)
	mustTrack(t, tr, x)
	wantIDs(t, "before its due time", takeDue(t, tr, x.Due.Add(-time.Millisecond), 10, time.Minute))
	got := takeDue(t, tr, x.Due, 10, time.Minute)
	wantIDs(t, "at its due time", got, x)
	if !got[0].Due.Equal(x.Due) || !got[0].Since.Equal(x.Since) || got[0].Attempts != 0 {
		t.Fatalf("TakeDue = due %s since %s attempts %d, want due %s since %s attempts 0",
			got[0].Due, got[0].Since, got[0].Attempts, x.Due, x.Since)
	}
}

func testTrackTwice(t *testing.T, tr cofidis.Tracker) {
	x := tracked(base)
	mustTrack(t, tr, x)
	later := x
	later.Due = x.Due.Add(24 * time.Hour)
	mustTrack(t, tr, later)
	got := takeDue(t, tr, x.Due, 10, time.Minute)
	wantIDs(t, "a second Track changes nothing", got, x)
	if !got[0].Due.Equal(x.Due) {
		t.Fatalf("due %s, want the first Track's %s", got[0].Due, x.Due)
	}
}

func testTakeLease(t *testing.T, tr cofidis.Tracker) {
	x := tracked(base)
	mustTrack(t, tr, x)
	first := takeDue(t, tr, x.Due, 10, time.Minute)
	wantIDs(t, "taken", first, x)
	wantIDs(t, "while its lease runs", takeDue(t, tr, x.Due.Add(59*time.Second), 10, time.Minute))
	second := takeDue(t, tr, x.Due.Add(time.Minute), 10, time.Minute)
	wantIDs(t, "taken over when the lease ends", second, x)
	if second[0].Token == first[0].Token {
		t.Fatal("a takeover reuses the token")
	}
	stale := first[0]
	stale.Due = x.Due.Add(time.Hour)
	if err := tr.Reschedule(ctx(t), stale); !errors.Is(err, cofidis.ErrLeaseLost) {
		t.Fatalf("Reschedule with the token taken over = %v, want ErrLeaseLost", err)
	}
	if err := tr.Untrack(ctx(t), stale); !errors.Is(err, cofidis.ErrLeaseLost) {
		t.Fatalf("Untrack with the token taken over = %v, want ErrLeaseLost", err)
	}
	if err := tr.Untrack(ctx(t), second[0]); err != nil {
		t.Fatalf("Untrack by the new holder: %v", err)
	}
}

func testReschedule(t *testing.T, tr cofidis.Tracker) {
	x := tracked(base)
	mustTrack(t, tr, x)
	got := takeDue(t, tr, x.Due, 10, time.Minute)[0]
	got.Due, got.Attempts = x.Due.Add(time.Hour), 3
	if err := tr.Reschedule(ctx(t), got); err != nil {
		t.Fatalf("Reschedule: %v", err)
	}
	wantIDs(t, "before the new due time, even after the lease", takeDue(t, tr, got.Due.Add(-time.Second), 10, time.Minute))
	again := takeDue(t, tr, got.Due, 10, time.Minute)
	wantIDs(t, "at the new due time", again, x)
	if again[0].Attempts != 3 || !again[0].Due.Equal(got.Due) {
		t.Fatalf("attempts %d due %s, want 3 and %s", again[0].Attempts, again[0].Due, got.Due)
	}
	if err := tr.Reschedule(ctx(t), got); !errors.Is(err, cofidis.ErrLeaseLost) {
		t.Fatalf("Reschedule with a token no longer holding it = %v, want ErrLeaseLost", err)
	}
	untaken := x
	if err := tr.Reschedule(ctx(t), untaken); !errors.Is(err, cofidis.ErrLeaseLost) {
		t.Fatalf("Reschedule without a token = %v, want ErrLeaseLost", err)
	}
}

func testUntrack(t *testing.T, tr cofidis.Tracker) {
	x := tracked(base)
	mustTrack(t, tr, x)
	got := takeDue(t, tr, x.Due, 10, time.Minute)[0]
	if err := tr.Untrack(ctx(t), got); err != nil {
		t.Fatalf("Untrack: %v", err)
	}
	wantIDs(t, "untracked, even after the lease", takeDue(t, tr, x.Due.Add(time.Hour), 10, time.Minute))
	if err := tr.Untrack(ctx(t), got); !errors.Is(err, cofidis.ErrLeaseLost) {
		t.Fatalf("Untrack twice = %v, want ErrLeaseLost", err)
	}
	mustTrack(t, tr, x) // tracked again, from scratch
	wantIDs(t, "tracked again", takeDue(t, tr, x.Due, 10, time.Minute), x)
}

func testOrderAndLimit(t *testing.T, tr cofidis.Tracker) {
	var xs []cofidis.Tracked
	for i := range 5 {
		x := tracked(base)
		x.Due = base.Add(time.Duration(5-i) * time.Minute) // tracked latest first
		mustTrack(t, tr, x)
		xs = append([]cofidis.Tracked{x}, xs...)
	}
	now := base.Add(time.Hour)
	wantIDs(t, "the earliest first, up to the limit", takeDue(t, tr, now, 2, time.Hour), xs[0], xs[1])
	wantIDs(t, "then the next", takeDue(t, tr, now, 10, time.Hour), xs[2], xs[3], xs[4])
	wantIDs(t, "then none", takeDue(t, tr, now, 10, time.Hour))
}

func testTrackedKey(t *testing.T, tr cofidis.Tracker) {
	for _, pt := range []cofidis.NullString{{}, cofidis.NullValue(), cofidis.NullStringOf(""), cofidis.NullStringOf("PSP/42 é")} {
		x := tracked(base)
		x.Key.ProviderTransactionID = pt
		x.Key.MerchantTransactionID += "/é %"
		x.Since = base.Add(123 * time.Millisecond)
		mustTrack(t, tr, x)
		got := takeDue(t, tr, x.Due.Add(time.Hour), 10, time.Minute)
		if len(got) != 1 || got[0].Key != x.Key || !got[0].Since.Equal(x.Since) {
			t.Fatalf("TakeDue = %+v, want the key %+v and since %s back exactly", got, x.Key, x.Since)
		}
		if err := tr.Untrack(ctx(t), got[0]); err != nil {
			t.Fatal(err)
		}
	}
}

func testConcurrentTakes(t *testing.T, tr cofidis.Tracker) {
	const n, takers = 40, 8
	want := map[string]bool{}
	for range n {
		x := tracked(base)
		mustTrack(t, tr, x)
		want[x.Key.MerchantTransactionID] = true
	}
	var (
		mu    sync.Mutex
		taken = map[string]int{}
		wg    sync.WaitGroup
	)
	for range takers {
		wg.Go(func() {
			for {
				got, err := tr.TakeDue(ctx(t), base.Add(2*time.Hour), 3, time.Hour)
				if err != nil {
					t.Errorf("TakeDue: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, g := range got {
					taken[g.Key.MerchantTransactionID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for id := range want {
		if taken[id] != 1 {
			t.Errorf("%s taken %d times, want once", id, taken[id])
		}
	}
	if len(taken) != n {
		t.Errorf("%d transactions taken, want %d", len(taken), n)
	}
}
