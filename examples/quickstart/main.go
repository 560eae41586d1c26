// Command quickstart shows the library at work in one command: it starts a
// Cofidis callback receiver on a loopback port, plays the accepted,
// pending-then-accepted and refused journeys against it over HTTP with the
// cofidistest fake, prints each typed event as the receiver delivers it, and
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
	shop := &shop{out: w}
	rt, err := cofidis.NewRouter(urls, shop.onRedirect, shop.onNotification,
		cofidis.WithVerifier(&getStatus), // only getStatus proves a status
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

	playErr := play(ctx, w, urls, &getStatus)

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

// play has the fake Cofidis post three journeys over HTTP.
func play(ctx context.Context, w io.Writer, urls cofidis.URLs, getStatus *cofidistest.Ledger) error {
	fake := cofidistest.Fake{
		URLs:   urls,
		Client: &http.Client{Timeout: 10 * time.Second},
		Ledger: getStatus,
	}
	ids := rand.New(rand.NewPCG(2026, 2)) // the same transaction ids at every run
	newKey := func() cofidis.TransactionKey { return cofidistest.NewKey(cofidistest.KeyOptions{Rand: ids}) }
	for _, journey := range []cofidistest.Journey{
		cofidistest.Accepted(newKey()),
		cofidistest.PendingAccepted(newKey()),
		cofidistest.Refused(newKey()),
	} {
		name := journey.Name
		fmt.Fprintf(w, "\njourney %s:\n", name)
		deliveries, err := fake.Play(ctx, journey)
		if err != nil {
			return fmt.Errorf("journey %s: %w", name, err)
		}
		for _, d := range deliveries {
			if !d.OK() {
				return fmt.Errorf("journey %s: %s", name, d)
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

// shop is the merchant's side: the two callbacks print what they receive.
type shop struct {
	mu  sync.Mutex
	out io.Writer
	n   int
}

// onRedirect answers the customer's browser. A redirect proves nothing:
// show where the order stands, never confirm on it.
func (s *shop) onRedirect(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
	s.print(ev, "show the order page")
	return cofidis.SeeOther(w, r, "/shop/orders/"+ev.TransactionKey.MerchantTransactionID)
}

// onNotification acts on Cofidis' server notifications: nil answers 200, an
// error 500 so that Cofidis retries.
func (s *shop) onNotification(_ context.Context, ev cofidis.Event) error {
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
	endpoint, _ := ev.Endpoint()
	sub := string(ev.SubState)
	if sub == "" {
		sub = "-"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	fmt.Fprintf(s.out, "  %-12s %-22s %-10s %-6s tx=%s verified=%-5t -> %s\n",
		ev.Channel, endpoint, ev.Status, sub, ev.TransactionKey.MerchantTransactionID, ev.Verified, next)
}

func (s *shop) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
