// Command chi mounts the Cofidis receiver on a chi router, one route per
// distinct path of the five URLs.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt, err := shop.NewRouter(shop.OnRedirect, shop.OnNotification)
	if err != nil {
		log.Fatal(err)
	}
	if err := shop.Serve(ctx, *addr, newHandler(rt)); err != nil {
		log.Fatal(err)
	}
}

// newHandler mounts the receiver next to the shop's own pages.
func newHandler(rt *cofidis.Router) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	// Every method goes to the receiver, which answers 405 itself.
	for _, route := range rt.Routes() {
		r.Handle(route.Path, route.Handler)
	}
	r.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		shop.OrderPage(w, chi.URLParam(r, "id"))
	})
	return r
}
