package main

import (
	"os"
	"testing"

	"github.com/cofidis-go/cofidis/examples/routers/internal/routertest"
	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no route listing on stdout
	os.Exit(m.Run())
}

func TestGin(t *testing.T) {
	routertest.Check(t, newHandler)
}
