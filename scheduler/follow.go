package scheduler

import (
	"encoding/json"
	"errors"
	"io"
	"time"

	"resh/cluster"
	"resh/store"
)

// follow starts the runner of job id on conn, whose output starts at the
// stored lengths stdout and stderr.
func (s *Scheduler) follow(id, lease int64, conn Conn, stdout, stderr int64) {
	s.mu.Lock()
	h := s.jobs[id]
	if h == nil || h.lease != lease || s.stopped {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	old := h.conn
	h.conn = conn
	h.executor = conn.Executor()
	h.gen++
	r := &runner{s: s, id: id, lease: lease, gen: h.gen, conn: conn, stored: [3]int64{0, stdout, stderr}, cancelReq: h.cancel}
	s.wg.Add(1)
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	go func() { defer s.wg.Done(); r.run() }()
}

// item is what a conn's Next gave.
type item struct {
	out *cluster.JobOutput
	end *cluster.JobEnd
	err error
}

// runner stores one job's output and end as they come from its conn.
type runner struct {
	s         *Scheduler
	id, lease int64
	gen       int
	conn      Conn

	stored    [3]int64 // per stream (1, 2): the lengths the store has
	buf       [3]batch
	buffered  int
	cancelled bool // the job ended in the store: the executor was told to kill it

	cancelReq <-chan string // Scheduler.Cancel's requests
	reason    string        // Cancel's reason, once asked: the end is stored as cancelled
}

// batch is output of one stream not stored yet, from off on.
type batch struct {
	off  int64
	data []byte
}

// run follows the conn until the job's end is stored, the conn is lost,
// or the job is no longer this Scheduler's under this lease.
func (r *runner) run() {
	items := make(chan item, 16)
	go func() {
		defer close(items)
		for {
			out, end, err := r.conn.Next()
			items <- item{out, end, err}
			if err != nil || end != nil {
				return
			}
		}
	}()
	defer func() {
		for range items { // the conn is closed or ended: Next returns
		}
	}()
	changed, stop := r.s.st.Watch(r.id)
	defer stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return
			}
			switch {
			case it.err != nil:
				r.lost(it.err)
				return
			case it.end != nil:
				r.finish(*it.end)
				return
			case it.out != nil:
				if r.buffered == 0 {
					flush.Reset(r.s.cfg.BatchDelay)
				}
				if !r.add(*it.out) || (r.buffered >= r.s.cfg.BatchBytes && !r.store()) {
					return
				}
			}
		case <-flush.C:
			if !r.store() {
				return
			}
		case reason := <-r.cancelReq:
			if r.reason == "" && !r.cancelled {
				r.reason = reason
				if err := r.conn.Cancel(reason); err != nil {
					r.s.log.Debug("reshd: cannot cancel a job on its executor", "job", r.id, "err", err)
				}
			}
		case <-changed:
			if !r.check() {
				return
			}
		case <-r.s.ctx.Done():
			return // shutdown closes the conn
		}
	}
}

// current reports whether this runner's conn is still the job's.
func (r *runner) current() bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	h := r.s.jobs[r.id]
	return h != nil && h.gen == r.gen && !r.s.stopped
}

// add buffers a chunk; a chunk that does not follow the buffered bytes
// flushes them first. It returns false once the runner must stop.
func (r *runner) add(o cluster.JobOutput) bool {
	if o.Stream != cluster.JobStdout && o.Stream != cluster.JobStderr {
		r.s.log.Warn("reshd: job output on an unknown stream: ignored", "job", r.id, "stream", o.Stream)
		return true
	}
	b := &r.buf[o.Stream]
	if len(b.data) > 0 && b.off+int64(len(b.data)) != o.Offset {
		if !r.store() {
			return false
		}
	}
	if len(b.data) == 0 {
		b.off = o.Offset
	}
	b.data = append(b.data, o.Data...)
	r.buffered += len(o.Data)
	return true
}

// store appends the buffered output to the store and acknowledges it. It
// returns false once the runner must stop.
func (r *runner) store() bool {
	if r.buffered == 0 {
		return true
	}
	for s := cluster.JobStdout; s <= cluster.JobStderr; s++ {
		b := &r.buf[s]
		if len(b.data) == 0 {
			continue
		}
		if r.cancelled {
			b.data = b.data[:0]
			continue
		}
		kept, err := r.s.st.AppendOutput(r.s.wctx, r.id, r.lease, store.Stream(s), b.off, b.data, 0)
		if err != nil {
			return r.storeError(err)
		}
		r.stored[s] = max(r.stored[s], b.off+int64(kept))
		b.data = b.data[:0]
	}
	r.buffered = 0
	if r.cancelled {
		return true
	}
	if err := r.conn.Ack(r.stored[1], r.stored[2]); err != nil {
		r.s.log.Debug("reshd: cannot acknowledge a job's output", "job", r.id, "err", err)
	}
	return true
}

