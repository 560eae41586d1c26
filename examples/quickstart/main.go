// Command quickstart shows the library at work in one command: it starts a
// Cofidis callback receiver on a loopback port, plays the accepted,
// pending-then-accepted and refused journeys against it over HTTP with the
// cofidistest fake, then a journey whose every callback is lost, recovered
// by reconciliation (Cofidis' 50-minute rule, shortened here to a couple of
// seconds); it prints each typed event as the receiver delivers it, and
// stops.
//
//	go run ./examples/quickstart
//
// The fake also plays Cofidis' getStatus (a cofidistest.Ledger), so the
// receiver verifies every event as a real one would with WithVerifier.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run starts the receiver, plays the journeys and writes one line per event
// to w.
func run(ctx context.Context, w io.Writer) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The five technicalData URLs you would send to initialize. Plain http
	// is for this loopback demo only.
	urls, err := cofidis.NewURLs("http://"+ln.Addr().String()+"/shop", cofidis.AllowHTTP())
	if err != nil {
		return errors.Join(err, ln.Close())
	}

	var getStatus cofidistest.Ledger // stands in for your getStatus client
	shop := &shop{out: w, reconciled: make(chan struct{}, 1)}
	rt, err := cofidis.NewRouter(urls, shop.onRedirect, shop.onNotification,
		cofidis.WithVerifier(&getStatus),                                              // only getStatus proves a status
		cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})), // one process
		cofidis.WithReconciliation(cofidis.ReconcileOptions{Deadline: reconcileAfter, Interval: 100 * time.Millisecond}),
		cofidis.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	)
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	mux := http.NewServeMux()
	rt.Register(mux)

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second, // above the verifier's own timeout
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(w, "receiver listening on http://%s/shop/cofidis/\n", ln.Addr())
	reconcileCtx, stopReconciler := context.WithCancel(ctx)
	reconciler := make(chan error, 1)
	go func() { reconciler <- rt.RunReconciler(reconcileCtx) }()

	playErr := play(ctx, w, urls, rt, &getStatus, shop)
	stopReconciler()
	if err := <-reconciler; !errors.Is(err, context.Canceled) {
		playErr = errors.Join(playErr, err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return errors.Join(playErr, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(playErr, err)
	}
	if playErr != nil {
		return playErr
	}
	fmt.Fprintf(w, "%d events received; receiver stopped\n", shop.count())
	return nil
}

// reconcileAfter stands in for Cofidis' 50 minutes, so that the demo
// shows a decision recovered by reconciliation without waiting for them.
const reconcileAfter = 2 * time.Second

// play has the fake Cofidis post three journeys over HTTP, then play one
// whose callbacks are all lost, which reconciliation recovers.
func play(ctx context.Context, w io.Writer, urls cofidis.URLs, rt *cofidis.Router, getStatus *cofidistest.Ledger, shop *shop) error {
	fake := cofidistest.Fake{
		URLs:   urls,
		Client: &http.Client{Timeout: 10 * time.Second},
		Ledger: getStatus,
	}
	ids := rand.New(rand.NewPCG(2026, 2)) // the same transaction ids at every run
	newKey := func() cofidis.TransactionKey { return cofidistest.NewKey(cofidistest.KeyOptions{Rand: ids}) }
	journeys := []cofidistest.Journey{
		cofidistest.Accepted(newKey()),
		cofidistest.PendingAccepted(newKey()),
		cofidistest.Refused(newKey()),
		cofidistest.Accepted(newKey()).LoseNotifications().CloseBrowser(),
	}
	for i, journey := range journeys {
		// initialize succeeded and the customer goes to the journey: the
		// transaction is tracked until its outcome arrives.
		if err := rt.Track(ctx, journey.Key, time.Now()); err != nil {
			return err
		}
		lost := i == len(journeys)-1
		if lost {
			fmt.Fprintf(w, "\njourney callbacks lost (%s at Cofidis; none of its callbacks arrives, so getStatus is asked after %s instead of 50 minutes):\n",
				journey.Name, reconcileAfter)
		} else {
			fmt.Fprintf(w, "\njourney %s:\n", journey.Name)
		}
		deliveries, err := fake.Play(ctx, journey)
		if err != nil {
			return fmt.Errorf("journey %s: %w", journey.Name, err)
		}
		for _, d := range deliveries {
			if !d.OK() {
				return fmt.Errorf("journey %s: %s", journey.Name, d)
			}
		}
		if lost {
			select {
			case <-shop.reconciled:
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(reconcileAfter + 10*time.Second):
				return fmt.Errorf("journey %s: no decision recovered", journey.Name)
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

// shop is the merchant's side: the two callbacks print what they receive.
type shop struct {
	mu         sync.Mutex
	out        io.Writer
	n          int
	reconciled chan struct{} // a decision recovered by reconciliation
}

// onRedirect answers the customer's browser. A redirect proves nothing:
// show where the order stands, never confirm on it.
func (s *shop) onRedirect(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
	s.print(ev, "show the order page")
	return cofidis.SeeOther(w, r, "/shop/orders/"+ev.TransactionKey.MerchantTransactionID)
}

// onNotification acts on Cofidis' decisions, from its server notifications
// or recovered by reconciliation: nil answers 200, an error 500 so that
// Cofidis (or the reconciliation) retries.
func (s *shop) onNotification(_ context.Context, ev cofidis.Event) error {
	if ev.Channel == cofidis.ChannelReconciliation {
		defer func() {
			select {
			case s.reconciled <- struct{}{}:
			default:
			}
		}()
	}
	var next string
	switch {
	case ev.Status.IsAccepted():
		next = "call confirm (once)"
	case ev.Status.IsFailed():
		next = "release the order"
	case ev.Status.IsRunning():
		next = "wait for the decision"
	default:
		next = "escalate"
	}
	s.print(ev, next)
	return nil
}

func (s *shop) print(ev cofidis.Event, next string) {
	endpoint := "-"
	if e, ok := ev.Endpoint(); ok {
		endpoint = e.String()
	}
	sub := string(ev.SubState)
	if sub == "" {
		sub = "-"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	fmt.Fprintf(s.out, "  %-14s %-22s %-10s %-6s tx=%s verified=%-5t -> %s\n",
		ev.Channel, endpoint, ev.Status, sub, ev.TransactionKey.MerchantTransactionID, ev.Verified, next)
}

func (s *shop) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
