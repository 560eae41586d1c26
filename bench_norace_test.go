//go:build !race

package cofidis_test

// raceEnabled reports that the race detector is on: it changes allocation
// counts, so allocation guards skip themselves.
const raceEnabled = false
