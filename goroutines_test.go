package cofidis_test

import (
	"runtime"
	"strings"
)

// goroutinesIn counts the goroutines whose stack holds fn, and marker
// when it is not empty (a test's name, to leave out other tests').
func goroutinesIn(fn, marker string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(g, marker) {
			n++
		}
	}
	return n
}
