package scheduler

import (
	"testing"

	"go.uber.org/goleak"

	"resh/store/pgtest"
)

// TestMain checks for leaked goroutines and runs the PostgreSQL tests on
// one throwaway server.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Shared(m)) }
