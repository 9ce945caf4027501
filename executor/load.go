package executor

import (
	"math"
	"time"

	"resh/cluster"
)

// notify tells the load reports that the number of tasks changed.
func (e *executor) notify() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// reportLoad sends Load on l's control stream until stop is closed: at
// once when the number of running sessions and held jobs changes, and at
// most once per load interval when the CPU use moved by a point or more
// since the last report (cluster/spec.md §3).
func (e *executor) reportLoad(l *link, stop <-chan struct{}) {
	last := cluster.Load{Tasks: l.joinedTasks, CPU: l.joinedCPU}
	t := time.NewTicker(e.h.loadInterval)
	defer t.Stop()
	for {
		tick := false
		select {
		case <-stop:
			return
		case <-e.changed:
		case <-e.jobs.Changed():
		case <-t.C:
			tick = true
		}
		now := cluster.Load{Tasks: e.tasks(), CPU: e.cpu()}
		if now.Tasks == last.Tasks && !(tick && math.Abs(now.CPU-last.CPU) >= 1) {
			continue
		}
		if err := l.send(cluster.TypeLoad, now); err != nil {
			return
		}
		last = now
	}
}
