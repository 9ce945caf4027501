package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// RunJob places the job run like Place places a submitted program
// (spec.md §8, §4: candidates with the language and room, best first; a
// refusal, or a failed offer, goes to the next), writes JobRun and the
// bytes (run's Size and StdinSize are set from them), and returns the
// JobConn once an executor accepted; the in-process executor runs it
// through Config.InProcessJobs. The job counts as a task of its executor
// until its end (or until the JobConn is closed or lost). When no
// executor has room now it returns ErrNoRoom at once: wait on Room and try
// again. A language that no known executor has is a *LanguageError.
func (m *Master) RunJob(ctx context.Context, run JobRun, source, stdin []byte) (JobConn, error) {
	run.Size, run.StdinSize = int64(len(source)), int64(len(stdin))
	if run.NoStdin {
		run.StdinSize, stdin = 0, nil
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	t := Task{Lang: run.Lang}
	if err := m.langErrorLocked(t); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	cands := m.candidatesLocked(t)
	m.mu.Unlock()
	var conn JobConn
	e := m.tryEach(cands, "job", func(e *executor) (string, error) {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		var err error
		switch {
		case e.link != nil:
			conn, err = e.link.runJob(ctx, run, source, stdin)
		case m.cfg.InProcessJobs != nil:
			conn, err = m.cfg.InProcessJobs(run, source, stdin)
		default:
			return RefuseLang, nil // this master runs no jobs in process
		}
		var re *RefusedError
		if errors.As(err, &re) {
			return re.Reason, nil
		}
		return "", err
	})
	if e == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, ErrNoRoom
	}
	m.log.Debug("reshd: job placed", "job", run.ID, "lease", run.Lease, "executor", e.name)
	return &countedConn{JobConn: conn, m: m, e: e}, nil
}

// ResumeJob re-attaches the job r names on the executor named (the
// in-process one through Config.InProcessResume): it opens a JobResume
// stream and returns its JobConn once the executor accepted, the output
// following from r's offsets. ErrUnknownJob when the executor does not
// hold the job under r.Lease; an error when the executor is not joined.
// A resumed job counts as a task of its executor until its end.
func (m *Master) ResumeJob(executor string, r JobResume) (JobConn, error) {
	e, err := m.joined(executor)
	if err != nil {
		return nil, err
	}
	var conn JobConn
	switch {
	case e.link != nil:
		conn, err = e.link.resumeJob(r)
	case m.cfg.InProcessResume != nil:
		conn, err = m.cfg.InProcessResume(r.ID, r.Lease, r.Stdout, r.Stderr)
	default:
		err = ErrUnknownJob
	}
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	e.placed++
	m.mu.Unlock()
	return &countedConn{JobConn: conn, m: m, e: e}, nil
}

// DropJob tells the executor named to kill and forget the job id it holds
// under lease (a JobDrop stream), best effort: errors are logged.
func (m *Master) DropJob(executor string, id, lease int64) {
	e, err := m.joined(executor)
	if err == nil {
		switch {
		case e.link != nil:
			err = e.link.dropJob(JobDrop{ID: id, Lease: lease})
		case m.cfg.InProcessResume != nil:
			var c JobConn
			if c, err = m.cfg.InProcessResume(id, lease, 0, 0); err == nil {
				err = c.Release() // kills it if it runs, and forgets it
			}
		}
	}
	if err != nil {
		m.log.Debug("reshd: cannot drop a job", "executor", executor, "job", id, "lease", lease, "err", err)
	}
}

// joined returns the executor named, if it joined (or is in process).
func (m *Master) joined(name string) (*executor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	e := m.execs[name]
	if e == nil || e.starting {
		return nil, fmt.Errorf("cluster: executor %s is not joined", name)
	}
	return e, nil
}

// Attached reports whether the executor named is joined, not leaving, and
// its link attached now (the in-process one always is): its jobs' leases
// may be renewed.
func (m *Master) Attached(executor string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.execs[executor]
	return e != nil && !e.starting && !e.leaving && (e.link == nil || e.link.attached())
}

// Room receives a value (coalesced) whenever an executor may have room: a
// task or job ended, a Load came, an executor joined or went.
func (m *Master) Room() <-chan struct{} { return m.room }

// Free lists the languages of the executors that have room now, sorted
// (for the store's claim filter).
func (m *Master) Free() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var langs [][]string
	for _, e := range m.execs {
		if e.available() && (e.link != nil || m.cfg.InProcessJobs != nil) {
			langs = append(langs, e.languages)
		}
	}
	return union(langs...)
}

// Languages lists the languages of every known executor (joined, or in
// process), sorted, and whether any executor is known.
func (m *Master) Languages() (langs []string, anyExecutor bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all [][]string
	for _, e := range m.execs {
		if !e.starting {
			all = append(all, e.languages)
			anyExecutor = true
		}
	}
	return union(all...), anyExecutor
}

// countedConn counts its job as a task of its executor until the job's
// end, or until the JobConn is closed or lost.
type countedConn struct {
	JobConn
	m    *Master
	e    *executor
	once sync.Once
}

func (c *countedConn) done() {
	c.once.Do(func() {
		c.m.mu.Lock()
		c.e.placed--
		c.m.mu.Unlock()
		c.m.kick()
	})
}

func (c *countedConn) Next() (*JobOutput, *JobEnd, error) {
	out, end, err := c.JobConn.Next()
	if end != nil || err != nil {
		c.done()
	}
	return out, end, err
}

func (c *countedConn) Release() error {
	defer c.done()
	return c.JobConn.Release()
}

func (c *countedConn) Close() error {
	defer c.done()
	return c.JobConn.Close()
}
