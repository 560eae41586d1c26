// Command gin mounts the Cofidis receiver on a gin engine, one route per
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
	"github.com/gin-gonic/gin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
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
	g := gin.New()
	g.Use(gin.Recovery())
	// Any: every method goes to the receiver, which answers 405 itself.
	for _, route := range rt.Routes() {
		g.Any(route.Path, gin.WrapH(route.Handler))
	}
	g.GET("/orders/:id", func(c *gin.Context) {
		c.String(http.StatusOK, "order %s\n", c.Param("id"))
	})
	return g
}
