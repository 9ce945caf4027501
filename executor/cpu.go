package executor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// cpuTimes are the machine's CPU time counters, in clock ticks, summed
// over all cores: busy (neither idle nor waiting for I/O) and total.
type cpuTimes struct {
	busy, total uint64
}

// errNoCPULine is returned for a /proc/stat without its aggregate line.
var errNoCPULine = errors.New("executor: no aggregate cpu line in /proc/stat")

// parseProcStat reads the aggregate "cpu" line of /proc/stat (proc(5)):
// user nice system idle iowait irq softirq steal guest guest_nice. guest
// and guest_nice are already counted in user and nice, so the total is
// the sum of the first eight; idle and iowait are not busy.
func parseProcStat(b []byte) (cpuTimes, error) {
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) < 5 || string(f[0]) != "cpu" {
			continue
		}
		var v [8]uint64
		for i := 0; i < len(v) && i+1 < len(f); i++ {
			n, err := strconv.ParseUint(string(f[i+1]), 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("executor: bad cpu line in /proc/stat: %w", err)
			}
			v[i] = n
		}
		var t cpuTimes
		for _, n := range v {
			t.total += n
		}
		t.busy = t.total - v[3] - v[4]
		return t, nil
	}
	return cpuTimes{}, errNoCPULine
}

// readProcStat reads the machine's CPU counters. It fails where there is
// no /proc/stat (not Linux): the CPU use is then reported as 0.
func readProcStat() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseProcStat(b)
}

// busyPercent is the CPU use between two readings, in percent of all
// cores, rounded to a tenth; 0 when no time passed (or counters went
// back).
func busyPercent(prev, cur cpuTimes) float64 {
	if cur.total <= prev.total || cur.busy < prev.busy {
		return 0
	}
	p := float64(cur.busy-prev.busy) / float64(cur.total-prev.total) * 100
	return math.Round(min(p, 100)*10) / 10
}

// cpuMeter keeps the last CPU sample, for offers (the limit) and load
// reports, read without locks.
type cpuMeter struct {
	bits atomic.Uint64
}

func (m *cpuMeter) get() float64  { return math.Float64frombits(m.bits.Load()) }
func (m *cpuMeter) set(v float64) { m.bits.Store(math.Float64bits(v)) }

// run samples read every window until stop is closed. A first reading
// that fails leaves the meter at 0 and ends the sampling (no /proc/stat);
// a later failure keeps the last sample.
func (m *cpuMeter) run(stop <-chan struct{}, window time.Duration, read func() (cpuTimes, error)) error {
	prev, err := read()
	if err != nil {
		return err
	}
	t := time.NewTicker(window)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		prev = m.step(prev, read)
	}
}

// step reads the counters and sets the use since prev, returning the new
// reading; a failed reading keeps the last sample and prev.
func (m *cpuMeter) step(prev cpuTimes, read func() (cpuTimes, error)) cpuTimes {
	cur, err := read()
	if err != nil {
		return prev
	}
	m.set(busyPercent(prev, cur))
	return cur
}
