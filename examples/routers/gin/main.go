// Command gin mounts the Cofidis receiver on a gin engine, one route per
// distinct path of the five URLs.
package main

import (
	"net/http"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/examples/routers/shop"
	"github.com/gin-gonic/gin"
)

func main() {
	gin.SetMode(gin.ReleaseMode)
	shop.Main(newHandler)
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
		shop.OrderPage(c.Writer, c.Param("id"))
	})
	return g
}
