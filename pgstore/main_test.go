package pgstore_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, when the crash test starts this binary as
// one of its replicas, the replica instead.
func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		os.Exit(runReplica())
	}
	os.Exit(m.Run())
}
