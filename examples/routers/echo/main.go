// Command echo mounts the Cofidis receiver on an echo server, one route per
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
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
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
	e := echo.New()
	e.HideBanner = true
	e.Use(middleware.Recover())
	// Any: every method goes to the receiver, which answers 405 itself.
	for _, route := range rt.Routes() {
		e.Any(route.Path, echo.WrapHandler(route.Handler))
	}
	e.GET("/orders/:id", func(c echo.Context) error {
		return c.String(http.StatusOK, "order "+c.Param("id")+"\n")
	})
	return e
}
