package store

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"resh/store/pgtest"
)

// TestMain checks for leaked goroutines and runs the PostgreSQL half of
// the tests on one throwaway server (a database each). A re-executed
// crash child (see crash_test.go) runs its loop instead.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	goleak.VerifyTestMain(pgtest.Shared(m))
}