// storeError acts on the store's refusal of a change. It returns false
// once the runner must stop.
func (r *runner) storeError(err error) bool {
	switch {
	case errors.Is(err, store.ErrStaleLease):
		r.s.log.Info("reshd: job was taken back from its executor: dropped there", "job", r.id, "lease", r.lease)
		r.drop()
		return false
	case errors.Is(err, store.ErrState), errors.Is(err, store.ErrNotFound):
		r.cancel("the job has ended")
		return true
	case errors.Is(err, store.ErrGap):
		r.s.log.Warn("reshd: job output with a gap: re-attaching it", "job", r.id, "err", err)
		r.lost(err)
		return false
	}
	if r.s.ctx.Err() == nil {
		r.s.log.Error("reshd: cannot store a job's output", "job", r.id, "err", err)
		r.lost(err)
	}
	return false
}

// cancel tells the executor to kill the job, whose end the store will
// refuse (the job ended there: cancelled).
func (r *runner) cancel(reason string) {
	if r.cancelled {
		return
	}
	r.cancelled = true
	r.buffered = 0
	for s := range r.buf {
		r.buf[s].data = r.buf[s].data[:0]
	}
	if err := r.conn.Cancel(reason); err != nil {
		r.s.log.Debug("reshd: cannot cancel a job on its executor", "job", r.id, "err", err)
	}
}

// check looks at the stored job after a change: cancelled (kill it), or
// taken back (drop it). It returns false once the runner must stop.
func (r *runner) check() bool {
	j, err := r.s.st.Get(r.s.ctx, r.id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.cancel("the job is gone")
		return true
	case err != nil:
		return true // the next change or the output will tell
	case j.Lease != r.lease:
		r.s.log.Info("reshd: job was taken back from its executor: dropped there", "job", r.id, "lease", r.lease)
		r.drop()
		return false
	case j.State.Ended():
		reason := "the job has ended"
		if j.State == store.Cancelled {
			reason = j.Reason
		}
		r.cancel(reason)
	}
	return true
}

// drop forgets the job (its lease is stale) and tells its executor to
// drop it.
func (r *runner) drop() {
	if !r.current() {
		return
	}
	r.s.forget(r.id, r.lease+1, true)
}

// finish stores the job's end, exactly once under its lease, then
// releases it on the executor.
func (r *runner) finish(end cluster.JobEnd) {
	if !r.store() {
		return
	}
	result, err := json.Marshal(end)
	if err != nil {
		r.s.log.Error("reshd: cannot encode a job's end", "job", r.id, "err", err)
		return
	}
	if !r.cancelled && r.reason != "" {
		// Cancelled by Cancel: killed first, now stored as cancelled.
		if _, err := r.s.st.Cancel(r.s.wctx, r.id, "", r.reason); err != nil && !errors.Is(err, store.ErrState) {
			r.s.log.Warn("reshd: cannot store a job as cancelled", "job", r.id, "err", err)
		}
		r.s.log.Info("reshd: job cancelled on its executor", "job", r.id, "reason", r.reason)
	} else if !r.cancelled {
		_, err = r.s.st.Finish(r.s.wctx, r.id, r.lease, exitCode(end.Exit), result)
		switch {
		case err == nil:
			r.s.log.Info("reshd: job ended", "job", r.id, "verdict", end.Verdict.Verdict, "code", end.Exit.Code, "signal", end.Exit.Signal)
		case errors.Is(err, store.ErrAlreadyDone), errors.Is(err, store.ErrState), errors.Is(err, store.ErrNotFound):
			// Stored already, or ended otherwise (cancelled): release.
		case errors.Is(err, store.ErrStaleLease):
			r.s.log.Info("reshd: a job's end under a stale lease: ignored, dropped there", "job", r.id, "lease", r.lease)
			r.drop()
			return
		default:
			if r.s.ctx.Err() == nil {
				r.s.log.Error("reshd: cannot store a job's end", "job", r.id, "err", err)
				r.lost(err)
			}
			return
		}
	}
	if !r.current() {
		return
	}
	if err := r.conn.Release(); err != nil {
		r.s.log.Debug("reshd: cannot release a job on its executor", "job", r.id, "err", err)
	}
	r.s.mu.Lock()
	if h := r.s.jobs[r.id]; h != nil && h.gen == r.gen {
		delete(r.s.jobs, r.id)
	}
	r.s.mu.Unlock()
}

// lost acts on the conn's loss (or a store error): the conn is closed and
// the job re-attached from the stored lengths if its executor still holds
// it; otherwise it waits, detached, for the executor to join again (or be
// lost).
func (r *runner) lost(err error) {
	if !r.current() {
		return // shutdown, or another conn replaced this one
	}
	if !errors.Is(err, io.EOF) {
		r.s.log.Info("reshd: job's stream lost", "job", r.id, "err", err)
	}
	r.s.mu.Lock()
	h := r.s.jobs[r.id]
	exec := ""
	if h != nil && h.gen == r.gen {
		h.conn = nil
		h.gen++
		exec = h.executor
	}
	r.s.mu.Unlock()
	_ = r.conn.Close()
	if exec != "" && r.s.ctx.Err() == nil {
		r.s.resume(exec, r.id, r.lease)
	}
}
