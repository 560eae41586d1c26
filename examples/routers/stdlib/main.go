// Command stdlib mounts the Cofidis receiver on a net/http ServeMux, behind
// http.CrossOriginProtection with the return URLs exempted (Cofidis' pages
// post them cross-site).
package main

import (
	"net/http"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
)

func main() { shop.Main(newHandler) }

// newHandler mounts the receiver next to the shop's own pages.
func newHandler(rt *cofidis.Router) http.Handler {
	mux := http.NewServeMux()
	rt.Register(mux) // one exact-path pattern per URL
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		shop.OrderPage(w, r.PathValue("id"))
	})

	// Cofidis' pages post the return URLs cross-site: exempt exactly those
	// routes, and keep the protection everywhere else.
	cop := http.NewCrossOriginProtection()
	if err := rt.ExemptReturnRoutes(cop); err != nil {
		panic(err) // only a second call could conflict
	}
	return cop.Handler(mux)
}
