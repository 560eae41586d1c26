package cofidis_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// countingVerifier answers st and counts its calls; when release is not
// nil, each call waits for it to be closed.
type countingVerifier struct {
	st      cofidis.Status
	release chan struct{}
	calls   atomic.Int32
}

func (v *countingVerifier) CurrentStatus(ctx context.Context, _ cofidis.TransactionKey) (cofidis.Status, error) {
	v.calls.Add(1)
	if v.release != nil {
		select {
		case <-v.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return v.st, nil
}

// waitCalls waits until v was called n times.
func (v *countingVerifier) waitCalls(t *testing.T, n int32) {
	t.Helper()
	require.Eventually(t, func() bool { return v.calls.Load() >= n }, 10*time.Second, time.Millisecond)
}

func TestVerifier_spentOncePerDecision(t *testing.T) {
	t.Parallel()
	t.Run("a delivery of an action already done is answered without calling the Verifier", func(t *testing.T) {
		t.Parallel()
		v := &countingVerifier{st: cofidis.StatusToConfirm}
		var calls atomic.Int32
		h := notifier(t, func(context.Context, cofidis.Event) error { calls.Add(1); return nil },
			cofidis.WithVerifier(v), cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})),
			cofidis.WithLogger(quietLogger()))
		for range 5 {
			assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code)
		}
		assert.Equal(t, int32(1), calls.Load(), "one business action")
		assert.Equal(t, int32(1), v.calls.Load(), "one getStatus call for five copies of one decision")
	})
	t.Run("a redirect of a decision already done is delivered without calling the Verifier", func(t *testing.T) {
		t.Parallel()
		v := &countingVerifier{st: cofidis.StatusToConfirm}
		store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})
		rt, err := buildRouter(channelURLs(), func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
			nopNotification, cofidis.WithVerifier(v), cofidis.WithIdempotency(store), cofidis.WithLogger(quietLogger()))
		require.NoError(t, err)
		idemPost(routeHandler(t, rt, cofidis.EndpointNotificationSuccess), "T1", "to_confirm", "")
		require.Equal(t, int32(1), v.calls.Load())
		idemPost(routeHandler(t, rt, cofidis.EndpointReturnSuccess), "T1", "to_confirm", "")
		assert.Equal(t, int32(1), v.calls.Load())
	})
	t.Run("a stale event is acknowledged without calling the Verifier", func(t *testing.T) {
		t.Parallel()
		v := &countingVerifier{st: cofidis.StatusToConfirm}
		h := notifier(t, nopNotification, cofidis.WithVerifier(v),
			cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})), cofidis.WithLogger(quietLogger()))
		idemPost(h, "T1", "to_confirm", "")
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", "pending", "").Code)
		assert.Equal(t, int32(1), v.calls.Load())
	})
	t.Run("a verification that fails releases the claim for the next delivery", func(t *testing.T) {
		t.Parallel()
		v := &countingVerifier{st: cofidis.StatusRefused} // a forgery, or Cofidis not there yet
		var calls atomic.Int32
		h := notifier(t, func(context.Context, cofidis.Event) error { calls.Add(1); return nil },
			cofidis.WithVerifier(v), cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})),
			cofidis.WithLogger(quietLogger()))
		assert.Equal(t, http.StatusServiceUnavailable, idemPost(h, "T1", "to_confirm", "").Code)
		v.st = cofidis.StatusToConfirm
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", "to_confirm", "").Code, "not blocked by a claim left behind")
		assert.Equal(t, int32(1), calls.Load())
	})
}

func TestVerifier_concurrentCallsForOneTransactionAreCollapsed(t *testing.T) {
	t.Parallel()
	// The first delivery holds the only Verifier call until release; every
	// delivery started after it is in the call must share it.
	run := func(t *testing.T, statuses []string, opts ...cofidis.Option) (*countingVerifier, []int, int32) {
		t.Helper()
		v := &countingVerifier{st: cofidis.StatusPending, release: make(chan struct{})}
		var dispatched atomic.Int32
		h := notifier(t, func(context.Context, cofidis.Event) error { dispatched.Add(1); return nil },
			append([]cofidis.Option{cofidis.WithVerifier(v), cofidis.WithLogger(quietLogger())}, opts...)...)
		codes := make([]int, len(statuses))
		var wg sync.WaitGroup
		wg.Go(func() { codes[0] = idemPost(h, "T1", "pending", statuses[0]).Code })
		v.waitCalls(t, 1)
		for i := 1; i < len(statuses); i++ {
			wg.Go(func() { codes[i] = idemPost(h, "T1", "pending", statuses[i]).Code })
		}
		// Let the followers reach the call in flight before releasing it.
		require.Eventually(t, func() bool { return v.calls.Load() > 1 || waitingForVerification(t, len(statuses)-1) }, 10*time.Second, time.Millisecond)
		close(v.release)
		wg.Wait()
		return v, codes, dispatched.Load()
	}
	// The subtests run one after the other, so that each counts only its
	// own waiting goroutines.
	t.Run("copies of one body, without a store", func(t *testing.T) {
		v, codes, dispatched := run(t, []string{"signed", "signed", "signed", "signed", "signed"})
		assert.Equal(t, int32(1), v.calls.Load(), "one getStatus call for five concurrent copies")
		assert.Equal(t, []int{200, 200, 200, 200, 200}, codes)
		assert.Equal(t, int32(5), dispatched, "without a store every copy is dispatched, verified")
	})
	t.Run("different decisions of one transaction, with a store", func(t *testing.T) {
		v, codes, dispatched := run(t, []string{"", "signed", "under_review"},
			cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})))
		assert.Equal(t, int32(1), v.calls.Load())
		assert.Equal(t, []int{200, 200, 200}, codes)
		assert.Equal(t, int32(3), dispatched, "three distinct actions")
	})
}

