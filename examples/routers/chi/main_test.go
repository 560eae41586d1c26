package main

import (
	"testing"

	"github.com/cofidis-go/cofidis/examples/routers/internal/routertest"
)

func TestChi(t *testing.T) {
	routertest.Check(t, newHandler)
}
