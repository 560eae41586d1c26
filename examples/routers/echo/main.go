// Command echo mounts the Cofidis receiver on an echo server, one route per
// distinct path of the five URLs.
package main

import (
	"net/http"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

func main() { shop.Main(newHandler) }

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
		shop.OrderPage(c.Response(), c.Param("id"))
		return nil
	})
	return e
}
