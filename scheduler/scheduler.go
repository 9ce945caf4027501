package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"resh/store"
)

// Scheduler runs a master's durable jobs; see the package documentation.
// Its queries (Submit, Attach, List, Get, Cancel) work at any time; jobs
// run while Run runs.
type Scheduler struct {
	cfg   Config
	st    store.Store
	cl    Cluster
	log   *slog.Logger
	start time.Time // for the grace before Expire

	ctx    context.Context // Run's, cancelled when Run returns
	cancel context.CancelFunc
	// wctx is ctx without its cancel, for the store's changes: one under
	// way when Run returns is finished rather than left in doubt (the
	// SQLite store may run a change after its caller's context is done).
	wctx context.Context
	wg   sync.WaitGroup // the runners

	mu      sync.Mutex
	jobs    map[int64]*held // the jobs this Scheduler holds: claimed, placed or detached
	pending *store.Job      // claimed, not placed: no executor had room
	stopped bool
}

// held is a job this Scheduler claimed or re-attached, under its lease.
type held struct {
	id, lease int64
	executor  string      // "" while not placed
	conn      Conn        // nil while detached (its executor's link is lost)
	gen       int         // bumped whenever conn changes: a runner of another gen is stale
	cancel    chan string // Cancel's request to the runner: kill it, then store it cancelled
}

// newHeld is a job held under lease, not placed yet.
func newHeld(id, lease int64) *held {
	return &held{id: id, lease: lease, cancel: make(chan string, 1)}
}

// New returns a Scheduler on cfg.Store and cfg.Cluster.
func New(cfg Config) (*Scheduler, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		cfg: c, st: c.Store, cl: c.Cluster, log: c.Logger, start: c.Now(),
		ctx: ctx, cancel: cancel, wctx: context.WithoutCancel(ctx), jobs: map[int64]*held{},
	}, nil
}

// Run claims and runs jobs, renews their leases, expires lost ones and
// purges old ones, until ctx is done. Then it abandons the jobs it runs
// (their executors keep them, for the next master to re-attach), waits
// for its goroutines and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.shutdown()
	var wg sync.WaitGroup
	loops := []func(){s.claimLoop, s.renewLoop, s.expireLoop, s.purgeLoop}
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop() }()
	}
	select {
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	s.cancel()
	wg.Wait()
	return nil
}

// shutdown stops everything Run started, closing the jobs' conns.
func (s *Scheduler) shutdown() {
	s.cancel()
	s.mu.Lock()
	s.stopped = true
	var conns []Conn
	for _, h := range s.jobs {
		if h.conn != nil {
			conns = append(conns, h.conn)
			h.conn = nil
			h.gen++
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	s.wg.Wait()
}

// claimLoop claims a job whenever an executor may have room for one, or
// a job became queued.
func (s *Scheduler) claimLoop() {
	changed, stop := s.st.Watch(store.QueuedJobs)
	defer stop()
	room := s.cl.Room()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		if !s.claimSome() {
			retry.Reset(time.Second) // a store error: try again soon
		}
		select {
		case <-s.ctx.Done():
			return
		case <-room:
		case <-changed:
		case <-retry.C:
		}
	}
}

// claimSome places the pending job, then claims and places jobs while
// executors have room for their languages. It returns false after a
// store error.
func (s *Scheduler) claimSome() bool {
	for s.ctx.Err() == nil {
		s.mu.Lock()
		p := s.pending
		s.mu.Unlock()
		if p != nil {
			if !s.place(*p) {
				return true
			}
			continue
		}
		free := s.cl.Free()
		if len(free) == 0 {
			return true
		}
		// A read first: a Claim is a write, useless while the queued
		// jobs are all in languages no executor has room for (or taken
		// by another master).
		queued, err := s.st.List(s.ctx, store.Filter{States: []store.State{store.Queued}, Langs: free, Limit: 1})
		if err == nil && len(queued) == 0 {
			return true
		}
		j, err := s.st.Claim(s.wctx, s.cfg.Name, free, s.cfg.leaseFor())
		if errors.Is(err, store.ErrNoJob) {
			return true
		}
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("reshd: cannot claim a job", "err", err)
			}
			return false
		}
		s.log.Info("reshd: job claimed", "job", j.ID, "lang", j.Lang, "attempt", j.Attempts)
		s.mu.Lock()
		s.jobs[j.ID] = newHeld(j.ID, j.Lease)
		s.pending = &j
		s.mu.Unlock()
	}
	return true
}

