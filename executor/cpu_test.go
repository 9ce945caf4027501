package executor

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	stat := "cpu  100 20 30 800 50 5 5 10 7 3\ncpu0 50 10 15 400 25 2 3 5 0 0\nintr 12345\n"
	got, err := parseProcStat([]byte(stat))
	require.NoError(t, err)
	// total: user..steal; guest and guest_nice are already in user, nice.
	assert.Equal(t, cpuTimes{busy: 100 + 20 + 30 + 5 + 5 + 10, total: 1020}, got)

	old, err := parseProcStat([]byte("cpu 1 2 3 4\n")) // an old kernel: four fields
	require.NoError(t, err)
	assert.Equal(t, cpuTimes{busy: 6, total: 10}, old)

	_, err = parseProcStat([]byte("cpu0 1 2 3 4 5\n"))
	assert.ErrorIs(t, err, errNoCPULine)
	_, err = parseProcStat([]byte("cpu 1 x 3 4 5\n"))
	assert.Error(t, err)
}

func TestBusyPercent(t *testing.T) {
	for _, c := range []struct {
		prev, cur cpuTimes
		want      float64
	}{
		{cpuTimes{100, 1000}, cpuTimes{150, 1100}, 50},
		{cpuTimes{100, 1000}, cpuTimes{100, 1100}, 0},
		{cpuTimes{100, 1000}, cpuTimes{200, 1100}, 100},
		{cpuTimes{100, 1000}, cpuTimes{133, 1300}, 11},
		{cpuTimes{100, 1000}, cpuTimes{101, 1003}, 33.3},
		{cpuTimes{100, 1000}, cpuTimes{100, 1000}, 0}, // no time passed
		{cpuTimes{100, 1000}, cpuTimes{10, 50}, 0},    // counters went back
	} {
		assert.Equal(t, c.want, busyPercent(c.prev, c.cur), "%+v → %+v", c.prev, c.cur)
	}
}

// TestCPUMeter: the meter keeps the last window's use, and survives a
// failed reading.
func TestCPUMeter(t *testing.T) {
	var m cpuMeter
	reading := func(c cpuTimes, err error) func() (cpuTimes, error) {
		return func() (cpuTimes, error) { return c, err }
	}
	prev := m.step(cpuTimes{0, 0}, reading(cpuTimes{25, 100}, nil))
	assert.Equal(t, 25.0, m.get())
	prev = m.step(prev, reading(cpuTimes{}, errors.New("test: unreadable")))
	assert.Equal(t, cpuTimes{25, 100}, prev)
	assert.Equal(t, 25.0, m.get())
	m.step(prev, reading(cpuTimes{100, 200}, nil))
	assert.Equal(t, 75.0, m.get())
}

// TestCPUMeterRun samples until stopped.
func TestCPUMeterRun(t *testing.T) {
	var m cpuMeter
	n := 0
	sampled := make(chan struct{})
	stop := make(chan struct{})
	read := func() (cpuTimes, error) {
		n++
		if n == 3 {
			close(sampled)
		}
		return cpuTimes{uint64(n) * 50, uint64(n) * 100}, nil
	}
	done := make(chan error, 1)
	go func() { done <- m.run(stop, time.Millisecond, read) }()
	select {
	case <-sampled:
	case <-time.After(testTimeout):
		t.Fatal("no third sample")
	}
	close(stop)
	require.NoError(t, <-done)
	assert.Equal(t, 50.0, m.get())
}

// TestCPUMeterUnavailable: no /proc/stat leaves the CPU at 0.
func TestCPUMeterUnavailable(t *testing.T) {
	var m cpuMeter
	err := m.run(make(chan struct{}), time.Millisecond, func() (cpuTimes, error) { return cpuTimes{}, errors.New("no /proc") })
	assert.Error(t, err)
	assert.Equal(t, 0.0, m.get())
}

// TestReadProcStat reads this machine's counters, where it has them.
func TestReadProcStat(t *testing.T) {
	a, err := readProcStat()
	if err != nil {
		t.Skipf("no /proc/stat here: %v", err)
	}
	assert.Positive(t, a.total)
	assert.LessOrEqual(t, a.busy, a.total)
}
