package tests

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMasterSmoke: a command through a master with two local executors
// and one joined by hand gives what it gives on a standalone reshd.
func TestMasterSmoke(t *testing.T) {
	m := startMaster(t, []string{"-local", "2"}, "local-1", "local-2")
	startExecutor(t, m, "byhand")
	r := resh(t, "", "in", m.args(m.addr, "cat; echo out; echo err >&2; exit 3")...)
	assert.Equal(t, "inout\n", r.stdout)
	assert.Equal(t, "err\n", r.stderr)
	assert.Equal(t, 3, r.code)
}
