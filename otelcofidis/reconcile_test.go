package otelcofidis_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// TestReconciliation: the reconciliation channel and the Tracker's calls
// flow through with no code of their own, named by Channel.String and
// Call.String. A transaction whose callbacks were all lost is checked
// after Cofidis' 50 minutes and its decision delivered.
func TestReconciliation(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	clock := cofidistest.NewClock(testNow)
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	require.NoError(t, err)
	var ledger cofidistest.Ledger
	rec := &cofidistest.Recorder{}
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify,
		cofidis.WithVerifier(&ledger),
		cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{Clock: clock.Now})),
		cofidis.WithReconciliation(cofidis.ReconcileOptions{}),
		cofidis.WithClock(clock.Now),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)),
		cofidis.WithObserver(tel.observer(t)))
	require.NoError(t, err)

	require.NoError(t, rt.Track(t.Context(), testKey, clock.Now()))
	ledger.Set(testKey, cofidis.StatusToConfirm) // no callback ever arrives
	clock.Advance(cofidis.DefaultReconcileDeadline)
	res, err := rt.ReconcileDue(t.Context())
	require.NoError(t, err)
	require.Equal(t, cofidis.ReconcileResult{Checked: 1, Delivered: 1}, res)

	assert.Equal(t, []string{
		"cofidis.call.duration{call=callback,channel=reconciliation} count=1",
		"cofidis.call.duration{call=store.claim,channel=reconciliation} count=1",
		"cofidis.call.duration{call=store.complete,channel=reconciliation} count=1",
		"cofidis.call.duration{call=store.peek} count=1",
		"cofidis.call.duration{call=store.take_due} count=1",
		"cofidis.call.duration{call=store.track} count=1",
		"cofidis.call.duration{call=store.untrack} count=1",
		"cofidis.call.duration{call=verifier,channel=reconciliation} count=1",
		"cofidis.deliveries{channel=reconciliation,endpoints=none,outcome=processed,status=to_confirm,sub_state=} 1",
		"cofidis.request.duration{channel=reconciliation,outcome=processed} count=1",
	}, tel.series(t))
	assert.Equal(t, []string{
		"cofidis.reconciliation",
		"  cofidis.verifier",
		"  cofidis.store.claim",
		"  cofidis.callback",
		"  cofidis.store.complete",
	}, spanNames(tel.tree()), "calls outside a delivery and any trace (the take, the untrack) are not traced")
}