// waitingForVerification reports whether n goroutines wait for a
// verification made by another one.
func waitingForVerification(t *testing.T, n int) bool {
	t.Helper()
	// The leader is in do too. Only this test's goroutines count: other
	// tests verify in parallel.
	return goroutinesIn("cofidis.(*verifyGroup).do", "TestVerifier_concurrentCallsForOneTransactionAreCollapsed") >= n+1
}

// A flood of malformed requests writes a bounded number of log lines, while
// every rejection still reaches the OnError hooks.
func TestRejectionLogging_boundedUnderAFlood(t *testing.T) {
	t.Parallel()
	const requests = 100_000
	var lines lineCounter
	clock := newIdemClock()
	var rejected atomic.Int64
	var rt *cofidis.Router
	rt, err := buildRouter(channelURLs(), unexpectedRedirect(t), func(context.Context, cofidis.Event) error {
		return errors.New("order database unavailable")
	},
		cofidis.WithLogger(slog.New(slog.NewJSONHandler(&lines, nil))),
		cofidis.WithClock(clock.Now),
		cofidis.WithOnError(func(*http.Request, error) { rejected.Add(1) }))
	require.NoError(t, err)
	h := routeHandler(t, rt, cofidis.EndpointNotificationOther)

	bodies := []string{"transactionKey=%zz", "transactionStatus=to_confirm", formBody(docKeyCompact, "to_confirm", "") + "&transactionStatus=x"}
	for i := range requests {
		clock.Advance(time.Millisecond) // 100 s of flood: ten windows
		w := serve(h, postForm("/notify", bodies[i%len(bodies)]))
		require.Equal(t, http.StatusBadRequest, w.Code)
	}
	assert.EqualValues(t, requests, rejected.Load(), "every rejection reaches OnError")
	// Per class and window: the allowed lines, and one summary of the
	// suppressed ones with the first line of the next window.
	windows := int(100*time.Second/cofidis.DefaultRejectionLogInterval) + 1
	bound := len(bodies) * windows * (cofidis.DefaultRejectionLogLines + 1)
	assert.LessOrEqual(t, lines.count(""), bound)
	assert.Greater(t, lines.count("cofidis: log lines suppressed"), 0, "the suppressed lines are counted in the log")
	var suppressed int64
	for _, rec := range lines.records("cofidis: log lines suppressed") {
		suppressed += int64(rec["suppressed"].(float64))
	}
	logged := int64(lines.count("cofidis: request rejected"))
	assert.LessOrEqual(t, requests-logged-suppressed, int64(requests/(windows-2)),
		"only the last window's count is still pending, to be logged with the next line")

	t.Run("never suppresses a failure of the merchant's own code", func(t *testing.T) {
		before := lines.count("cofidis: callback failed; answered 500 for a retry")
		for range 50 {
			assert.Equal(t, http.StatusInternalServerError, serve(h, postForm("/notify", formBody(docKeyCompact, "Refused", ""))).Code)
		}
		assert.Equal(t, before+50, lines.count("cofidis: callback failed; answered 500 for a retry"))
	})
}

func TestRejectionLogging_limitIsConfigurable(t *testing.T) {
	t.Parallel()
	var lines lineCounter
	clock := newIdemClock()
	h := notifier(t, nopNotification,
		cofidis.WithLogger(slog.New(slog.NewJSONHandler(&lines, nil))),
		cofidis.WithClock(clock.Now),
		cofidis.WithRejectionLogLimit(2, time.Minute))
	for range 10 {
		serve(h, postForm("/notify", "transactionKey=%zz"))
	}
	assert.Equal(t, 2, lines.count("cofidis: request rejected"))
	clock.Advance(time.Minute)
	serve(h, postForm("/notify", "transactionKey=%zz"))
	assert.Equal(t, 3, lines.count("cofidis: request rejected"))
	recs := lines.records("cofidis: log lines suppressed")
	require.Len(t, recs, 1)
	assert.EqualValues(t, 8, recs[0]["suppressed"])
	assert.Equal(t, "malformed_body", recs[0]["class"])
}

