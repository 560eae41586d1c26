// Command chi mounts the Cofidis receiver on a chi router, one route per
// distinct path of the five URLs.
package main

import (
	"net/http"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

func main() { shop.Main(newHandler) }

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
