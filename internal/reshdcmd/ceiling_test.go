package reshdcmd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/sandbox"
)

func TestParseCeiling(t *testing.T) {
	l, err := parseCeiling("time=10m, cpu=5m,mem=2G,procs=256,output=64M,fsize=1G")
	require.NoError(t, err)
	assert.Equal(t, sandbox.Limits{Wall: 10 * time.Minute, CPU: 5 * time.Minute, Memory: 2 << 30, Procs: 256, Output: 64 << 20, FileSize: 1 << 30}, l)
	l, err = parseCeiling("")
	require.NoError(t, err)
	assert.Equal(t, sandbox.Limits{}, l)
	for in, want := range map[string]string{
		"time":        `"time" is not KEY=VALUE`,
		"speed=1":     `unknown limit "speed"`,
		"time=-1s":    "time=-1s: must be positive",
		"mem=lots":    "mem=lots: want a positive size",
		"procs=0":     "procs=0: must be positive",
		"cpu=1h,mem=": `"mem=" is not KEY=VALUE`,
	} {
		_, err := parseCeiling(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}
