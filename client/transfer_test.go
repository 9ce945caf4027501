package client

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
)

func TestParseFileSwitches(t *testing.T) {
	o, err := Parse([]string{"-no-files", "-v", "-allow", ".bashrc", "h"})
	require.NoError(t, err)
	assert.True(t, o.NoFiles)
	assert.True(t, o.Verbose)
	assert.Equal(t, []string{".bashrc"}, o.Allow)
}

func TestAnnouncement(t *testing.T) {
	for _, c := range []struct {
		op   string
		size int64
		want string
	}{
		{proto.OpRead, 12 << 20, "lcat: reading f (12.0 MiB)"},
		{proto.OpRead, -1, "lcat: reading f"},
		{proto.OpWrite, 0, "ltee: writing f"},
		{proto.OpAppend, 10, "ltee: appending to f"},
	} {
		assert.Equal(t, c.want, announcement(proto.TransferOpen{Op: c.op, Path: "f"}, c.size), "%s %d", c.op, c.size)
	}
}

// The meter a transfer gets: lcat's size is the total, ltee's (the file's
// size at open) is not.
func TestMeterSize(t *testing.T) {
	p, clock, buf := testProgress(80)
	var announced []int64
	for _, op := range []string{proto.OpRead, proto.OpWrite} {
		m := meter{Meter: p.Start("t", op), write: op != proto.OpRead, opened: func(size int64) { announced = append(announced, size) }}
		m.Opened(100)
		defer m.Done()
	}
	clock.advance(2 * time.Second)
	p.redraw()
	assert.Equal(t, []int64{100, 100}, announced, "the announcement gets the size at open")
	assert.Equal(t, "2 transfers: 0 B, 0 B/s", screen(buf.String()), "no percentage: ltee's total is unknown")
}
