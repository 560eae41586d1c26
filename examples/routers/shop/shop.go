// Package shop is the merchant's side shared by the router examples: the
// five callback URLs, the two callbacks and a server with timeouts. Only the
// mounting differs from one router to the next.
package shop

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cofidis-go/cofidis"
)

// Base is the base URL the five technicalData URLs derive from: in
// production, the merchant's public HTTPS address.
const Base = "https://shop.example/payments"

// URLs returns the five technicalData URLs sent to initialize; the router
// must be built from the same set.
func URLs() (cofidis.URLs, error) {
	return cofidis.NewURLs(Base)
}

// NewRouter returns the receiver every example mounts, with the given
// callbacks (OnRedirect and OnNotification in the programs, a
// cofidistest.Recorder's in the tests) and options, which must say how
// statuses are proven: cofidis.WithVerifier with the shop's getStatus
// client, or cofidis.WithInsecureSkipVerify.
func NewRouter(onRedirect cofidis.RedirectFunc, onNotification cofidis.NotificationFunc, opts ...cofidis.Option) (*cofidis.Router, error) {
	urls, err := URLs()
	if err != nil {
		return nil, err
	}
	return cofidis.NewRouter(urls, onRedirect, onNotification, opts...)
}

// OnRedirect sends the customer's browser to the order page. A redirect
// proves nothing, so it changes nothing.
func OnRedirect(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
	return cofidis.SeeOther(w, r, "/orders/"+url.PathEscape(ev.TransactionKey.MerchantTransactionID))
}

// OnNotification handles Cofidis' server notifications. A real shop calls
// confirm once per transaction on to_confirm, and only on a Verified event.
func OnNotification(ctx context.Context, ev cofidis.Event) error {
	slog.InfoContext(ctx, "cofidis notification", "event", ev)
	return nil
}

// OrderPage is the page the customer's browser lands on after a redirect
// (a stand-in: a real shop renders the order's state from its database).
func OrderPage(w http.ResponseWriter, id string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fmt.Fprintf(w, "order %s\n", id)
}

// Main is the main function of every router example: it parses -addr,
// builds the receiver with OnRedirect and OnNotification, mounts it with
// mount and serves until SIGINT or SIGTERM.
func Main(mount func(*cofidis.Router) http.Handler) {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// These examples have no Cofidis account, hence no getStatus client:
	// they say so. A real shop passes cofidis.WithVerifier(getStatus).
	rt, err := NewRouter(OnRedirect, OnNotification, cofidis.WithInsecureSkipVerify())
	if err != nil {
		log.Fatal(err)
	}
	if err := Serve(ctx, *addr, mount(rt)); err != nil {
		log.Fatal(err)
	}
}

// Serve runs h on addr until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