// renewLoop renews the leases of the jobs held, every ExecutorTimeout/3:
// those placed while their executor is attached, and the pending one.
func (s *Scheduler) renewLoop() {
	t := time.NewTicker(s.cfg.ExecutorTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		type lease struct{ id, lease int64 }
		var renew []lease
		s.mu.Lock()
		for _, h := range s.jobs {
			if h.executor == "" || h.conn != nil {
				renew = append(renew, lease{h.id, h.lease})
			}
		}
		s.mu.Unlock()
		for _, l := range renew {
			s.mu.Lock()
			h := s.jobs[l.id]
			s.mu.Unlock()
			if h == nil || (h.executor != "" && !s.cl.Attached(h.executor)) {
				continue
			}
			until := s.cfg.Now().Add(s.cfg.leaseFor())
			if err := s.st.Renew(s.wctx, l.id, l.lease, until); err != nil && s.ctx.Err() == nil {
				s.log.Warn("reshd: cannot renew a job's lease", "job", l.id, "err", err)
			}
		}
	}
}

// expireLoop expires the jobs whose lease ran out, every
// ExecutorTimeout/3 once ExecutorTimeout passed since the start.
func (s *Scheduler) expireLoop() {
	grace := time.NewTimer(s.cfg.ExecutorTimeout - s.cfg.Now().Sub(s.start))
	defer grace.Stop()
	select {
	case <-s.ctx.Done():
		return
	case <-grace.C:
	}
	t := time.NewTicker(s.cfg.ExecutorTimeout / 3)
	defer t.Stop()
	for {
		s.expire(s.cfg.Now())
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expire runs store.Expire(now), and forgets the jobs it took back from
// this Scheduler.
func (s *Scheduler) expire(now time.Time) {
	jobs, err := s.st.Expire(s.wctx, now)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Error("reshd: cannot expire jobs", "err", err)
		}
		return
	}
	for _, j := range jobs {
		s.log.Info("reshd: job's lease ran out", "job", j.ID, "state", j.State, "attempts", j.Attempts)
		s.forget(j.ID, j.Lease, true)
	}
}

// purgeLoop removes the jobs ended more than Retention ago, at the start
// and every PurgeEvery.
func (s *Scheduler) purgeLoop() {
	t := time.NewTicker(s.cfg.PurgeEvery)
	defer t.Stop()
	for {
		n, err := s.st.Purge(s.wctx, s.cfg.Now().Add(-s.cfg.Retention))
		switch {
		case err != nil && s.ctx.Err() == nil:
			s.log.Error("reshd: cannot purge old jobs", "err", err)
		case n > 0:
			s.log.Info("reshd: old jobs purged", "jobs", n, "retention", s.cfg.Retention)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// forget drops the job from what this Scheduler holds, unless it holds it
// under lease or a later one: its conn is closed, and with drop its
// executor is told to drop it.
func (s *Scheduler) forget(id, lease int64, drop bool) {
	s.mu.Lock()
	h := s.jobs[id]
	if h == nil || h.lease >= lease {
		s.mu.Unlock()
		return
	}
	delete(s.jobs, id)
	if s.pending != nil && s.pending.ID == id {
		s.pending = nil
	}
	c, exec := h.conn, h.executor
	h.conn = nil
	h.gen++
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	if drop && exec != "" {
		s.cl.DropJob(exec, id, h.lease)
	}
}
