package scheduler

import (
	"errors"
	"time"

	"resh/cluster"
	"resh/store"
)

// Expiring one executor's jobs at once: their leases are moved to
// lostUntil, and Expire takes back those before lostBefore (only such
// leases: no live lease is that old).
var (
	lostUntil  = time.Unix(0, 1)
	lostBefore = time.Unix(0, 2)
)

// OnJoin re-attaches the jobs an executor holds as it joins (a
// cluster.Config.OnJoin hook): each one the store has running under the
// same lease is renewed and resumed from the stored lengths; the others
// are dropped. The jobs this Scheduler placed there, detached since, that
// the executor no longer holds are lost: expired at once.
func (s *Scheduler) OnJoin(executor string, jobs []cluster.HeldJob) {
	if s.ctx.Err() != nil {
		return
	}
	listed := map[int64]bool{}
	for _, hj := range jobs {
		listed[hj.ID] = true
		j, err := s.st.Get(s.ctx, hj.ID)
		if err != nil || j.State != store.Running || j.Lease != hj.Lease {
			s.log.Info("reshd: an executor holds a job that is no longer its: dropped there", "executor", executor, "job", hj.ID, "lease", hj.Lease)
			s.cl.DropJob(executor, hj.ID, hj.Lease)
			continue
		}
		if err := s.st.Renew(s.wctx, j.ID, j.Lease, s.cfg.Now().Add(s.cfg.leaseFor())); err != nil {
			s.cl.DropJob(executor, hj.ID, hj.Lease)
			continue
		}
		s.mu.Lock()
		h := s.jobs[j.ID]
		if h == nil || h.lease < j.Lease {
			h = newHeld(j.ID, j.Lease)
			s.jobs[j.ID] = h
		}
		h.executor = executor
		s.mu.Unlock()
		s.resume(executor, j.ID, j.Lease)
	}
	var gone []int64
	s.mu.Lock()
	for id, h := range s.jobs {
		if h.executor == executor && h.conn == nil && !listed[id] {
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.log.Info("reshd: an executor joined without a job it ran: lost", "executor", executor, "job", id)
		s.expireNow(id)
	}
	s.expireOrphans(executor, listed)
}

// expireOrphans takes back at once the jobs this master (by its Name)
// placed on executor before it restarted, that the executor, joining
// again, does not hold: a local executor ends with its master, and an
// executor restarted meanwhile holds nothing. Without this they would
// wait for their lease to run out. The jobs this Scheduler knows of are
// OnJoin's own business.
func (s *Scheduler) expireOrphans(executor string, listed map[int64]bool) {
	for before := int64(0); ; {
		jobs, err := s.st.List(s.ctx, store.Filter{States: []store.State{store.Running}, Master: s.cfg.Name, Executor: executor, Before: before, Limit: store.MaxListLimit})
		if err != nil {
			s.log.Warn("reshd: cannot list the running jobs", "err", err)
			return
		}
		for _, j := range jobs {
			if listed[j.ID] {
				continue
			}
			s.mu.Lock()
			known := s.jobs[j.ID] != nil
			s.mu.Unlock()
			if known {
				continue
			}
			s.log.Info("reshd: an executor joined without a job this master placed there before it restarted: lost", "executor", executor, "job", j.ID)
			s.takeBack(j.ID, j.Lease)
		}
		if len(jobs) < store.MaxListLimit {
			return
		}
		before = jobs[len(jobs)-1].ID
	}
}

// OnLost expires at once the jobs of an executor lost for good (a
// cluster.Config.OnLost hook): each goes back to the queue while it has
// retries left, else fails with EXECUTOR_LOST.
func (s *Scheduler) OnLost(executor string) {
	if s.ctx.Err() != nil {
		return
	}
	var ids []int64
	s.mu.Lock()
	for id, h := range s.jobs {
		if h.executor == executor {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.log.Info("reshd: job's executor lost", "executor", executor, "job", id)
		s.expireNow(id)
	}
}

// expireNow takes the job back at once (its attempt is lost), if this
// Scheduler holds it.
func (s *Scheduler) expireNow(id int64) {
	s.mu.Lock()
	h := s.jobs[id]
	s.mu.Unlock()
	if h == nil {
		return
	}
	lease := h.lease
	s.forget(id, lease+1, false)
	s.takeBack(id, lease)
}

// takeBack expires job id's attempt under lease at once: back to the
// queue, or failed without retries left.
func (s *Scheduler) takeBack(id, lease int64) {
	if err := s.st.Renew(s.wctx, id, lease, lostUntil); err != nil {
		return // it is no longer running under lease
	}
	jobs, err := s.st.Expire(s.wctx, lostBefore)
	if err != nil {
		s.log.Error("reshd: cannot expire a lost job", "job", id, "err", err)
		return
	}
	for _, j := range jobs {
		s.log.Info("reshd: lost job taken back", "job", j.ID, "state", j.State, "attempts", j.Attempts)
	}
}

// resume re-attaches job id, held by executor under lease, from the
// stored lengths. An executor that does not hold it loses the attempt;
// one that cannot be reached now leaves the job detached until it joins
// again or is lost.
func (s *Scheduler) resume(executor string, id, lease int64) {
	j, err := s.st.Get(s.ctx, id)
	if err != nil || j.State != store.Running || j.Lease != lease {
		s.forget(id, lease+1, true)
		return
	}
	conn, err := s.cl.ResumeJob(executor, cluster.JobResume{ID: id, Lease: lease, Stdout: j.StdoutLen, Stderr: j.StderrLen})
	switch {
	case errors.Is(err, ErrUnknownJob):
		s.log.Info("reshd: the executor no longer holds the job: lost", "executor", executor, "job", id)
		s.expireNow(id)
		return
	case err != nil:
		s.log.Info("reshd: cannot re-attach a job now: waiting for its executor", "executor", executor, "job", id, "err", err)
		return
	}
	s.log.Info("reshd: job re-attached", "executor", executor, "job", id, "stdout", j.StdoutLen, "stderr", j.StderrLen)
	s.follow(id, lease, conn, j.StdoutLen, j.StderrLen)
}