// lineCounter counts JSON log lines by message.
type lineCounter struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (c *lineCounter) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.recs = append(c.recs, rec)
	c.mu.Unlock()
	return len(p), nil
}

// count returns the number of lines with message msg, or of all lines for
// "".
func (c *lineCounter) count(msg string) int { return len(c.records(msg)) }

func (c *lineCounter) records(msg string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, r := range c.recs {
		if msg == "" || r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// The merchant's own error stays in the text and the chain of what the
// OnError hooks see; only values from the request are kept out.
func TestCallbackError_keepsTheMerchantsText(t *testing.T) {
	t.Parallel()
	errDB := errors.New("db down")
	var hooked error
	h := notifier(t, func(context.Context, cofidis.Event) error { return errDB },
		cofidis.WithLogger(quietLogger()), cofidis.WithOnError(func(_ *http.Request, err error) { hooked = err }))
	serve(h, postForm("/notify", formBody(echoKeyJSON, "to_confirm", "")))
	require.Error(t, hooked)
	assert.Equal(t, "cofidis: callback failed: db down", hooked.Error())
	assert.ErrorIs(t, hooked, errDB)
	assert.ErrorIs(t, hooked, cofidis.ErrCallback)
	assert.Equal(t, "callback_failed", cofidis.ErrorClass(hooked))
	assertNoEcho(t, hooked.Error(), echoParts...)

	t.Run("a panic keeps its value", func(t *testing.T) {
		var hooked error
		h := notifier(t, func(context.Context, cofidis.Event) error { panic("nil map") },
			cofidis.WithLogger(quietLogger()), cofidis.WithOnError(func(_ *http.Request, err error) { hooked = err }))
		serve(h, postForm("/notify", formBody(echoKeyJSON, "to_confirm", "")))
		assert.Equal(t, "cofidis: callback failed: panic: nil map", hooked.Error())
		var pe *cofidis.PanicError
		require.ErrorAs(t, hooked, &pe)
		assert.Equal(t, "nil map", pe.Value)
	})
}

func TestErrorClass(t *testing.T) {
	t.Parallel()
	classes := cofidis.ErrorClasses()
	assert.Equal(t, "other", classes[len(classes)-1])
	seen := map[string]bool{}
	for _, c := range classes {
		assert.False(t, seen[c], "duplicate class %s", c)
		seen[c] = true
		assert.Regexp(t, `^[a-z_]+$`, c)
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("x"), "other"},
		{cofidis.ErrBodyTooLarge, "body_too_large"},
		{&cofidis.Error{Err: cofidis.ErrRepeatedField}, "repeated_field"},
		{cofidis.Permanent(errors.New("x")), "permanent"},
		{cofidis.ErrLeaseLost, "lease_lost"},
		{cofidis.ErrBrowserRequest, "browser_request"},
		// An *Error belongs to its own sentinel, whatever its cause wraps.
		{&cofidis.Error{Err: cofidis.ErrCallback, Cause: cofidis.ErrStoreUnavailable}, "callback_failed"},
	} {
		assert.Equal(t, tt.want, cofidis.ErrorClass(tt.err), "%v", tt.err)
		if tt.want != "" {
			assert.True(t, seen[tt.want])
		}
	}
	assert.Contains(t, strings.Join(classes, ","), "not_verified")
}

// Unknown statuses are deduplicated whatever their case, as known ones are;
// the callback still sees the spelling that arrived first.
func TestIdempotency_unknownStatusesCaseFolded(t *testing.T) {
	t.Parallel()
	var got []string
	h := notifier(t, func(_ context.Context, ev cofidis.Event) error {
		got = append(got, ev.RawStatus+"/"+ev.RawSubState)
		return nil
	}, cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})), cofidis.WithLogger(quietLogger()))
	for _, st := range []string{"partially_validated", "Partially_validated", "PARTIALLY_VALIDATED"} {
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", st, "Step_One").Code)
		assert.Equal(t, http.StatusOK, idemPost(h, "T1", st, "STEP_ONE").Code)
	}
	assert.Equal(t, []string{"partially_validated/Step_One"}, got)
}

// Payment code goes through security reviews: the request path must not
// need package unsafe (BENCHMARKS.md shows the targets hold without it).
func TestNoUnsafeOnTheRequestPath(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{".", "./internal/clientip"} {
		out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", pkg).Output()
		require.NoError(t, err)
		assert.NotContains(t, strings.Fields(string(out)), "unsafe", pkg)
	}
}
