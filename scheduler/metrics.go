package scheduler

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"resh/store"
)

// endCounter is the Store a Scheduler runs on: cfg.Store, whose changes
// that end a job it counts by verdict. The store ends a job once (a second
// Finish is ErrAlreadyDone, a Cancel or Fail of an ended job ErrState), so
// each job is counted once, by the master whose change ended it: when
// several share a store, each counts the jobs it ended. A change whose
// context ended under it may have been made and is not counted (a
// Scheduler's changes run without a cancel, see Scheduler.wctx).
type endCounter struct {
	store.Store
	onEnd func(verdict string)

	mu sync.Mutex
	n  map[string]uint64
}

func newEndCounter(st store.Store, onEnd func(string)) *endCounter {
	return &endCounter{Store: st, onEnd: onEnd, n: map[string]uint64{}}
}

// ended counts a job ended with verdict, and tells Config.OnEnd.
func (c *endCounter) ended(j store.Job) {
	v, _ := verdictOf(j)
	c.mu.Lock()
	c.n[v.Verdict]++
	c.mu.Unlock()
	if c.onEnd != nil {
		c.onEnd(v.Verdict)
	}
}

// Finish implements store.Store, counting the job's verdict.
func (c *endCounter) Finish(ctx context.Context, id, lease int64, exitCode int, result json.RawMessage) (store.Job, error) {
	j, err := c.Store.Finish(ctx, id, lease, exitCode, result)
	if err == nil {
		c.ended(store.Job{State: store.Finished, Result: result})
	}
	return j, err
}

// Fail implements store.Store, counting the job's verdict.
func (c *endCounter) Fail(ctx context.Context, id, lease int64, reason string) (store.Job, error) {
	j, err := c.Store.Fail(ctx, id, lease, reason)
	if err == nil {
		c.ended(store.Job{State: store.Failed, Reason: reason})
	}
	return j, err
}

// Cancel implements store.Store, counting the job's verdict.
func (c *endCounter) Cancel(ctx context.Context, id int64, owner, reason string) (store.Job, error) {
	j, err := c.Store.Cancel(ctx, id, owner, reason)
	if err == nil {
		c.ended(store.Job{State: store.Cancelled})
	}
	return j, err
}

// Expire implements store.Store, counting the verdicts of the jobs it
// failed (those it queued again have not ended).
func (c *endCounter) Expire(ctx context.Context, now time.Time) ([]store.Job, error) {
	jobs, err := c.Store.Expire(ctx, now)
	for _, j := range jobs {
		if j.State.Ended() {
			c.ended(j)
		}
	}
	return jobs, err
}

// Ended returns how many jobs this Scheduler has ended, by verdict
// (proto.VerdictOK, proto.VerdictCancelled, ...; those that never
// happened are absent): each job once, counted when its end was stored,
// whichever way it ended (finished on its executor, cancelled, failed,
// its executor lost). Jobs that another master sharing the store ended
// are that master's. It is safe to call at any time.
func (s *Scheduler) Ended() map[string]uint64 {
	c := s.cfg.Store.(*endCounter)
	c.mu.Lock()
	defer c.mu.Unlock()
	n := make(map[string]uint64, len(c.n))
	for v, k := range c.n {
		n[v] = k
	}
	return n
}
