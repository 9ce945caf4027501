package web

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines (streams, pings, the stack's).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
