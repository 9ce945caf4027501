package scheduler

import (
	"encoding/json"
	"errors"

	"resh/cluster"
	"resh/proto"
	"resh/store"
)

// place runs the claimed job j on an executor. It returns false when no
// executor has room now: j stays pending, to be placed on the next Room.
// A job no executor can run (its language is gone) fails.
func (s *Scheduler) place(j store.Job) bool {
	run := cluster.JobRun{
		ID: j.ID, Lease: j.Lease, Lang: j.Lang, Name: j.Name, Args: j.Args,
		Size: int64(len(j.Source)), StdinSize: int64(len(j.Stdin)), NoStdin: j.Stdin == nil,
	}
	if len(j.Limits) > 0 {
		if err := json.Unmarshal(j.Limits, &run.Limits); err != nil {
			s.log.Warn("reshd: a job's stored limits are not valid: defaults used", "job", j.ID, "err", err)
		}
	}
	conn, err := s.cl.RunJob(s.ctx, run, j.Source, j.Stdin)
	if errors.Is(err, ErrNoRoom) {
		return false
	}
	s.mu.Lock()
	if s.pending != nil && s.pending.ID == j.ID {
		s.pending = nil
	}
	h := s.jobs[j.ID]
	if h == nil || h.lease != j.Lease || s.stopped {
		// Taken back meanwhile, or shutting down.
		s.mu.Unlock()
		if conn != nil {
			_ = conn.Close()
			s.cl.DropJob(conn.Executor(), j.ID, j.Lease)
		}
		return true
	}
	if err != nil {
		delete(s.jobs, j.ID)
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			return true // shutting down: the job's lease will run out
		}
		s.log.Warn("reshd: job cannot run", "job", j.ID, "lang", j.Lang, "err", err)
		if _, ferr := s.st.Fail(s.wctx, j.ID, j.Lease, err.Error()); ferr != nil {
			s.log.Error("reshd: cannot fail a job", "job", j.ID, "err", ferr)
		}
		return true
	}
	h.executor = conn.Executor()
	s.mu.Unlock()
	if _, err := s.st.Assign(s.wctx, j.ID, j.Lease, h.executor); err != nil {
		s.log.Warn("reshd: cannot record a job's executor", "job", j.ID, "err", err)
	}
	s.log.Info("reshd: job placed", "job", j.ID, "executor", h.executor, "attempt", j.Attempts)
	s.follow(j.ID, j.Lease, conn, 0, 0)
	return true
}

// exitCode is the exit code stored for an end (128+N for signal N).
func exitCode(e proto.Exit) int {
	if e.Signal != 0 {
		return 128 + e.Signal
	}
	return e.Code
}
